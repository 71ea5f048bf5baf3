package appliance

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"ftnas/appliance/store"
	"ftnas/heartbeat"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// The witness and the VIP probe a standby asks before it takes over
// (cluster_linux.go runs the pair).

// vipProbeWait is how long a standby listens for another host answering
// for the VIP (within the witness probe's timeout).
const vipProbeWait = 150 * time.Millisecond

// witnessPingRetry is how often pingWitness resends its echo.
const witnessPingRetry = 60 * time.Millisecond

// witnessAndVIP is the witness as the failover machine asks it when the
// peer has gone silent: the witness must answer, and, on a node that does
// not hold the VIP, no other host may answer for the VIP
// (heartbeat.ProbeVIP). A master whose heartbeats are lost on both paths
// but which still serves (and so still renews its lease) answers for the
// VIP; the standby then stays standby instead of serving beside it. A
// dead, frozen or released master does not answer: its fence drops the
// VIP's ARP once its lease has run out, before the standby asks.
func witnessAndVIP(c store.Cluster, log *slog.Logger, onHeld func()) func(ctx context.Context) bool {
	ping := pingWitness(c.Witness)
	return func(ctx context.Context) bool {
		if held, err := heartbeat.HasAddress(c.Interface, c.VIP); err == nil && held {
			return ping(ctx)
		}
		type answer struct {
			holder net.HardwareAddr
			err    error
		}
		ac := make(chan answer, 1)
		go func() {
			h, err := heartbeat.ProbeVIP(ctx, c.Interface, c.VIP.Addr(), vipProbeWait)
			ac <- answer{h, err}
		}()
		ok := ping(ctx)
		a := <-ac
		switch {
		case a.err != nil:
			// Cannot tell: the witness alone decides, as before.
			log.Warn("cluster: cannot ask who holds the VIP", "err", a.err)
		case a.holder != nil:
			log.Warn("cluster: no heartbeat from the peer, but a host answers for the VIP: not taking over, and no copy of its data from now on (split heartbeat paths?)",
				"vip", c.VIP.Addr(), "holder", a.holder)
			onHeld()
			return false
		}
		return ok
	}
}

// pingWitness probes the witness with ICMP echoes, one every
// witnessPingRetry until one is answered or the context's deadline: a
// single lost echo or reply must not cost a serving node its lease.
func pingWitness(addr netip.Addr) func(ctx context.Context) bool {
	return func(ctx context.Context) bool {
		c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return false
		}
		defer c.Close()
		deadline, ok := ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(heartbeat.DefaultWitnessTimeout)
		}
		var idb [2]byte
		rand.Read(idb[:])
		id := int(binary.BigEndian.Uint16(idb[:]))
		dst := &net.IPAddr{IP: addr.AsSlice()}
		buf := make([]byte, 1500)
		for seq := 1; time.Now().Before(deadline); seq++ {
			msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("ftnas-witness")}}
			wb, err := msg.Marshal(nil)
			if err != nil {
				return false
			}
			if _, err := c.WriteTo(wb, dst); err != nil {
				return false
			}
			rd := time.Now().Add(witnessPingRetry)
			if deadline.Before(rd) {
				rd = deadline
			}
			c.SetReadDeadline(rd)
			for {
				n, from, err := c.ReadFrom(buf)
				if err != nil {
					break // resend, or give up at the deadline
				}
				if ip, ok := from.(*net.IPAddr); !ok || !ip.IP.Equal(dst.IP) {
					continue
				}
				m, err := icmp.ParseMessage(1, buf[:n])
				if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
					continue
				}
				if e, ok := m.Body.(*icmp.Echo); ok && e.ID == id {
					return true
				}
			}
		}
		return false
	}
}

// interfaceFor returns the interface that holds addr.
func interfaceFor(addr netip.Addr) (string, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return "", fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr {
			l, err := netlink.LinkByIndex(a.LinkIndex)
			if err != nil {
				return "", fmt.Errorf("link %d: %w", a.LinkIndex, err)
			}
			return l.Attrs().Name, nil
		}
	}
	return "", errors.New("no interface has it")
}
