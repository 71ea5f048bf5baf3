//go:build !linux

package heartbeat

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// ProbeVIP fails: raw ARP needs Linux.
func ProbeVIP(context.Context, string, netip.Addr, time.Duration) (net.HardwareAddr, error) {
	return nil, errVIPUnsupported
}
