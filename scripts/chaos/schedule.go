package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Fault kinds.
const (
	FaultKill9     = "kill9"     // SIGKILL nasd (its supervisor removes the VIP), start it again after For
	FaultFreeze    = "freeze"    // SIGSTOP nasd, SIGCONT after For
	FaultRestart   = "restart"   // stop nasd (SIGTERM), start it again after For
	FaultCut       = "cut"       // cut one path for For
	FaultPartition = "partition" // cut public and dedicated for For
	FaultLoss      = "loss"      // drop Loss percent on a path for For
	FaultRate      = "rate"      // limit a path to Rate for For
	FaultFailback  = "failback"  // `cluster failback` when the standby serves and the primary is back
)

// Fault targets, resolved when the fault is applied: the node serving
// then, or the other one.
const (
	TargetMaster  = "master"
	TargetStandby = "standby"
)

// Fault is one entry of a schedule: what happens At after the trial
// began, undone For later.
type Fault struct {
	AtMS   int64  `json:"at_ms"`
	ForMS  int64  `json:"for_ms"`
	Kind   string `json:"kind"`
	Target string `json:"target,omitempty"`
	Path   string `json:"path,omitempty"`
	Loss   int    `json:"loss,omitempty"` // percent
	Rate   string `json:"rate,omitempty"` // tbf rate, e.g. 1mbit
}

func (f Fault) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "+%.1fs %s", float64(f.AtMS)/1000, f.Kind)
	if f.Target != "" {
		fmt.Fprintf(&b, " %s", f.Target)
	}
	if f.Path != "" {
		fmt.Fprintf(&b, " %s", f.Path)
	}
	if f.Loss != 0 {
		fmt.Fprintf(&b, " %d%%", f.Loss)
	}
	if f.Rate != "" {
		fmt.Fprintf(&b, " %s", f.Rate)
	}
	if f.ForMS > 0 {
		fmt.Fprintf(&b, " for %.1fs", float64(f.ForMS)/1000)
	}
	return b.String()
}

// Schedule timing.
const (
	warmUp   = 2 * time.Second // the clients run alone first
	coolDown = 3 * time.Second // and alone again at the end
)

// Generate draws the fault schedule of seed for a trial of duration d:
// faults one after another (never overlapping), each followed by a quiet
// gap, between warmUp and d-coolDown. The same seed and d give the same
// schedule.
func Generate(seed uint64, d time.Duration) []Fault {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	// How often each kind is drawn (failback follows a fault that moved
	// the service; it is not drawn on its own).
	faultWeights := []struct {
		kind   string
		weight int
	}{
		{FaultKill9, 3}, {FaultFreeze, 2}, {FaultRestart, 2}, {FaultCut, 3},
		{FaultPartition, 3}, {FaultLoss, 2}, {FaultRate, 1},
	}
	total := 0
	for _, w := range faultWeights {
		total += w.weight
	}
	ms := func(lo, hi int64) int64 { return lo + rng.Int64N(hi-lo+1) }
	end := (d - coolDown).Milliseconds()
	t := warmUp.Milliseconds()
	var out []Fault
	for {
		f := Fault{AtMS: t}
		n := rng.IntN(total)
		for _, w := range faultWeights {
			if n < w.weight {
				f.Kind = w.kind
				break
			}
			n -= w.weight
		}
		f.Target = TargetMaster
		if rng.IntN(10) < 3 {
			f.Target = TargetStandby
		}
		switch f.Kind {
		case FaultKill9, FaultFreeze:
			f.ForMS = ms(1000, 4000)
		case FaultRestart:
			f.ForMS = ms(0, 1000)
		case FaultCut:
			f.Path = []string{"public", "dedicated", "witness"}[rng.IntN(3)]
			f.ForMS = ms(2000, 6000)
		case FaultPartition:
			f.ForMS = ms(2000, 5000)
		case FaultLoss:
			f.Path = []string{"public", "dedicated"}[rng.IntN(2)]
			f.Loss = 10 + 10*rng.IntN(6)
			f.ForMS = ms(3000, 6000)
		case FaultRate:
			f.Path = []string{"public", "dedicated"}[rng.IntN(2)]
			f.Rate = []string{"1mbit", "5mbit", "20mbit"}[rng.IntN(3)]
			f.ForMS = ms(3000, 6000)
		}
		if t+f.ForMS > end {
			return out
		}
		out = append(out, f)
		t += f.ForMS + ms(1500, 3000)
		moved := f.Target == TargetMaster && (f.Kind == FaultKill9 || f.Kind == FaultFreeze || f.Kind == FaultPartition)
		if moved && rng.IntN(2) == 0 {
			// Give the old master time to rejoin, then hand back.
			t += ms(1500, 3000)
			if t > end {
				return out
			}
			out = append(out, Fault{AtMS: t, Kind: FaultFailback})
			t += ms(1500, 3000)
		}
	}
}
