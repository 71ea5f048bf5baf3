//go:build !linux

package tickle

import (
	"context"
	"errors"
	"net/netip"
)

// Connections needs Linux.
func Connections(vip netip.Addr, ports []uint16) ([]Conn, error) {
	return nil, errors.New("tickle: needs Linux")
}

// Tickle needs Linux.
func Tickle(ctx context.Context, conns []Conn, count int) (Report, error) {
	return Report{}, errors.New("tickle: needs Linux")
}
