//go:build !linux

package heartbeat

import (
	"errors"
	"log/slog"
	"net/netip"
)

// UDP is the real Transport (Linux only).
type UDP struct{}

// NewUDP is not supported on this system.
func NewUDP([]UDPPath, *slog.Logger) (*UDP, error) {
	return nil, errors.New("heartbeat: udp transport needs Linux")
}

// LocalAddr is not supported on this system.
func (*UDP) LocalAddr(int) netip.AddrPort { return netip.AddrPort{} }

// Send is not supported on this system.
func (*UDP) Send(int, []byte) error { return errors.New("heartbeat: udp transport needs Linux") }

// Packets is not supported on this system.
func (*UDP) Packets() <-chan Packet { return nil }

// Stats is not supported on this system.
func (*UDP) Stats() UDPStats { return UDPStats{} }

// Close is not supported on this system.
func (*UDP) Close() error { return nil }
