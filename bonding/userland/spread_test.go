package userland

import (
	"math/rand/v2"
	"testing"
)

func TestSpreaderEqualFramesGoRound(t *testing.T) {
	var s spreader
	s.reset(3)
	var got []int
	for range 7 {
		got = append(got, s.pick(1500))
	}
	want := []int{0, 1, 2, 0, 1, 2, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("picks %v, want %v", got, want)
		}
	}
}

// TestSpreaderBalancesBytes: frame-counting round robin over 2 members
// with alternating 64 KiB and 66-byte frames sends every big frame
// through one member; the spreader keeps the bytes within one frame of
// each other whatever the sizes.
func TestSpreaderBalancesBytes(t *testing.T) {
	var s spreader
	s.reset(2)
	var bytes [2]int
	for i := range 1000 {
		size := 66
		if i%2 == 0 {
			size = 65536
		}
		bytes[s.pick(size)] += size
	}
	if d := bytes[0] - bytes[1]; d > 65536 || d < -65536 {
		t.Errorf("bytes per member %v: differ by more than one frame", bytes)
	}
	r := rand.New(rand.NewPCG(1, 2))
	s.reset(3)
	var three [3]int
	for range 10000 {
		size := 60 + r.IntN(65536)
		three[s.pick(size)] += size
	}
	lo, hi := min(three[0], three[1], three[2]), max(three[0], three[1], three[2])
	if hi-lo > 65536+60 {
		t.Errorf("bytes per member %v: differ by more than one frame", three)
	}
}

func TestSpreaderResetForgetsHistory(t *testing.T) {
	var s spreader
	s.reset(2)
	s.pick(1 << 20)
	s.reset(3) // a member joined: it must not take everything to catch up
	if got := []int{s.pick(100), s.pick(100), s.pick(100)}; got[0] != 0 || got[1] != 1 || got[2] != 2 {
		t.Errorf("after reset: %v, want 0 1 2", got)
	}
	s.sent[1] = 1<<62 - 10
	s.sent[0], s.sent[2] = 1<<62, 1<<62
	if s.pick(100) != 1 || s.sent[0] != 0 || s.sent[1] != 90 || s.sent[2] != 0 {
		t.Errorf("counters not renormalised near the top: %v", s.sent)
	}
}
