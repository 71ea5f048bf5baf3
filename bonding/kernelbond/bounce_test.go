package kernelbond

import (
	"slices"
	"testing"
	"time"
)

func TestBounceFilter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type ev struct {
		nic  string
		up   bool
		ms   int
		pass bool
	}
	for _, tc := range []struct {
		name    string
		expect  []string // expected at t0
		events  []ev
		tickMS  int
		expired []string
	}{
		{name: "not expected: everything passes", events: []ev{{"m0", false, 10, true}, {"m0", true, 20, true}}},
		{name: "enslave bounce hidden", expect: []string{"m0"},
			events: []ev{{"m0", false, 5, false}, {"m0", true, 1500, false}, {"m0", false, 2000, true}}, tickMS: 6000},
		{name: "other NICs unaffected", expect: []string{"m0"},
			events: []ev{{"m1", false, 5, true}, {"m0", false, 6, false}, {"m1", true, 7, true}, {"m0", true, 8, false}}},
		{name: "carrier never back: reported after the grace", expect: []string{"m0"},
			events: []ev{{"m0", false, 5, false}}, tickMS: 5001, expired: []string{"m0"}},
		{name: "not yet past the grace", expect: []string{"m0"},
			events: []ev{{"m0", false, 5, false}}, tickMS: 5000},
		{name: "up without a loss first is news", expect: []string{"m0"},
			events: []ev{{"m0", true, 5, true}, {"m0", false, 6, true}}},
		{name: "a loss after the grace is real", expect: []string{"m0"},
			events: []ev{{"m0", false, 5001, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f bounceFilter
			for _, n := range tc.expect {
				f.expected(n, t0)
			}
			for _, e := range tc.events {
				if got := f.pass(e.nic, e.up, at(e.ms)); got != e.pass {
					t.Errorf("%s up=%v at %d ms: pass %v, want %v", e.nic, e.up, e.ms, got, e.pass)
				}
			}
			if tc.tickMS > 0 {
				if got := f.expired(at(tc.tickMS)); !slices.Equal(got, tc.expired) {
					t.Errorf("expired at %d ms = %v, want %v", tc.tickMS, got, tc.expired)
				}
			}
		})
	}
	var f bounceFilter
	f.expected("m0", t0)
	f.cancel("m0")
	if !f.pass("m0", false, at(1)) {
		t.Error("a cancelled bounce still hides a loss")
	}
}
