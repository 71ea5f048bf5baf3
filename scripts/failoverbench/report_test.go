package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"ftnas/heartbeat"
)

func TestPercentileNearestRank(t *testing.T) {
	vs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, tc := range []struct {
		p    float64
		want float64
	}{{50, 5}, {99, 10}, {100, 10}, {0, 1}, {10, 1}, {11, 2}, {90, 9}} {
		if got, ok := percentile(vs, tc.p); !ok || got != tc.want {
			t.Errorf("p%v = %v, %v; want %v", tc.p, got, ok, tc.want)
		}
	}
	if _, ok := percentile(nil, 50); ok {
		t.Error("percentile of nothing reported a value")
	}
	// A failed trial is infinitely slow: p99 of 20 is the failure.
	twenty := make([]float64, 20)
	for i := range twenty {
		twenty[i] = float64(i + 1)
	}
	twenty[3] = math.Inf(1)
	if _, ok := percentile(twenty, 99); ok {
		t.Error("p99 with a failed trial reported a value")
	}
	if got, ok := percentile(twenty, 50); !ok || got != 11 {
		t.Errorf("p50 with one failure = %v, %v; want 11", got, ok)
	}
}

func TestVRRPMasterDown(t *testing.T) {
	down, skew := vrrpMasterDown(time.Second, 100)
	if skew != 609375*time.Microsecond || down != 3609375*time.Microsecond {
		t.Errorf("1 s, priority 100: down %v skew %v; want 3.609375s, 609.375ms", down, skew)
	}
	down, _ = vrrpMasterDown(150*time.Millisecond, 100)
	if down.Round(time.Millisecond) != 541*time.Millisecond {
		t.Errorf("150 ms, priority 100: down %v, want ~541ms", down)
	}
}

func TestOverlaps(t *testing.T) {
	evs := []event{
		{100, "n1", true},
		{200, "n2", true}, // both from 200
		{250, "n1", false},
		{300, "n1", true}, // both again, until the end
		{150, "n1", true}, // out of order in the file: still sorted
	}
	got := overlaps(evs, 1000)
	want := []interval{{200, 250}, {300, 1000}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("overlaps = %v, want %v", got, want)
	}
	if got := overlaps([]event{{1, "n1", true}, {2, "n1", true}, {3, "n2", false}}, 10); len(got) != 0 {
		t.Errorf("one holder is no overlap: %v", got)
	}
}

func TestTrialDualHold(t *testing.T) {
	tr := trial{Begin: 0, FaultAt: 100, Heal: 200, End: 300}
	d := trialDualHold(tr, []interval{{50, 120}, {150, 190}, {195, 260}, {400, 500}})
	if d.connected != 60 || d.duringFault != 40 {
		t.Errorf("dual hold %+v: want connected 60 (195..200 is fault, 200..260 connected), during fault 40", d)
	}
}

func TestParseTrialsRejectsBadRecords(t *testing.T) {
	okProbe := `{"ok":true,"want":"n2","fault_ns":10,"ms":5}`
	for _, tc := range []struct{ line, want string }{
		{"ftnas\tkill9\t1\t0\t10\t20", "6 fields"},
		{"vrrpd\tkill9\t1\t0\t10\t20\t30\t" + okProbe, `unknown system "vrrpd"`},
		{"ftnas\tunplugged\t1\t0\t10\t20\t30\t" + okProbe, `unknown fault "unplugged"`},
		{"ftnas\tkill9\tone\t0\t10\t20\t30\t" + okProbe, `trial number "one"`},
		{"ftnas\tkill9\t1\t0\t10\tx\t30\t" + okProbe, `time field 6 "x"`},
		{"ftnas\tkill9\t1\t0\t30\t20\t30\t" + okProbe, "out of order"},
		{"ftnas\tkill9\t1\t0\t10\t20\t30\t{", "probe result"},
		{"ftnas\tkill9\t1\t0\t11\t20\t30\t" + okProbe, "probe timed from 10"},
	} {
		_, err := parseTrials(strings.NewReader("# comment\n" + tc.line + "\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: err %v, want one naming line 2 and %q", tc.line, err, tc.want)
		}
	}
}

func TestParseEventsRejectsBadLines(t *testing.T) {
	evs, err := parseEvents(strings.NewReader("# ready\n5 n1 add\n\n7 n1 del\n"))
	if err != nil || len(evs) != 2 || evs[0] != (event{5, "n1", true}) || evs[1] != (event{7, "n1", false}) {
		t.Fatalf("parseEvents = %v, %v", evs, err)
	}
	for _, s := range []string{"5 n1 added", "x n1 add", "5 n1"} {
		if _, err := parseEvents(strings.NewReader(s + "\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: err %v, want one naming line 1", s, err)
		}
	}
}

// TestRenderFigures runs the report over made-up trials: the figures, the
// split brain count and the JSON line's keys.
func TestRenderFigures(t *testing.T) {
	var trials []trial
	at := int64(1_000_000_000)
	ms := int64(time.Millisecond)
	add := func(sys, fault string, n int, took float64, ok bool) trial {
		tr := trial{System: sys, Fault: fault, N: n, Begin: at, FaultAt: at + 1000*ms, Heal: at + 5000*ms, End: at + 9000*ms}
		tr.Probe = probeResult{OK: ok, Want: "n2", FaultNS: tr.FaultAt, MS: took}
		at = tr.End
		trials = append(trials, tr)
		return tr
	}
	for i := 1; i <= 10; i++ {
		add("ftnas", "kill9", i, 1700+float64(i), true)
		add("ftnas", "unplug", i, 1750+float64(i), true)
		add("keepalived", "kill9", i, 3000+float64(i), true)
		add("keepalived", "unplug", i, 3100+float64(i), i != 4)
	}
	tuned := add("keepalived-tuned", "kill9", 1, 500, true)
	add("keepalived-tuned", "unplug", 1, 520, true)
	// keepalived-tuned: both hold the VIP 30 ms after healing (a split
	// brain) and 10 ms before its fault (not one: below the tolerance).
	evs := []event{
		{tuned.Begin + 100*ms, "n1", true},
		{tuned.Begin + 200*ms, "n2", true},
		{tuned.Begin + 210*ms, "n2", false},
		{tuned.Heal + 5*ms, "n2", true},
		{tuned.Heal + 35*ms, "n2", false},
	}
	var out bytes.Buffer
	o := reportOptions{Tolerance: 20 * time.Millisecond, Advert: time.Second, TunedAdvert: 150 * time.Millisecond, Priority: 150, BackupPrio: 100}
	if err := render(&out, o, trials, evs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	var got map[string]any
	if err := json.Unmarshal([]byte(last), &got); err != nil {
		t.Fatalf("last line is not JSON: %q: %v", last, err)
	}
	if !strings.HasPrefix(last, `{"bench":"failover","ftnas_p50_ms":1710,"ftnas_p99_ms":1760,"peer":"keepalived","peer_p50_ms":3010,"peer_tuned_p50_ms":500,"split_brains":0,`) {
		t.Errorf("JSON line does not start with the issue's keys and figures: %s", last)
	}
	for k, v := range map[string]any{
		"ftnas_kill9_p50_ms": 1705.0, "ftnas_unplug_p99_ms": 1760.0, "peer_p99_ms": nil, "peer_unplug_p50_ms": 3106.0,
		"peer_failed": 1.0, "peer_split_brains": 0.0, "peer_tuned_split_brains": 1.0, "ftnas_trials": 20.0,
		"peer_tuned_advert_ms": 150.0,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	text := out.String()
	for _, want := range []string{"master down 3 × 1000 + skew 609 = 3609 ms", "master down 3 × 150 + skew 91 = 541 ms", takeoverText(heartbeat.DefaultTiming())} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
}

func TestVIPMoved(t *testing.T) {
	tr := trial{Begin: 0, FaultAt: 1_000_000, Heal: 9_000_000, End: 10_000_000}
	evs := []event{
		{500_000, "n2", true},   // before the fault: not the takeover
		{3_500_000, "n1", true}, // another member
		{2_500_000, "n2", true},
		{4_000_000, "n2", true},
	}
	if got := vipMoved(tr, evs, "n2"); got != 1.5 {
		t.Errorf("vipMoved = %v ms, want 1.5", got)
	}
	if got := vipMoved(tr, evs[:2], "n2"); got != -1 {
		t.Errorf("vipMoved without a takeover = %v, want -1", got)
	}
}

// takeoverText is the window the report derives from the heartbeat
// timing: the standby promotes at last heard + max(Dead, Lease + Stall),
// and the fault comes up to one heartbeat spacing after the last one heard.
func takeoverText(d heartbeat.Timing) string {
	end := max(d.Dead, d.Lease+d.Stall)
	return fmt.Sprintf("takeover %d–%d ms after the fault", (end - d.Interval - d.Jitter).Milliseconds(), end.Milliseconds())
}
