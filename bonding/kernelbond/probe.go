package kernelbond

import (
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"

	"ftnas/bonding/userland"
)

// ARP probes: the frames the datapath sends through one member and the
// replies it waits for. Pure; probe_linux.go does the socket I/O.

// The ARP codec is the userland datapath's (userland.ParseARP,
// AppendARP): the frames are the same.
const (
	ethHdrLen    = 14
	etherTypeARP = 0x0806
	arpLen       = 28
)

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
	return userland.AppendARP(nil, userland.Broadcast, p.MAC, userland.ARP{Op: userland.ARPRequest, SenderMAC: p.MAC, SenderIP: p.From, TargetIP: p.Target})
}

// answeredBy reports whether an Ethernet frame is the reply to p: an ARP
// reply from the target to p's sender, both its IP (0.0.0.0 for an RFC 5227
// probe, as Linux and slirp answer one) and its MAC.
func (p probe) answeredBy(frame []byte) bool {
	if !p.Target.IsValid() {
		return false
	}
	a, err := userland.ParseARP(frame)
	if err != nil {
		return false
	}
	return a.Op == userland.ARPReply && a.SenderIP == p.Target && a.TargetIP == p.From && a.TargetMAC == p.MAC
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
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: userland.ARPReply, SkipTrue: 1},
		bpf.RetConstant{Val: replyFilterSnap},
		bpf.RetConstant{Val: 0},
	})
}
