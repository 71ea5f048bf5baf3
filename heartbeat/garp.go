package heartbeat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/ethernet"
)

// ARP opcodes.
const (
	arpRequest = 1
	arpReply   = 2
)

// arpSize is the size of an Ethernet/IPv4 ARP packet (RFC 826).
const arpSize = 28

// arpPacket is an Ethernet/IPv4 ARP packet.
type arpPacket struct {
	Op        uint16
	SenderMAC net.HardwareAddr
	SenderIP  netip.Addr
	TargetMAC net.HardwareAddr
	TargetIP  netip.Addr
}

var errARP = errors.New("not an Ethernet/IPv4 ARP packet")

func (a arpPacket) marshal() ([]byte, error) {
	if len(a.SenderMAC) != 6 || len(a.TargetMAC) != 6 || !a.SenderIP.Is4() || !a.TargetIP.Is4() {
		return nil, fmt.Errorf("heartbeat: arp: marshal: want 6-byte MACs and IPv4 addresses, have %v %v %v %v",
			a.SenderMAC, a.SenderIP, a.TargetMAC, a.TargetIP)
	}
	b := make([]byte, 0, arpSize)
	b = binary.BigEndian.AppendUint16(b, 1)      // hardware type: Ethernet
	b = binary.BigEndian.AppendUint16(b, 0x0800) // protocol type: IPv4
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, a.Op)
	b = append(b, a.SenderMAC...)
	b = append(b, a.SenderIP.AsSlice()...)
	b = append(b, a.TargetMAC...)
	b = append(b, a.TargetIP.AsSlice()...)
	return b, nil
}

// parseARP parses an Ethernet/IPv4 ARP packet; trailing padding is ignored.
func parseARP(b []byte) (arpPacket, error) {
	if len(b) < arpSize {
		return arpPacket{}, fmt.Errorf("heartbeat: arp: parse: %w: %d bytes", errARP, len(b))
	}
	if ht, pt := binary.BigEndian.Uint16(b[0:]), binary.BigEndian.Uint16(b[2:]); ht != 1 || pt != 0x0800 || b[4] != 6 || b[5] != 4 {
		return arpPacket{}, fmt.Errorf("heartbeat: arp: parse: %w: htype %d ptype %#04x hlen %d plen %d", errARP, ht, pt, b[4], b[5])
	}
	return arpPacket{
		Op:        binary.BigEndian.Uint16(b[6:]),
		SenderMAC: net.HardwareAddr(append([]byte(nil), b[8:14]...)),
		SenderIP:  netip.AddrFrom4([4]byte(b[14:18])),
		TargetMAC: net.HardwareAddr(append([]byte(nil), b[18:24]...)),
		TargetIP:  netip.AddrFrom4([4]byte(b[24:28])),
	}, nil
}

// gratuitousARPFrame is the Ethernet frame announcing that ip is at mac: a
// broadcast ARP request with the sender and target IP both set to ip.
func gratuitousARPFrame(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	payload, err := arpPacket{
		Op:        arpRequest,
		SenderMAC: mac,
		SenderIP:  ip,
		TargetMAC: make(net.HardwareAddr, 6),
		TargetIP:  ip,
	}.marshal()
	if err != nil {
		return nil, err
	}
	return broadcastARP(mac, payload)
}

// broadcastARP wraps an ARP payload from mac in a broadcast Ethernet frame.
func broadcastARP(mac net.HardwareAddr, payload []byte) ([]byte, error) {
	f := ethernet.Frame{Destination: ethernet.Broadcast, Source: mac, EtherType: ethernet.EtherTypeARP, Payload: payload}
	b, err := f.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("heartbeat: arp: ethernet frame: %w", err)
	}
	return b, nil
}
