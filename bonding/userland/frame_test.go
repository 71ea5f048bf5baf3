package userland

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

var (
	bondMAC = [6]byte{2, 0xb0, 0, 0, 0, 1}
	peerMAC = [6]byte{2, 0xb0, 0, 0, 0, 2}
	bondIP  = netip.MustParseAddr("10.77.0.1")
	peerIP  = netip.MustParseAddr("10.77.0.2")
	bondID  = &identity{mac: bondMAC, addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1"), bondIP}}
)

func request(from [6]byte, fromIP, want netip.Addr) []byte {
	return AppendARP(nil, Broadcast, from, ARP{Op: ARPRequest, SenderMAC: from, SenderIP: fromIP, TargetIP: want})
}

func TestARPRoundTrip(t *testing.T) {
	a := ARP{Op: ARPReply, SenderMAC: bondMAC, SenderIP: bondIP, TargetMAC: peerMAC, TargetIP: peerIP}
	f := AppendARP([]byte{9}, peerMAC, bondMAC, a)
	if len(f) != 1+60 || f[0] != 9 {
		t.Fatalf("frame length %d (want prefix kept and padding to 60)", len(f))
	}
	got, err := ParseARP(f[1:])
	if err != nil || got != a {
		t.Fatalf("ParseARP = %+v, %v; want %+v", got, err, a)
	}
	want := []byte{
		2, 0xb0, 0, 0, 0, 2, 2, 0xb0, 0, 0, 0, 1, 0x08, 0x06, // ethernet
		0, 1, 8, 0, 6, 4, 0, 2, // htype ptype hlen plen op
		2, 0xb0, 0, 0, 0, 1, 10, 77, 0, 1, 2, 0xb0, 0, 0, 0, 2, 10, 77, 0, 2,
	}
	if !bytes.Equal(f[1:1+len(want)], want) {
		t.Fatalf("wire bytes\n got %x\nwant %x", f[1:1+len(want)], want)
	}
}

func TestParseARPErrors(t *testing.T) {
	good := request(peerMAC, peerIP, bondIP)
	for name, tc := range map[string]struct {
		f    []byte
		want error
	}{
		"runt":      {good[:10], ErrShort},
		"ipv4":      {append(append([]byte{}, good[:12]...), 0x08, 0x00), ErrNotARP},
		"short arp": {good[:14+27], ErrShort},
		"ipv6 arp":  {func() []byte { f := bytes.Clone(good); f[17] = 0xdd; return f }(), ErrNotARP},
		"hlen 8":    {func() []byte { f := bytes.Clone(good); f[18] = 8; return f }(), ErrNotARP},
	} {
		if _, err := ParseARP(tc.f); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	ipv4 := func(dst [6]byte) []byte {
		f := make([]byte, 60)
		copy(f, dst[:])
		copy(f[6:], peerMAC[:])
		f[12], f[13] = 0x08, 0x00
		return f
	}
	other := [6]byte{2, 9, 9, 9, 9, 9}
	for name, tc := range map[string]struct {
		f    []byte
		id   *identity
		want verdict
	}{
		"runt":                     {[]byte{1, 2, 3}, bondID, drop},
		"unicast to us":            {ipv4(bondMAC), bondID, deliver},
		"unicast to another":       {ipv4(other), bondID, drop},
		"multicast":                {ipv4([6]byte{1, 0, 0x5e, 0, 0, 1}), bondID, deliver},
		"no bond yet":              {ipv4(other), nil, deliver},
		"arp request for us":       {request(peerMAC, peerIP, bondIP), bondID, answer},
		"arp request for 2nd addr": {request(peerMAC, peerIP, netip.MustParseAddr("192.0.2.1")), bondID, answer},
		"arp request for another":  {request(peerMAC, peerIP, netip.MustParseAddr("10.77.0.9")), bondID, deliver},
		"gratuitous arp":           {request(peerMAC, bondIP, bondIP), bondID, deliver},
		"arp request, no bond":     {request(peerMAC, peerIP, bondIP), nil, deliver},
		"arp reply to us":          {AppendARP(nil, bondMAC, peerMAC, ARP{Op: ARPReply, SenderMAC: peerMAC, SenderIP: peerIP, TargetMAC: bondMAC, TargetIP: bondIP}), bondID, deliver},
		"malformed arp":            {request(peerMAC, peerIP, bondIP)[:20], bondID, drop},
	} {
		got, _ := classify(tc.f, tc.id)
		if got != tc.want {
			t.Errorf("%s: verdict %d, want %d", name, got, tc.want)
		}
	}
	// The answer goes back to the asker, from the bond, for the address asked.
	_, q := classify(request(peerMAC, peerIP, bondIP), bondID)
	r, err := ParseARP(appendReply(nil, bondID, q))
	want := ARP{Op: ARPReply, SenderMAC: bondMAC, SenderIP: bondIP, TargetMAC: peerMAC, TargetIP: peerIP}
	if err != nil || r != want {
		t.Fatalf("reply = %+v, %v; want %+v", r, err, want)
	}
	if f := appendReply(nil, bondID, q); [6]byte(f[0:6]) != peerMAC || [6]byte(f[6:12]) != bondMAC {
		t.Fatalf("reply ethernet header %x", f[:12])
	}
}

func TestClassifyDoesNotAllocate(t *testing.T) {
	f := request(peerMAC, peerIP, bondIP)
	if n := testing.AllocsPerRun(100, func() { classify(f, bondID) }); n != 0 {
		t.Fatalf("classify allocates %v times per frame", n)
	}
}

// FuzzClassify feeds arbitrary frames to the receive path's parser: it must
// not panic, and whatever it answers must be a well-formed request for one
// of our addresses, whose reply parses back.
func FuzzClassify(f *testing.F) {
	f.Add(request(peerMAC, peerIP, bondIP))
	f.Add(request(peerMAC, peerIP, bondIP)[:20])
	f.Add(AppendARP(nil, bondMAC, peerMAC, ARP{Op: ARPReply, SenderIP: peerIP, TargetIP: bondIP}))
	f.Add([]byte{})
	f.Add(make([]byte, 14))
	f.Fuzz(func(t *testing.T, frame []byte) {
		v, a := classify(frame, bondID)
		if v == answer {
			if a.Op != ARPRequest || !bondID.owns(a.TargetIP) {
				t.Fatalf("answering %+v", a)
			}
			r, err := ParseARP(appendReply(nil, bondID, a))
			if err != nil || r.Op != ARPReply || r.SenderIP != a.TargetIP || r.TargetIP != a.SenderIP {
				t.Fatalf("reply %+v, %v", r, err)
			}
		}
		if p, err := ParseARP(frame); err == nil {
			// Re-encoding a parsed packet gives back the same packet.
			q, err := ParseARP(AppendARP(nil, [6]byte(frame[0:6]), [6]byte(frame[6:12]), p))
			if err != nil || q != p {
				t.Fatalf("round trip %+v -> %+v, %v", p, q, err)
			}
		}
	})
}

func TestIsProbeAnswer(t *testing.T) {
	k := newProbeKey(peerIP, bondIP) // we (bondIP) asked for peerIP
	reply := func(from, to netip.Addr) []byte {
		return AppendARP(nil, bondMAC, peerMAC, ARP{Op: ARPReply, SenderMAC: peerMAC, SenderIP: from, TargetMAC: bondMAC, TargetIP: to})
	}
	ipv6 := func() []byte {
		f := make([]byte, 60)
		copy(f, []byte{0x33, 0x33, 0, 0, 0, 1})
		copy(f[6:], peerMAC[:])
		f[12], f[13] = 0x86, 0xdd
		return f
	}()
	other := netip.MustParseAddr("10.77.0.9")
	for name, tc := range map[string]struct {
		f    []byte
		k    probeKey
		want bool
	}{
		"the answer":                 {reply(peerIP, bondIP), k, true},
		"no probe sent":              {reply(peerIP, bondIP), 0, false},
		"ipv6 chatter":               {ipv6, k, false},
		"runt":                       {reply(peerIP, bondIP)[:13], k, false},
		"truncated arp":              {reply(peerIP, bondIP)[:14+27], k, false},
		"reply from another":         {reply(other, bondIP), k, false},
		"reply to another":           {reply(peerIP, other), k, false},
		"gratuitous reply of target": {reply(peerIP, peerIP), k, false},
		"request from the target":    {request(peerMAC, peerIP, bondIP), k, false},
		"answer to a newer probe":    {reply(other, bondIP), newProbeKey(other, bondIP), true},
	} {
		if got := isProbeAnswer(tc.f, tc.k); got != tc.want {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
	ans := reply(peerIP, bondIP)
	if n := testing.AllocsPerRun(100, func() { isProbeAnswer(ans, k) }); n != 0 {
		t.Fatalf("isProbeAnswer allocates %v times per frame", n)
	}
}

// FuzzIsProbeAnswer: arbitrary frames must not panic, and a frame taken
// for the answer must parse as an ARP reply from the target to the prober.
func FuzzIsProbeAnswer(f *testing.F) {
	k := newProbeKey(peerIP, bondIP)
	f.Add(AppendARP(nil, bondMAC, peerMAC, ARP{Op: ARPReply, SenderMAC: peerMAC, SenderIP: peerIP, TargetMAC: bondMAC, TargetIP: bondIP}))
	f.Add(request(peerMAC, peerIP, bondIP))
	f.Add(request(peerMAC, peerIP, bondIP)[:20])
	f.Add([]byte{})
	f.Add(make([]byte, 14))
	f.Fuzz(func(t *testing.T, frame []byte) {
		if !isProbeAnswer(frame, k) {
			return
		}
		a, err := ParseARP(frame)
		if err != nil || a.Op != ARPReply || a.SenderIP != peerIP || a.TargetIP != bondIP {
			t.Fatalf("took %+v (%v) for the answer", a, err)
		}
	})
}
