package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
)

// vipProbeRetry is how often the probe is sent again while it waits.
const vipProbeRetry = 50 * time.Millisecond

// ProbeVIP asks the LAN on ifname who has vip until ctx ends (or wait
// passes) and returns the MAC of the first other host that says it has
// it, or nil if none did. See the VIP probe in vipprobe.go.
func ProbeVIP(ctx context.Context, ifname string, vip netip.Addr, wait time.Duration) (net.HardwareAddr, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: vip probe on %s: %w", ifname, err)
	}
	frame, err := vipProbeFrame(ifc.HardwareAddr, vip)
	if err != nil {
		return nil, err
	}
	c, err := packet.Listen(ifc, packet.Raw, int(ethernet.EtherTypeARP), nil)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: vip probe on %s: %w", ifname, err)
	}
	defer c.Close()
	deadline := time.Now().Add(wait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	to := &packet.Addr{HardwareAddr: ethernet.Broadcast}
	buf := make([]byte, 1514)
	for next := time.Now(); ; {
		if !time.Now().Before(next) {
			if _, err := c.WriteTo(frame, to); err != nil {
				return nil, fmt.Errorf("heartbeat: vip probe on %s: send: %w", ifname, err)
			}
			next = time.Now().Add(vipProbeRetry)
		}
		rd := next
		if deadline.Before(rd) {
			rd = deadline
		}
		if err := c.SetReadDeadline(rd); err != nil {
			return nil, fmt.Errorf("heartbeat: vip probe on %s: %w", ifname, err)
		}
		n, _, err := c.ReadFrom(buf)
		switch {
		case err == nil:
			if mac, ok := vipHolder(buf[:n], vip, ifc.HardwareAddr); ok {
				return mac, nil
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
			if !time.Now().Before(deadline) || ctx.Err() != nil {
				return nil, nil
			}
		default:
			return nil, fmt.Errorf("heartbeat: vip probe on %s: receive: %w", ifname, err)
		}
	}
}
