package userland

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// VnetHdrLen is the size of struct virtio_net_hdr, which precedes every
// frame read from or written to the TAP device (IFF_VNET_HDR) and the
// member sockets (PACKET_VNET_HDR). It carries the checksum and
// segmentation offload state, so frames pass between them unchanged.
const VnetHdrLen = 10

const (
	ethHdrLen    = 14
	etherTypeARP = 0x0806
	arpLen       = 28
	minFrameLen  = 60 // without FCS
)

// Broadcast is the Ethernet broadcast address.
var Broadcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// ARP operations.
const (
	ARPRequest = 1
	ARPReply   = 2
)

// ARP is an Ethernet/IPv4 ARP packet.
type ARP struct {
	Op        uint16
	SenderMAC [6]byte
	SenderIP  netip.Addr
	TargetMAC [6]byte
	TargetIP  netip.Addr
}

// Errors from ParseARP.
var (
	ErrShort  = errors.New("frame too short")
	ErrNotARP = errors.New("not an Ethernet/IPv4 ARP packet")
)

// ParseARP parses an untagged Ethernet frame (no virtio header) carrying
// an Ethernet/IPv4 ARP packet. It does not allocate.
func ParseARP(frame []byte) (ARP, error) {
	if len(frame) < ethHdrLen {
		return ARP{}, ErrShort
	}
	if binary.BigEndian.Uint16(frame[12:14]) != etherTypeARP {
		return ARP{}, ErrNotARP
	}
	p := frame[ethHdrLen:]
	if len(p) < arpLen {
		return ARP{}, fmt.Errorf("arp: %w: %d bytes", ErrShort, len(p))
	}
	// htype Ethernet, ptype IPv4, hlen 6, plen 4
	if binary.BigEndian.Uint16(p[0:2]) != 1 || binary.BigEndian.Uint16(p[2:4]) != 0x0800 || p[4] != 6 || p[5] != 4 {
		return ARP{}, ErrNotARP
	}
	var a ARP
	a.Op = binary.BigEndian.Uint16(p[6:8])
	copy(a.SenderMAC[:], p[8:14])
	a.SenderIP = netip.AddrFrom4([4]byte(p[14:18]))
	copy(a.TargetMAC[:], p[18:24])
	a.TargetIP = netip.AddrFrom4([4]byte(p[24:28]))
	return a, nil
}

// AppendARP appends an Ethernet frame carrying a to b, from src to dst,
// padded to the Ethernet minimum. SenderIP and TargetIP must be IPv4.
func AppendARP(b []byte, dst, src [6]byte, a ARP) []byte {
	start := len(b)
	b = append(b, dst[:]...)
	b = append(b, src[:]...)
	b = binary.BigEndian.AppendUint16(b, etherTypeARP)
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint16(b, 0x0800)
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, a.Op)
	b = append(b, a.SenderMAC[:]...)
	s4 := a.SenderIP.As4()
	b = append(b, s4[:]...)
	b = append(b, a.TargetMAC[:]...)
	t4 := a.TargetIP.As4()
	b = append(b, t4[:]...)
	for len(b)-start < minFrameLen {
		b = append(b, 0)
	}
	return b
}

// verdict is what the receive path does with a frame from a member.
type verdict uint8

const (
	deliver verdict = iota // into the TAP device
	drop                   // not for us (or malformed)
	answer                 // an ARP request for one of the bond's addresses: answered on the member it came in on
)

// identity is what the receive path needs to know about the bond.
type identity struct {
	mac   [6]byte
	addrs []netip.Addr // IPv4
}

func (id *identity) owns(a netip.Addr) bool {
	for _, x := range id.addrs {
		if x == a {
			return true
		}
	}
	return false
}

// classify decides what to do with an Ethernet frame (no virtio header)
// received through a member. With id nil (no bond yet) nothing is
// answered. It does not allocate.
func classify(frame []byte, id *identity) (verdict, ARP) {
	if len(frame) < ethHdrLen {
		return drop, ARP{}
	}
	if id == nil {
		return deliver, ARP{}
	}
	if frame[0]&1 == 0 && [6]byte(frame[0:6]) != id.mac {
		return drop, ARP{} // unicast to some other station (flooded by a switch)
	}
	if binary.BigEndian.Uint16(frame[12:14]) != etherTypeARP {
		return deliver, ARP{}
	}
	a, err := ParseARP(frame)
	if err != nil {
		return drop, ARP{}
	}
	if a.Op == ARPRequest && a.SenderIP != a.TargetIP && id.owns(a.TargetIP) {
		return answer, a
	}
	return deliver, a
}

// appendReply appends the ARP reply to request q, from the bond.
func appendReply(b []byte, id *identity, q ARP) []byte {
	return AppendARP(b, q.SenderMAC, id.mac, ARP{
		Op: ARPReply, SenderMAC: id.mac, SenderIP: q.TargetIP,
		TargetMAC: q.SenderMAC, TargetIP: q.SenderIP,
	})
}

// probeKey is what a probe through a port is waiting for: an ARP reply from
// the target to the prober, packed as target<<32 | prober (IPv4 addresses,
// big-endian) so the receive path reads it atomically. Zero: no probe sent.
type probeKey uint64

func newProbeKey(target, prober netip.Addr) probeKey {
	t, p := target.As4(), prober.As4()
	return probeKey(uint64(binary.BigEndian.Uint32(t[:]))<<32 | uint64(binary.BigEndian.Uint32(p[:])))
}

// isProbeAnswer reports whether an Ethernet frame (no virtio header) is the
// answer to probe k: an Ethernet/IPv4 ARP reply whose sender IP is k's
// target and whose target IP is k's prober. Anything else (IPv6 chatter, a
// gratuitous ARP, a reply to someone else) is not. It does not allocate.
func isProbeAnswer(frame []byte, k probeKey) bool {
	if k == 0 || len(frame) < ethHdrLen || binary.BigEndian.Uint16(frame[12:14]) != etherTypeARP {
		return false
	}
	a, err := ParseARP(frame)
	if err != nil || a.Op != ARPReply {
		return false
	}
	return newProbeKey(a.SenderIP, a.TargetIP) == k
}
