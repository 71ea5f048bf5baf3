package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"ftnas/heartbeat"
)

// The systems and faults of the bench, in report order.
var (
	systems = []struct{ name, key string }{
		{"ftnas", "ftnas"},
		{"keepalived", "peer"},
		{"keepalived-tuned", "peer_tuned"},
		{"keepalived-dead", "peer_dead"},
	}
	faults = []struct{ name, label, key string }{
		{"kill9", "kill -9", "kill9"},
		{"unplug", "both links pulled", "unplug"},
	}
)

// reportOptions configures report.
type reportOptions struct {
	Trials, Events string
	// Tolerance: both nodes holding the VIP for less than this is within
	// the watcher's timestamp resolution and not counted as a split brain
	// (it is still shown as the longest overlap).
	Tolerance   time.Duration
	Advert      time.Duration // keepalived's default advert_int
	TunedAdvert time.Duration // keepalived's tuned advert_int: ftnas's heartbeat interval
	DeadAdvert  time.Duration // keepalived's advert_int whose master-down interval is ftnas's dead interval
	Priority    int           // keepalived master's priority
	BackupPrio  int           // keepalived backup's priority
}

func (o *reportOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.Trials, "trials", "", "trial records: SYSTEM FAULT N BEGIN_NS FAULT_NS HEAL_NS END_NS PROBE_JSON, tab separated (required)")
	fs.StringVar(&o.Events, "events", "", "watch's output (required)")
	fs.DurationVar(&o.Tolerance, "tolerance", 20*time.Millisecond, "overlaps shorter than this are not split brains")
	fs.DurationVar(&o.Advert, "peer-advert", time.Second, "keepalived's default advert_int")
	fs.DurationVar(&o.TunedAdvert, "peer-tuned-advert", heartbeat.DefaultInterval, "keepalived's tuned advert_int")
	fs.DurationVar(&o.DeadAdvert, "peer-dead-advert", 250*time.Millisecond, "keepalived's advert_int with ftnas's dead interval")
	fs.IntVar(&o.Priority, "peer-priority", 150, "keepalived master priority")
	fs.IntVar(&o.BackupPrio, "peer-backup-priority", 100, "keepalived backup priority")
}

// trial is one fault, from the bench's record.
type trial struct {
	System, Fault string
	N             int
	// Begin: the trial started (the previous one ended); Fault: the time
	// taken right before the fault; Heal: the fault was undone (links
	// restored, or the killed daemon started again), so the pair could
	// hear each other from then on; End: the initial state was back.
	Begin, FaultAt, Heal, End int64
	Probe                     probeResult
	// VIPMS is when the VIP appeared on n2 after the fault (ms), -1 if
	// the watcher saw no such event before End.
	VIPMS float64
}

// event is one line of watch's output.
type event struct {
	At     int64
	Member string
	Add    bool
}

// interval is [From, To) in unix ns.
type interval struct{ From, To int64 }

func (a interval) intersect(b interval) time.Duration {
	from, to := max(a.From, b.From), min(a.To, b.To)
	if to <= from {
		return 0
	}
	return time.Duration(to - from)
}

func parseTrials(r io.Reader) ([]trial, error) {
	var out []trial
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		if strings.TrimSpace(s) == "" || strings.HasPrefix(s, "#") {
			continue
		}
		f := strings.SplitN(s, "\t", 8)
		if len(f) != 8 {
			return nil, fmt.Errorf("trials line %d: %d fields, want 8 tab-separated", line, len(f))
		}
		t := trial{System: f[0], Fault: f[1]}
		if !slices.ContainsFunc(systems, func(x struct{ name, key string }) bool { return x.name == t.System }) {
			return nil, fmt.Errorf("trials line %d: unknown system %q", line, t.System)
		}
		if !slices.ContainsFunc(faults, func(x struct{ name, label, key string }) bool { return x.name == t.Fault }) {
			return nil, fmt.Errorf("trials line %d: unknown fault %q", line, t.Fault)
		}
		var err error
		if t.N, err = strconv.Atoi(f[2]); err != nil {
			return nil, fmt.Errorf("trials line %d: trial number %q: %w", line, f[2], err)
		}
		for i, p := range []*int64{&t.Begin, &t.FaultAt, &t.Heal, &t.End} {
			if *p, err = strconv.ParseInt(f[3+i], 10, 64); err != nil {
				return nil, fmt.Errorf("trials line %d: time field %d %q: %w", line, 4+i, f[3+i], err)
			}
		}
		if t.Begin > t.FaultAt || t.FaultAt > t.Heal || t.Heal > t.End {
			return nil, fmt.Errorf("trials line %d: times out of order: begin %d fault %d heal %d end %d", line, t.Begin, t.FaultAt, t.Heal, t.End)
		}
		if err := json.Unmarshal([]byte(f[7]), &t.Probe); err != nil {
			return nil, fmt.Errorf("trials line %d: probe result: %w", line, err)
		}
		if t.Probe.OK && t.Probe.FaultNS != t.FaultAt {
			return nil, fmt.Errorf("trials line %d: probe timed from %d, the fault was at %d", line, t.Probe.FaultNS, t.FaultAt)
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read trials: %w", err)
	}
	return out, nil
}

func parseEvents(r io.Reader) ([]event, error) {
	var out []event
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		f := strings.Fields(s)
		if len(f) != 3 || (f[2] != "add" && f[2] != "del") {
			return nil, fmt.Errorf("events line %d: %q: want UNIX_NS MEMBER add|del", line, s)
		}
		at, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("events line %d: time %q: %w", line, f[0], err)
		}
		out = append(out, event{At: at, Member: f[1], Add: f[2] == "add"})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// overlaps returns the intervals in which two or more members held the
// VIP. Events are taken in time order (file order for equal times); an
// overlap still open after the last event ends at end.
func overlaps(evs []event, end int64) []interval {
	evs = slices.Clone(evs)
	slices.SortStableFunc(evs, func(a, b event) int { return cmpInt64(a.At, b.At) })
	holds := map[string]bool{}
	var out []interval
	var open *interval
	for _, e := range evs {
		holds[e.Member] = e.Add
		n := 0
		for _, h := range holds {
			if h {
				n++
			}
		}
		switch {
		case n >= 2 && open == nil:
			open = &interval{From: e.At}
		case n < 2 && open != nil:
			open.To = e.At
			out = append(out, *open)
			open = nil
		}
	}
	if open != nil {
		open.To = max(end, open.From)
		out = append(out, *open)
	}
	return out
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// dualHold is how long both nodes held the VIP in one trial: the longest
// overlap while the pair could hear each other (before the fault, after
// healing) and the longest while the fault lasted.
type dualHold struct{ connected, duringFault time.Duration }

func trialDualHold(t trial, ovs []interval) dualHold {
	var d dualHold
	for _, o := range ovs {
		for _, w := range []interval{{t.Begin, t.FaultAt}, {t.Heal, t.End}} {
			d.connected = max(d.connected, o.intersect(w))
		}
		d.duringFault = max(d.duringFault, o.intersect(interval{t.FaultAt, t.Heal}))
	}
	return d
}

// vipMoved is the time from the fault to the first add of the VIP on
// member after it, in ms, or -1 if there was none before the trial ended.
func vipMoved(t trial, evs []event, member string) float64 {
	best := int64(-1)
	for _, e := range evs {
		if e.Member == member && e.Add && e.At >= t.FaultAt && e.At <= t.End && (best < 0 || e.At < best) {
			best = e.At
		}
	}
	if best < 0 {
		return -1
	}
	return float64(best-t.FaultAt) / 1e6
}

// group is the figures of one system under one fault (or all faults).
type group struct {
	ms          []float64 // +Inf for a failed trial
	vip         []float64 // fault to the VIP on n2; +Inf if never seen
	fails       int
	splitBrains int
	connected   time.Duration
	duringFault time.Duration
}

func (g *group) add(t trial, d dualHold, tol time.Duration) {
	if t.VIPMS >= 0 {
		g.vip = append(g.vip, t.VIPMS)
	} else {
		g.vip = append(g.vip, math.Inf(1))
	}
	if t.Probe.OK {
		g.ms = append(g.ms, t.Probe.MS)
	} else {
		g.ms = append(g.ms, math.Inf(1))
		g.fails++
	}
	if d.connected >= tol {
		g.splitBrains++
	}
	g.connected = max(g.connected, d.connected)
	g.duringFault = max(g.duringFault, d.duringFault)
}

// percentile is the nearest-rank percentile p (0 < p <= 100) of vs: the
// smallest value with at least p% of the values at or below it. ok is
// false for no values or when it is a failed trial (+Inf).
func percentile(vs []float64, p float64) (float64, bool) {
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	v := s[max(0, min(len(s), rank)-1)]
	return v, !math.IsInf(v, 0)
}

// vrrpMasterDown is RFC 5798's Master_Down_Interval for a backup of the
// given priority: 3 adverts plus the skew (256-priority)/256 adverts.
func vrrpMasterDown(advert time.Duration, priority int) (down, skew time.Duration) {
	skew = time.Duration(int64(256-priority) * int64(advert) / 256)
	return 3*advert + skew, skew
}

func ms(d time.Duration) string {
	return strconv.FormatInt(d.Round(time.Millisecond).Milliseconds(), 10)
}

// timersText describes the three configurations and the fault-to-takeover
// window each implies when the fault lands at a random point between two
// heartbeats (adverts).
func timersText(o reportOptions) string {
	t := heartbeat.DefaultTiming()
	var b strings.Builder
	gap := t.Interval + t.Jitter
	var zero time.Time
	promote := heartbeat.AckedPromoteAt(zero, t).Sub(zero)
	fmt.Fprintf(&b, "  %-17s heartbeats every %s ms ± %s ms on both paths; peer dead after %s ms of silence (%d × %s ms + %s ms stall);\n",
		"ftnas", ms(t.Interval), ms(t.Jitter), ms(t.Dead), t.Misses, ms(gap), ms(t.Stall))
	fmt.Fprintf(&b, "  %-17s lease %s ms from the last acked heartbeat; the standby asks the witness and the LAN (VIP) at last heard + %s ms\n",
		"", ms(t.Lease), ms(heartbeat.LeaseEnd(zero, t).Sub(zero)))
	fmt.Fprintf(&b, "  %-17s and promotes at last heard + %s ms once the witness (timeout %s ms) answers and nobody holds the VIP:\n",
		"", ms(promote), ms(t.WitnessTimeout))
	fmt.Fprintf(&b, "  %-17s takeover %s–%s ms after the fault\n", "", ms(promote-gap), ms(promote))
	for _, c := range []struct {
		name, what string
		adv        time.Duration
	}{
		{"keepalived", "default", o.Advert},
		{"keepalived-tuned", "ftnas's heartbeat interval", o.TunedAdvert},
		{"keepalived-dead", "master down ≈ ftnas's dead interval", o.DeadAdvert},
	} {
		down, skew := vrrpMasterDown(c.adv, o.BackupPrio)
		fmt.Fprintf(&b, "  %-17s VRRPv3 advert_int %s ms (%s), priorities %d/%d, preempt; master down 3 × %s + skew %s = %s ms:\n",
			c.name, ms(c.adv), c.what, o.Priority, o.BackupPrio, ms(c.adv), ms(skew), ms(down))
		fmt.Fprintf(&b, "  %-17s takeover %s–%s ms after the fault\n", "", ms(down-c.adv), ms(down))
	}
	return b.String()
}

func report(o reportOptions, w io.Writer) error {
	if o.Trials == "" || o.Events == "" {
		return errors.New("report: --trials and --events are required")
	}
	if o.Tolerance < 0 || o.Advert <= 0 || o.TunedAdvert <= 0 || o.DeadAdvert <= 0 || o.BackupPrio < 1 || o.BackupPrio > 254 {
		return errors.New("report: --tolerance must not be negative, the adverts must be positive, the backup priority 1..254")
	}
	tf, err := os.Open(o.Trials)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer tf.Close()
	trials, err := parseTrials(tf)
	if err != nil {
		return fmt.Errorf("report: %s: %w", o.Trials, err)
	}
	ef, err := os.Open(o.Events)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer ef.Close()
	evs, err := parseEvents(ef)
	if err != nil {
		return fmt.Errorf("report: %s: %w", o.Events, err)
	}
	return render(w, o, trials, evs)
}

// render prints the timers, the table and the JSON line.
func render(w io.Writer, o reportOptions, trials []trial, evs []event) error {
	var end int64
	for _, t := range trials {
		end = max(end, t.End)
	}
	ovs := overlaps(evs, end)
	groups := map[string]*group{} // "system/fault", "system/all"
	get := func(k string) *group {
		if groups[k] == nil {
			groups[k] = &group{}
		}
		return groups[k]
	}
	for _, t := range trials {
		t.VIPMS = vipMoved(t, evs, "n2")
		d := trialDualHold(t, ovs)
		get(t.System+"/"+t.Fault).add(t, d, o.Tolerance)
		get(t.System+"/all").add(t, d, o.Tolerance)
	}

	var b strings.Builder
	b.WriteString("Timers:\n")
	b.WriteString(timersText(o))
	b.WriteString("\n")
	tol := ms(o.Tolerance)
	const row = "%-17s %-18s %6s %5s %6s %6s %6s %6s %8s %6s %8s %8s\n"
	fmt.Fprintf(&b, row, "system", "fault", "trials", "fails", "p50", "p99", "min", "max", "vip p50", "split", "overlap", "in-fault")
	num := func(v float64, ok bool) string {
		if !ok {
			return "-"
		}
		return strconv.FormatInt(int64(math.Round(v)), 10)
	}
	for _, s := range systems {
		rows := []struct{ key, label string }{}
		for _, f := range faults {
			rows = append(rows, struct{ key, label string }{f.name, f.label})
		}
		rows = append(rows, struct{ key, label string }{"all", "both faults"})
		for _, r := range rows {
			g := groups[s.name+"/"+r.key]
			if g == nil {
				continue
			}
			p50, ok50 := percentile(g.ms, 50)
			p99, ok99 := percentile(g.ms, 99)
			lo, oklo := percentile(g.ms, 0)
			hi, okhi := percentile(g.ms, 100)
			vip, okvip := percentile(g.vip, 50)
			fmt.Fprintf(&b, row, s.name, r.label, strconv.Itoa(len(g.ms)), strconv.Itoa(g.fails),
				num(p50, ok50), num(p99, ok99), num(lo, oklo), num(hi, okhi), num(vip, okvip),
				strconv.Itoa(g.splitBrains), ms(g.connected), ms(g.duringFault))
		}
	}
	b.WriteString("\np50 p99 min max: ms from the fault to the end of the first client read answered by n2 (nearest-rank\n")
	b.WriteString("  percentiles: with 20 trials p99 is the slowest; a failed trial, no answer within the probe's timeout, is -).\n")
	b.WriteString("vip p50: ms from the fault to the VIP's appearance on n2 (the watcher's netlink event).\n")
	fmt.Fprintf(&b, "split: split brains, trials in which both nodes held the VIP for %s ms or longer while the pair could hear\n", tol)
	b.WriteString("  each other (before the fault, or after it was undone); overlap: the longest such time in ms, shorter\n")
	b.WriteString("  ones are within the watcher's timestamp resolution; in-fault: the longest time both held the VIP while\n")
	b.WriteString("  the fault lasted (the cut-off old master not yet released), ms.\n\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}

	// The JSON line: the keys first, then the details.
	var kv []string
	put := func(k string, v any) {
		j, _ := json.Marshal(v)
		kv = append(kv, strconv.Quote(k)+":"+string(j))
	}
	pct := func(sys, fault string, p float64) any {
		g := groups[sys+"/"+fault]
		if g == nil {
			return nil
		}
		v, ok := percentile(g.ms, p)
		if !ok {
			return nil
		}
		return int64(math.Round(v))
	}
	count := func(sys string, f func(*group) int) any {
		g := groups[sys+"/all"]
		if g == nil {
			return nil
		}
		return f(g)
	}
	put("bench", "failover")
	put("ftnas_p50_ms", pct("ftnas", "all", 50))
	put("ftnas_p99_ms", pct("ftnas", "all", 99))
	put("peer", "keepalived")
	put("peer_p50_ms", pct("keepalived", "all", 50))
	put("peer_tuned_p50_ms", pct("keepalived-tuned", "all", 50))
	put("split_brains", count("ftnas", func(g *group) int { return g.splitBrains }))
	put("peer_dead_p50_ms", pct("keepalived-dead", "all", 50))
	for _, s := range systems {
		if s.name != "ftnas" {
			put(s.key+"_p99_ms", pct(s.name, "all", 99))
		}
		for _, f := range faults {
			put(s.key+"_"+f.key+"_p50_ms", pct(s.name, f.name, 50))
			put(s.key+"_"+f.key+"_p99_ms", pct(s.name, f.name, 99))
		}
		if g := groups[s.name+"/all"]; g != nil {
			v, ok := percentile(g.vip, 50)
			if ok {
				put(s.key+"_vip_p50_ms", int64(math.Round(v)))
			} else {
				put(s.key+"_vip_p50_ms", nil)
			}
		}
		put(s.key+"_trials", count(s.name, func(g *group) int { return len(g.ms) }))
		put(s.key+"_failed", count(s.name, func(g *group) int { return g.fails }))
		if s.name != "ftnas" {
			put(s.key+"_split_brains", count(s.name, func(g *group) int { return g.splitBrains }))
		}
	}
	t := heartbeat.DefaultTiming()
	put("ftnas_heartbeat_ms", t.Interval.Milliseconds())
	put("ftnas_dead_ms", t.Dead.Milliseconds())
	put("ftnas_lease_ms", t.Lease.Milliseconds())
	put("peer_advert_ms", o.Advert.Milliseconds())
	put("peer_tuned_advert_ms", o.TunedAdvert.Milliseconds())
	put("peer_dead_advert_ms", o.DeadAdvert.Milliseconds())
	_, err := fmt.Fprintf(w, "{%s}\n", strings.Join(kv, ","))
	return err
}
