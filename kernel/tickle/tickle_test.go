package tickle

import (
	"net/netip"
	"slices"
	"testing"
)

func TestKiller(t *testing.T) {
	a := Conn{VIP: netip.MustParseAddrPort("10.0.0.100:445"), Client: netip.MustParseAddrPort("10.0.0.1:40000")}
	b := Conn{VIP: netip.MustParseAddrPort("10.0.0.100:2049"), Client: netip.MustParseAddrPort("10.0.0.2:700")}
	mapped := Conn{VIP: netip.MustParseAddrPort("[::ffff:10.0.0.100]:445"), Client: netip.MustParseAddrPort("[::ffff:10.0.0.1]:40000")}
	k := newKiller([]Conn{a, b, mapped}) // mapped duplicates a
	if got := k.tickles(); len(got) != 2 || got[0] != tickleSegment(a) || got[1] != tickleSegment(b) {
		t.Fatalf("tickles = %+v", got)
	}
	if got := tickleSegment(a); got.Seq != 0 || got.Ack != 0 || got.Flags != flagACK || got.Src != a.VIP || got.Dst != a.Client {
		t.Fatalf("tickle segment %+v", got)
	}
	// An unrelated packet changes nothing.
	if _, ok := k.observe(segment{Src: netip.MustParseAddrPort("10.0.0.9:1"), Dst: a.VIP, Flags: flagACK}); ok {
		t.Fatal("unrelated packet answered")
	}
	rst, ok := k.observe(segment{Src: a.Client, Dst: a.VIP, Seq: 7, Ack: 9, Flags: flagACK})
	if !ok || rst.Seq != 9 || rst.Ack != 7 || rst.Flags&flagRST == 0 {
		t.Fatalf("observe a: %+v %v", rst, ok)
	}
	// A second answer for the same connection is not reset twice.
	if _, ok := k.observe(segment{Src: a.Client, Dst: a.VIP, Seq: 7, Ack: 9, Flags: flagACK}); ok {
		t.Fatal("reset twice")
	}
	if k.done() {
		t.Fatal("done with b pending")
	}
	if got := k.tickles(); len(got) != 1 || got[0].Dst != b.Client {
		t.Fatalf("second round tickles = %+v", got)
	}
	r := k.report()
	if !slices.Equal(r.Reset, []Conn{a}) || !slices.Equal(r.Unanswered, []Conn{b}) {
		t.Fatalf("report %+v", r)
	}
	if _, ok := k.observe(segment{Src: b.Client, Dst: b.VIP, Flags: flagACK | flagPSH}); !ok || !k.done() {
		t.Fatal("b not finished")
	}
}
