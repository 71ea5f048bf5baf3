package main

import (
	"strings"
	"testing"
)

func TestTimeline(t *testing.T) {
	s := pairSamples(3, 0)
	s = append(s, Sample{T: 200 * ms, Nodes: []NodeSample{{Name: "n1", Frozen: true, VIP: true}, {Name: "n2", Running: true, Up: true, State: "primaryslave", Serving: true, Epoch: 2, VIP: true}}})
	events := []faultEvent{{Start: 120 * ms, T: 150 * ms, Fault: Fault{Kind: FaultFreeze, Target: TargetMaster, ForMS: 1000}, Node: "n1", Action: "apply"}}
	ops := []Op{
		{Worker: 1, Seq: 1, Kind: OpRead, File: "f", Invoke: 10 * ms, Done: 20 * ms, Result: ResultOK, Tries: 1},
		{Worker: 1, Seq: 2, Kind: OpWrite, File: "f", Invoke: 130 * ms, Done: 1800 * ms, Result: ResultOK, Tries: 2, Stale: 1},
	}
	var b strings.Builder
	if err := Timeline(&b, 0, s, events, ops); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"    0.00 nodes n1=master*/e1+vip n2=slave/e1",
		"    0.12 fault apply +0.0s freeze master for 1.0s n1 (took 30 ms)",
		"    0.13 op w1 seq 2 write f ok after 1670 ms, 2 tries, 1 STALE",
		"    0.20 nodes n1=frozen+vip n2=primaryslave*/e2+vip",
	}
	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("timeline:\n%s\nwant:\n%s", b.String(), strings.Join(want, "\n"))
	}
}
