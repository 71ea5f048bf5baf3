package main

import (
	"reflect"
	"testing"
	"time"
)

func TestScheduleReproducible(t *testing.T) {
	for seed := range uint64(50) {
		a, b := Generate(seed, 25*time.Second), Generate(seed, 25*time.Second)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d: two schedules differ:\n%v\n%v", seed, a, b)
		}
	}
	if reflect.DeepEqual(Generate(1, 25*time.Second), Generate(2, 25*time.Second)) {
		t.Fatal("seeds 1 and 2 give the same schedule")
	}
}

// A replay (scripts/bench chaos --seed N) must get the schedule the
// failed trial had, also after this program is rebuilt: pin one.
func TestScheduleStable(t *testing.T) {
	got := Generate(3, 25*time.Second)
	want := []Fault{
		{AtMS: 2000, ForMS: 1966, Kind: FaultFreeze, Target: TargetStandby},
		{AtMS: 6610, ForMS: 1020, Kind: FaultFreeze, Target: TargetMaster},
		{AtMS: 9446, ForMS: 2066, Kind: FaultCut, Target: TargetStandby, Path: "witness"},
	}
	if len(got) < len(want) || !reflect.DeepEqual(got[:len(want)], want) {
		t.Fatalf("seed 3 schedule changed:\n got %v\nwant %v (first entries)", got, want)
	}
}

func TestScheduleShape(t *testing.T) {
	kinds := map[string]int{}
	for seed := range uint64(300) {
		d := time.Duration(15+seed%30) * time.Second
		fs := Generate(seed, d)
		prevEnd := int64(0)
		for i, f := range fs {
			kinds[f.Kind]++
			if f.AtMS < warmUp.Milliseconds() || f.AtMS+f.ForMS > (d-coolDown).Milliseconds() {
				t.Fatalf("seed %d fault %d %v outside [%v, %v]", seed, i, f, warmUp, d-coolDown)
			}
			if f.AtMS < prevEnd {
				t.Fatalf("seed %d fault %d %v overlaps the previous one (ends at %d ms)", seed, i, f, prevEnd)
			}
			prevEnd = f.AtMS + f.ForMS
			switch f.Kind {
			case FaultCut:
				if f.Path != "public" && f.Path != "dedicated" && f.Path != "witness" {
					t.Fatalf("seed %d: %v: bad path", seed, f)
				}
			case FaultLoss:
				if f.Loss < 10 || f.Loss > 60 || (f.Path != "public" && f.Path != "dedicated") {
					t.Fatalf("seed %d: %v: bad loss", seed, f)
				}
			case FaultRate:
				if f.Rate == "" {
					t.Fatalf("seed %d: %v: no rate", seed, f)
				}
			case FaultFailback:
				if i == 0 || fs[i-1].Target != TargetMaster || f.Target != "" {
					t.Fatalf("seed %d: failback %v not after a fault on the master", seed, f)
				}
			}
			if f.Kind != FaultFailback && f.Target != TargetMaster && f.Target != TargetStandby {
				t.Fatalf("seed %d: %v: bad target", seed, f)
			}
		}
	}
	for _, k := range []string{FaultKill9, FaultFreeze, FaultRestart, FaultCut, FaultPartition, FaultLoss, FaultRate, FaultFailback} {
		if kinds[k] == 0 {
			t.Errorf("300 schedules never drew %s: %v", k, kinds)
		}
	}
}

func TestScheduleTooShort(t *testing.T) {
	if fs := Generate(1, 5*time.Second); len(fs) != 0 {
		t.Fatalf("a 5 s trial has no room for faults, got %v", fs)
	}
}
