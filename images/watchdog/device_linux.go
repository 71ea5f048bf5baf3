package watchdog

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Dev is an open Linux watchdog device.
type Dev struct {
	f        *os.File
	Identity string
	// Timeout is the timeout the driver took.
	Timeout time.Duration
	// MagicClose is set when the driver stops on 'V' and close.
	MagicClose bool
}

// Open opens path, which starts the timer, and sets its timeout.
func Open(path string, timeout time.Duration) (*Dev, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	d := &Dev{f: f}
	fd := int(f.Fd())
	info, err := unix.IoctlGetWatchdogInfo(fd)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("watchdog: %s: WDIOC_GETSUPPORT: %w", path, err)
	}
	d.Identity = unix.ByteSliceToString(info.Identity[:])
	d.MagicClose = info.Options&unix.WDIOF_MAGICCLOSE != 0
	if info.Options&unix.WDIOF_SETTIMEOUT != 0 {
		if err := unix.IoctlSetPointerInt(fd, unix.WDIOC_SETTIMEOUT, int(timeout/time.Second)); err != nil {
			d.Close()
			return nil, fmt.Errorf("watchdog: %s (%s): WDIOC_SETTIMEOUT %v: %w", path, d.Identity, timeout, err)
		}
	}
	secs, err := unix.IoctlGetInt(fd, unix.WDIOC_GETTIMEOUT)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("watchdog: %s (%s): WDIOC_GETTIMEOUT: %w", path, d.Identity, err)
	}
	d.Timeout = time.Duration(secs) * time.Second
	if err := d.Keepalive(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Keepalive restarts the timer (WDIOC_KEEPALIVE).
func (d *Dev) Keepalive() error {
	if err := unix.IoctlWatchdogKeepalive(int(d.f.Fd())); err != nil {
		return fmt.Errorf("watchdog: WDIOC_KEEPALIVE: %w", err)
	}
	return nil
}

// Close writes the magic 'V', which stops the timer, and closes.
func (d *Dev) Close() error {
	_, werr := d.f.Write([]byte("V"))
	cerr := d.f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("watchdog: close: %w", err)
	}
	return nil
}
