package fileid

import "testing"

func TestGoneSetBounded(t *testing.T) {
	var g goneSet
	st := func(i int) Stamp { return Stamp{ID: uint64(i) + 1, Gen: 7} }
	for i := range maxGone + 100 {
		g.add(st(i))
		if i == 10 {
			g.remove(st(5))
		}
	}
	if len(g.set) > maxGone {
		t.Fatalf("%d stamps remembered, want at most %d", len(g.set), maxGone)
	}
	if g.has(st(0)) || g.has(st(5)) {
		t.Error("the oldest (or a taken-out) stamp is still remembered")
	}
	if !g.has(st(maxGone+99)) || !g.has(st(maxGone/2)) {
		t.Error("a recent stamp was forgotten")
	}
	if len(g.order)-g.head > 2*maxGone {
		t.Errorf("order holds %d entries for %d stamps", len(g.order)-g.head, len(g.set))
	}
}
