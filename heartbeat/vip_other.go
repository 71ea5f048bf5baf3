//go:build !linux

package heartbeat

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

var errVIPUnsupported = errors.New("heartbeat: virtual IPs need Linux")

// AddAddress is not supported on this system.
func AddAddress(string, netip.Prefix) error { return errVIPUnsupported }

// RemoveAddress is not supported on this system.
func RemoveAddress(string, netip.Prefix) error { return errVIPUnsupported }

// HasAddress is not supported on this system.
func HasAddress(string, netip.Prefix) (bool, error) { return false, errVIPUnsupported }

// SendGratuitousARP is not supported on this system.
func SendGratuitousARP(context.Context, string, netip.Addr, int, time.Duration) error {
	return errVIPUnsupported
}

// VIP is the virtual IP on one interface (Linux only).
type VIP struct {
	Interface   string
	Prefix      netip.Prefix
	ARPCount    int
	ARPInterval time.Duration
}

// Add is not supported on this system.
func (VIP) Add(context.Context) error { return errVIPUnsupported }

// Remove is not supported on this system.
func (VIP) Remove(context.Context) error { return errVIPUnsupported }

// Announce is not supported on this system.
func (VIP) Announce(context.Context) error { return errVIPUnsupported }
