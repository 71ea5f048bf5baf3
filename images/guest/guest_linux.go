package guest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// MountBasics mounts /proc, /sys, /dev (devtmpfs), /dev/pts, /run and /tmp
// and sets PATH. Mounts that are already there are left alone.
func MountBasics() error {
	mounts := []struct {
		src, dir, fstype string
		flags            uintptr
		data             string
	}{
		{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, ""},
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
		{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return fmt.Errorf("guest: mount %s: %w", m.dir, err)
		}
		err := unix.Mount(m.src, m.dir, m.fstype, m.flags, m.data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("guest: mount %s on %s: %w", m.fstype, m.dir, err)
		}
	}
	if os.Getenv("PATH") == "" {
		os.Setenv("PATH", "/sbin:/bin:/usr/sbin:/usr/bin")
	}
	return nil
}

// LoadModules loads module files in order with finit_module. A module that
// is already loaded is not an error, nor one whose hardware or CPU feature
// the machine lacks (ENODEV: an accelerated implementation, such as
// sha256_ssse3, picked for an alias on a CPU without SSSE3); a module that
// needs it then fails to load, which is.
func LoadModules(paths []string) error {
	for _, p := range paths {
		if err := loadModule(p); err != nil {
			return err
		}
	}
	return nil
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("guest: load module %s: %w", path, err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("guest: load module %s: %w", path, err)
	}
	return nil
}

// ReadList reads a file of one entry a line; blank lines and # comments are
// skipped. A missing file is an empty list.
func ReadList(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("guest: read %s: %w", path, err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("guest: read %s: %w", path, err)
	}
	return out, nil
}

// Cmdline reads and parses /proc/cmdline.
func Cmdline() ([]Param, error) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return nil, fmt.Errorf("guest: read cmdline: %w", err)
	}
	return ParseCmdline(string(b))
}

// WaitBlockDevices waits until each named block device (vda, md0, ...) is
// in /sys/block and its /dev node exists, or the timeout passes.
func WaitBlockDevices(names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var missing []string
		for _, n := range names {
			if _, err := os.Stat(filepath.Join("/sys/block", n)); err != nil {
				missing = append(missing, n)
				continue
			}
			if _, err := os.Stat(filepath.Join("/dev", n)); err != nil {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("guest: wait for block devices: %v missing after %v", missing, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PowerOff syncs and powers the machine off. It returns only on failure.
func PowerOff() error {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		return fmt.Errorf("guest: power off: %w", err)
	}
	return nil
}

// Reboot syncs and restarts the machine. It returns only on failure.
func Reboot() error {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		return fmt.Errorf("guest: reboot: %w", err)
	}
	return nil
}
