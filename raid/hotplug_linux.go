package raid

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// UeventListener receives kernel uevents on a NETLINK_KOBJECT_UEVENT
// socket (the kernel's multicast group 1, the one udev listens to).
type UeventListener struct {
	f *os.File
}

// ListenUevents opens the uevent socket.
func ListenUevents() (*UeventListener, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("raid: uevent socket: %w", err)
	}
	// A burst of hot-plug events must not overflow the queue.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("raid: uevent bind: %w", err)
	}
	return &UeventListener{f: os.NewFile(uintptr(fd), "uevent")}, nil
}

// ErrUeventOverrun is returned by Read when the kernel dropped events
// because the socket's queue was full: whoever reads should re-evaluate
// everything.
var ErrUeventOverrun = errors.New("raid: uevent queue overrun, events lost")

// Read returns the next kernel uevent. Messages that do not parse or do
// not come from the kernel are skipped. It fails with ErrUeventOverrun
// after lost events (and may be called again), or with an error once
// the listener is closed.
func (l *UeventListener) Read() (Uevent, error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return Uevent{}, fmt.Errorf("raid: uevent read: %w", err)
	}
	buf := make([]byte, maxUevent+1)
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil {
			return Uevent{}, fmt.Errorf("raid: uevent read: %w", err)
		}
		if errors.Is(rerr, unix.ENOBUFS) {
			return Uevent{}, ErrUeventOverrun
		}
		if rerr != nil {
			return Uevent{}, fmt.Errorf("raid: uevent read: %w", rerr)
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // only the kernel speaks here
		}
		u, err := ParseUevent(buf[:n])
		if err != nil {
			continue
		}
		return u, nil
	}
}

// Close closes the socket; a blocked Read returns.
func (l *UeventListener) Close() error { return l.f.Close() }

// RunUevents runs the Manager (see Run), triggered by block devices
// appearing and vanishing, until ctx ends.
func (m *Manager) RunUevents(ctx context.Context) error {
	l, err := ListenUevents()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	triggers := make(chan struct{}, 1)
	go func() {
		for {
			u, err := l.Read()
			switch {
			case errors.Is(err, ErrUeventOverrun):
				m.logger().Warn("raid: uevents lost; re-evaluating")
			case err != nil:
				if ctx.Err() == nil {
					m.logger().Error("raid: uevent listener stopped; only periodic evaluation remains", "err", err)
				}
				return
			case u.BlockHotplug():
				m.logger().Debug("raid: block uevent", "action", u.Action, "device", u.DevName())
			default:
				continue
			}
			select {
			case triggers <- struct{}{}:
			default: // an evaluation is already pending
			}
		}
	}()
	return m.Run(ctx, triggers)
}
