package heartbeat

import (
	"bytes"
	"net"
	"net/netip"

	"github.com/mdlayher/ethernet"
)

// The VIP probe arbitrates what the witness cannot. The witness only
// answers pings, so when both heartbeat paths are cut while both nodes
// still reach it, a standby that trusts it alone promotes while the
// master, still hearing the witness, keeps serving: two masters. Before a
// standby promotes it therefore asks the LAN who has the VIP (an RFC
// 5227 ARP probe, sender IP 0.0.0.0, so no neighbour cache learns
// anything from it). A master that is alive and holds its lease answers
// (its fence passes the VIP's ARP while the lease lasts); a dead, frozen
// or released master does not (a frozen or killed master's fence drops
// the VIP's ARP once the lease ran out, and the standby asks only after
// that). An answer from another MAC means the VIP is served: the standby
// stays standby and raises an alarm.

// vipProbeFrame is a broadcast ARP probe for vip from mac.
func vipProbeFrame(mac net.HardwareAddr, vip netip.Addr) ([]byte, error) {
	payload, err := arpPacket{
		Op:        arpRequest,
		SenderMAC: mac,
		SenderIP:  netip.IPv4Unspecified(),
		TargetMAC: make(net.HardwareAddr, 6),
		TargetIP:  vip,
	}.marshal()
	if err != nil {
		return nil, err
	}
	return broadcastARP(mac, payload)
}

// vipHolder reads one received Ethernet frame: if it is an ARP packet in
// which a host other than own says it has vip (a reply, or a gratuitous
// announcement), it returns that host's MAC.
func vipHolder(frame []byte, vip netip.Addr, own net.HardwareAddr) (net.HardwareAddr, bool) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil || f.EtherType != ethernet.EtherTypeARP {
		return nil, false
	}
	a, err := parseARP(f.Payload)
	if err != nil || a.SenderIP != vip || bytes.Equal(a.SenderMAC, own) {
		return nil, false
	}
	if a.Op != arpReply && !(a.Op == arpRequest && a.TargetIP == vip) {
		return nil, false
	}
	return a.SenderMAC, true
}
