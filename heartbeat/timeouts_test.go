package heartbeat

import (
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

func TestDeadInterval(t *testing.T) {
	for _, tc := range []struct {
		interval, jitter, stall time.Duration
		misses                  int
		want                    time.Duration
	}{
		{150 * ms, 50 * ms, 100 * ms, 4, 900 * ms}, // the default, under 1 s
		{100 * ms, 0, 40 * ms, 3, 340 * ms},
		{200 * ms, 50 * ms, 0, 2, 500 * ms},
		{time.Second, 100 * ms, 100 * ms, 3, 3400 * ms},
	} {
		if got := DeadInterval(tc.interval, tc.jitter, tc.stall, tc.misses); got != tc.want {
			t.Errorf("DeadInterval(%v, %v, %v, %d) = %v, want %v", tc.interval, tc.jitter, tc.stall, tc.misses, got, tc.want)
		}
	}
	if d := DefaultTiming().Dead; d > time.Second {
		t.Errorf("default dead interval %v exceeds 1s", d)
	}
}

func TestJittered(t *testing.T) {
	for _, tc := range []struct {
		u    float64
		want time.Duration
	}{
		{0, 100 * ms},
		{0.5, 150 * ms},
		{0.99, 199 * ms},
		{1, 200 * ms},
		{-3, 100 * ms}, // clamped
		{7, 200 * ms},  // clamped
	} {
		if got := Jittered(150*ms, 50*ms, tc.u).Round(time.Microsecond); got != tc.want {
			t.Errorf("Jittered(150ms, 50ms, %v) = %v, want %v", tc.u, got, tc.want)
		}
	}
	if got := Jittered(150*ms, 0, 0.7); got != 150*ms {
		t.Errorf("no jitter: %v", got)
	}
}

func TestStallCredit(t *testing.T) {
	for _, tc := range []struct{ gap, stall, want time.Duration }{
		{25 * ms, 100 * ms, 0},
		{100 * ms, 100 * ms, 0},
		{140 * ms, 100 * ms, 40 * ms},
		{3 * time.Second, 100 * ms, 2900 * ms},
		{50 * ms, 0, 50 * ms},
	} {
		if got := StallCredit(tc.gap, tc.stall); got != tc.want {
			t.Errorf("StallCredit(%v, %v) = %v, want %v", tc.gap, tc.stall, got, tc.want)
		}
	}
}

func TestTickPeriod(t *testing.T) {
	for _, tc := range []struct {
		t    Timing
		want time.Duration
	}{
		{DefaultTiming(), 25 * ms},
		{Timing{Interval: 600 * ms, Stall: 400 * ms}, 50 * ms}, // clamped high
		{Timing{Interval: 12 * ms, Stall: 4 * ms}, 5 * ms},     // clamped low
		{Timing{Interval: 120 * ms, Stall: 200 * ms}, 20 * ms},
		{Timing{Interval: 120 * ms, Stall: 40 * ms}, 10 * ms},
	} {
		if got := TickPeriod(tc.t); got != tc.want {
			t.Errorf("TickPeriod(%v/%v) = %v, want %v", tc.t.Interval, tc.t.Stall, got, tc.want)
		}
	}
}

func TestPromoteAt(t *testing.T) {
	if got, want := PromoteAt(t0, 900*ms, 900*ms), t0.Add(1800*ms); !got.Equal(want) {
		t.Errorf("PromoteAt = %v, want %v", got, want)
	}
}

func TestRankAndNextEpoch(t *testing.T) {
	for _, tc := range []struct {
		node, peer uint32
		want       int
	}{{1, 2, 0}, {2, 1, 1}, {5, 0, 0}, {9, 3, 1}} {
		if got := Rank(tc.node, tc.peer); got != tc.want {
			t.Errorf("Rank(%d, %d) = %d, want %d", tc.node, tc.peer, got, tc.want)
		}
	}
	for _, tc := range []struct {
		cur  uint64
		rank int
		want uint64
	}{
		{0, 0, 2}, {0, 1, 1}, {1, 0, 2}, {1, 1, 3}, {2, 0, 4}, {2, 1, 3}, {7, 1, 9}, {7, 0, 8},
	} {
		if got := NextEpoch(tc.cur, tc.rank); got != tc.want {
			t.Errorf("NextEpoch(%d, %d) = %d, want %d", tc.cur, tc.rank, got, tc.want)
		}
	}
	// The two ranks never share an epoch.
	for cur := range uint64(100) {
		a, b := NextEpoch(cur, 0), NextEpoch(cur, 1)
		if a == b || a <= cur || b <= cur || a > cur+2 || b > cur+2 {
			t.Fatalf("NextEpoch(%d): %d and %d", cur, a, b)
		}
	}
}

func TestTimingDefaultsAndValidate(t *testing.T) {
	d := DefaultTiming()
	want := Timing{
		Interval: 150 * ms, Jitter: 50 * ms, Stall: 100 * ms, Misses: 4,
		Dead: 900 * ms, Lease: 500 * ms, StartupWait: 1400 * ms,
		WitnessInterval: time.Second, WitnessTimeout: 250 * ms, FailbackDelay: 10 * time.Second,
	}
	if d != want {
		t.Fatalf("DefaultTiming() = %+v, want %+v", d, want)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	// Derived fields follow the given ones.
	c := Timing{Interval: 50 * ms, Jitter: 10 * ms, Stall: 40 * ms, Misses: 3}.WithDefaults()
	if c.Dead != 220*ms || c.Lease != 160*ms || c.StartupWait != 380*ms || c.WitnessTimeout != 80*ms {
		t.Fatalf("derived %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("derived invalid: %v", err)
	}
	bad := Timing{Interval: -1, Jitter: -1, Stall: -1, Dead: 1, Lease: -1, StartupWait: 0, WitnessTimeout: 0, WitnessInterval: 0, FailbackDelay: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad timing accepted")
	}
	for _, s := range []string{"interval", "jitter", "stall", "dead interval", "lease", "startup wait", "witness timeout", "failback delay"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
}
