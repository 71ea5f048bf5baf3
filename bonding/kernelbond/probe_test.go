package kernelbond

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"

	"ftnas/bonding/userland"
)

var (
	bondMAC  = [6]byte{0x52, 0x54, 0x00, 0xb0, 0x0d, 0x01}
	ownMAC   = [6]byte{0x52, 0x54, 0x00, 0xb0, 0x0d, 0x02}
	gwMAC    = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0xfe}
	bondIP   = netip.MustParseAddr("10.99.0.1")
	targetIP = netip.MustParseAddr("10.99.0.2")
	zeroIP   = netip.IPv4Unspecified()
)

// reply is the target's answer to p as Linux (and slirp) sends it.
func reply(p probe) []byte {
	return userland.AppendARP(nil, p.MAC, gwMAC, userland.ARP{Op: userland.ARPReply, SenderMAC: gwMAC, SenderIP: p.Target, TargetMAC: p.MAC, TargetIP: p.From})
}

func TestProbeFor(t *testing.T) {
	p, err := probeFor(true, bondMAC, ownMAC, bondIP, targetIP)
	if err != nil || p != (probe{MAC: bondMAC, From: bondIP, Target: targetIP}) {
		t.Errorf("enslaved: %+v, %v; want the bond's MAC and address", p, err)
	}
	p, err = probeFor(false, bondMAC, ownMAC, bondIP, targetIP)
	if err != nil || p != (probe{MAC: ownMAC, From: zeroIP, Target: targetIP}) {
		t.Errorf("out of the bond: %+v, %v; want its own MAC and 0.0.0.0 (RFC 5227)", p, err)
	}
	for _, c := range []struct {
		enslaved bool
		from, to netip.Addr
	}{
		{true, bondIP, netip.Addr{}},
		{true, bondIP, netip.MustParseAddr("fe80::1")},
		{true, bondIP, zeroIP},
		{true, netip.Addr{}, targetIP},
		{false, bondIP, netip.Addr{}},
	} {
		if p, err := probeFor(c.enslaved, bondMAC, ownMAC, c.from, c.to); err == nil {
			t.Errorf("probeFor(%v, %v -> %v) = %+v, want an error", c.enslaved, c.from, c.to, p)
		}
	}
}

// TestProbeFrame checks the request byte by byte.
func TestProbeFrame(t *testing.T) {
	f := probe{MAC: ownMAC, From: zeroIP, Target: targetIP}.frame()
	want := "ffffffffffff" + "525400b00d02" + "0806" + // Ethernet
		"0001" + "0800" + "06" + "04" + "0001" + // Ethernet/IPv4, request
		"525400b00d02" + "00000000" + // sender: own MAC, 0.0.0.0
		"000000000000" + "0a630002" + // target: unknown, 10.99.0.2
		"000000000000000000000000000000000000" // padding to 60 bytes
	if got := hex.EncodeToString(f); got != want {
		t.Fatalf("RFC 5227 probe:\n got %s\nwant %s", got, want)
	}
	f = probe{MAC: bondMAC, From: bondIP, Target: targetIP}.frame()
	if len(f) != 60 || !bytes.Equal(f[6:12], bondMAC[:]) || !bytes.Equal(f[28:32], []byte{10, 99, 0, 1}) {
		t.Fatalf("bond probe % x", f)
	}
}

func TestAnsweredBy(t *testing.T) {
	rfc := probe{MAC: ownMAC, From: zeroIP, Target: targetIP}
	bond := probe{MAC: bondMAC, From: bondIP, Target: targetIP}
	withTargetMAC := func(p probe, mac [6]byte) []byte {
		f := reply(p)
		copy(f[32:38], mac[:])
		return f
	}
	asRequest := func(p probe) []byte {
		f := reply(p)
		f[21] = userland.ARPRequest
		return f
	}
	for _, c := range []struct {
		name  string
		p     probe
		frame []byte
		want  bool
	}{
		{"reply to the RFC 5227 probe", rfc, reply(rfc), true},
		{"reply to the bond's probe", bond, reply(bond), true},
		// Another member's answers reach this one through a hub or a
		// flooding switch: they are not this member's.
		{"reply to the bond's probe, out of the bond", rfc, reply(bond), false},
		{"reply to another NIC's RFC 5227 probe", rfc, withTargetMAC(rfc, bondMAC), false},
		{"reply to an RFC 5227 probe, in the bond", bond, reply(rfc), false},
		{"reply from another host", bond, reply(probe{MAC: bondMAC, From: bondIP, Target: netip.MustParseAddr("10.99.0.3")}), false},
		{"a request", bond, asRequest(bond), false},
		{"the probe itself", bond, bond.frame(), false},
		{"truncated", bond, reply(bond)[:40], false},
		{"no probe sent", probe{}, reply(bond), false},
	} {
		if got := c.p.answeredBy(c.frame); got != c.want {
			t.Errorf("%s: answered %v, want %v", c.name, got, c.want)
		}
	}
}

// TestReplyFilter runs the socket filter in x/net/bpf's interpreter.
func TestReplyFilter(t *testing.T) {
	raw, err := replyFilter()
	if err != nil {
		t.Fatal(err)
	}
	var prog []bpf.Instruction
	for _, r := range raw {
		prog = append(prog, r.Disassemble())
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	bond := probe{MAC: bondMAC, From: bondIP, Target: targetIP}
	ipv4 := reply(bond)
	ipv4[12], ipv4[13] = 0x08, 0x00
	for _, c := range []struct {
		name  string
		frame []byte
		want  int
	}{
		{"reply", reply(bond), replyFilterSnap},
		{"request", bond.frame(), 0},
		{"IPv4", ipv4, 0},
		{"short", reply(bond)[:18], 0},
	} {
		got, err := vm.Run(c.frame)
		if err != nil || got != c.want {
			t.Errorf("%s: keeps %d bytes (%v), want %d", c.name, got, err, c.want)
		}
	}
}

// FuzzParseARP: arbitrary frames must not panic; a parsed packet encodes
// back to itself, and a frame taken for a probe's answer is a reply to it.
func FuzzParseARP(f *testing.F) {
	rfc := probe{MAC: ownMAC, From: zeroIP, Target: targetIP}
	bond := probe{MAC: bondMAC, From: bondIP, Target: targetIP}
	f.Add(reply(rfc))
	f.Add(reply(bond))
	f.Add(bond.frame())
	f.Add(reply(bond)[:30])
	f.Add([]byte{})
	f.Add(make([]byte, 14))
	f.Fuzz(func(t *testing.T, frame []byte) {
		a, err := userland.ParseARP(frame)
		if err != nil {
			if rfc.answeredBy(frame) || bond.answeredBy(frame) {
				t.Fatalf("unparsable frame taken for an answer: %v", err)
			}
			return
		}
		b, err := userland.ParseARP(userland.AppendARP(nil, [6]byte(frame[0:6]), [6]byte(frame[6:12]), a))
		if err != nil || b != a {
			t.Fatalf("round trip %+v -> %+v, %v", a, b, err)
		}
		for _, p := range []probe{rfc, bond} {
			if p.answeredBy(frame) && (a.Op != userland.ARPReply || a.SenderIP != p.Target || a.TargetIP != p.From || a.TargetMAC != p.MAC) {
				t.Fatalf("%+v taken for the answer to %+v", a, p)
			}
		}
	})
}
