//go:build !linux

package fence

import (
	"errors"
	"net/netip"
	"time"
)

// Fence is the lease program; it exists only on Linux.
type Fence struct{}

// Attach fails: tcx programs are Linux-only.
func Attach(string, netip.Addr) (*Fence, error) {
	return nil, errors.New("fence: tcx lease enforcement needs Linux")
}

// AttachPinned fails: tcx programs are Linux-only.
func AttachPinned(string, netip.Addr, string) (*Fence, error) {
	return nil, errors.New("fence: tcx lease enforcement needs Linux")
}

// Sweep does nothing.
func Sweep(string) error { return nil }

// MountBPFFS fails: BPF filesystems are Linux-only.
func MountBPFFS(string) error { return errors.New("fence: BPF filesystems need Linux") }

// Renew does nothing.
func (*Fence) Renew(time.Time) error { return nil }

// Expire does nothing.
func (*Fence) Expire() error { return nil }

// Close does nothing.
func (*Fence) Close() error { return nil }
