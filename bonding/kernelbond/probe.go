package kernelbond

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"
)

// ARP probes: the frames the datapath sends through one member and the
// replies it waits for. Pure; probe_linux.go does the socket I/O.

const (
	ethHdrLen    = 14
	etherTypeARP = 0x0806
	arpLen       = 28
	minFrameLen  = 60 // Ethernet minimum without FCS
	arpRequest   = 1
	arpReply     = 2
)

// broadcastMAC is the Ethernet broadcast address.
func broadcastMAC() [6]byte { return [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} }

// arpPacket is an Ethernet/IPv4 ARP packet.
type arpPacket struct {
	Op        uint16
	SenderMAC [6]byte
	SenderIP  netip.Addr
	TargetMAC [6]byte
	TargetIP  netip.Addr
}

var (
	errShort  = errors.New("frame too short")
	errNotARP = errors.New("not an Ethernet/IPv4 ARP packet")
)

// parseARP parses an untagged Ethernet frame carrying an Ethernet/IPv4 ARP
// packet.
func parseARP(frame []byte) (arpPacket, error) {
	if len(frame) < ethHdrLen {
		return arpPacket{}, fmt.Errorf("arp: %w: %d bytes", errShort, len(frame))
	}
	if binary.BigEndian.Uint16(frame[12:14]) != etherTypeARP {
		return arpPacket{}, errNotARP
	}
	p := frame[ethHdrLen:]
	if len(p) < arpLen {
		return arpPacket{}, fmt.Errorf("arp: %w: %d bytes", errShort, len(frame))
	}
	if binary.BigEndian.Uint16(p[0:2]) != 1 || binary.BigEndian.Uint16(p[2:4]) != 0x0800 || p[4] != 6 || p[5] != 4 {
		return arpPacket{}, errNotARP
	}
	return arpPacket{
		Op:        binary.BigEndian.Uint16(p[6:8]),
		SenderMAC: [6]byte(p[8:14]),
		SenderIP:  netip.AddrFrom4([4]byte(p[14:18])),
		TargetMAC: [6]byte(p[18:24]),
		TargetIP:  netip.AddrFrom4([4]byte(p[24:28])),
	}, nil
}

// appendARP appends an Ethernet frame from src to dst carrying a, padded to
// the Ethernet minimum. a's addresses must be IPv4.
func appendARP(b []byte, dst, src [6]byte, a arpPacket) []byte {
	start := len(b)
	b = append(b, dst[:]...)
	b = append(b, src[:]...)
	b = binary.BigEndian.AppendUint16(b, etherTypeARP)
	b = binary.BigEndian.AppendUint16(b, 1)      // Ethernet
	b = binary.BigEndian.AppendUint16(b, 0x0800) // IPv4
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, a.Op)
	b = append(b, a.SenderMAC[:]...)
	s := a.SenderIP.As4()
	b = append(b, s[:]...)
	b = append(b, a.TargetMAC[:]...)
	t := a.TargetIP.As4()
	b = append(b, t[:]...)
	for len(b)-start < minFrameLen {
		b = append(b, 0)
	}
	return b
}

// probe is one ARP request through a member and what answers it.
type probe struct {
	// MAC is the member's address: the frame's source, the request's
	// sender hardware address and the reply's target hardware address.
	MAC [6]byte
	// From is the request's sender IP: the bond's address while the member
	// is in the bond, 0.0.0.0 (an RFC 5227 probe) while it is not.
	From netip.Addr
	// Target is the address asked for.
	Target netip.Addr
}

// probeFor is the probe for a member: enslaved, it speaks for the bond
// (its MAC is the bond's: bondMAC, from bondIP); out of the bond (being
// checked, or forced out) it has its own MAC, ownMAC, and asks without
// claiming an address, so the target neither learns a wrong mapping for the
// bond's address nor sends the answer to the bond's MAC, which would reach
// the bond through another member.
func probeFor(enslaved bool, bondMAC, ownMAC [6]byte, bondIP, target netip.Addr) (probe, error) {
	if !target.Is4() || target.IsUnspecified() {
		return probe{}, fmt.Errorf("kernelbond: probe target %v is not an IPv4 host address", target)
	}
	if !enslaved {
		return probe{MAC: ownMAC, From: netip.IPv4Unspecified(), Target: target}, nil
	}
	if !bondIP.Is4() {
		return probe{}, fmt.Errorf("kernelbond: probe from %v: the bond has no IPv4 address", bondIP)
	}
	return probe{MAC: bondMAC, From: bondIP, Target: target}, nil
}

// frame is the broadcast ARP request.
func (p probe) frame() []byte {
	return appendARP(nil, broadcastMAC(), p.MAC, arpPacket{Op: arpRequest, SenderMAC: p.MAC, SenderIP: p.From, TargetIP: p.Target})
}

// answeredBy reports whether an Ethernet frame is the reply to p: an ARP
// reply from the target to p's sender, both its IP (0.0.0.0 for an RFC 5227
// probe, as Linux and slirp answer one) and its MAC.
func (p probe) answeredBy(frame []byte) bool {
	if !p.Target.IsValid() {
		return false
	}
	a, err := parseARP(frame)
	if err != nil {
		return false
	}
	return a.Op == arpReply && a.SenderIP == p.Target && a.TargetIP == p.From && a.TargetMAC == p.MAC
}

// replyFilterSnap is how much of a frame the socket filter keeps: the
// Ethernet header and the ARP packet.
const replyFilterSnap = ethHdrLen + arpLen

// replyFilter is the classic BPF program on a member's socket: Ethernet
// frames carrying an ARP reply, cut to replyFilterSnap bytes; everything
// else stays in the kernel.
func replyFilter() ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeARP, SkipTrue: 3},
		bpf.LoadAbsolute{Off: ethHdrLen + 6, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: arpReply, SkipTrue: 1},
		bpf.RetConstant{Val: replyFilterSnap},
		bpf.RetConstant{Val: 0},
	})
}
