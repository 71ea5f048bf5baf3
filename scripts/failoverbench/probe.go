package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// probeOptions configures probe.
type probeOptions struct {
	Target    nfsTarget
	Want      string        // the content that means "the standby serves" ("": any)
	WantMAC   string        // the standby's MAC: the VIP's neighbour entry must name it ("": any)
	FaultFile string        // holds the fault's time, unix ns, and a newline
	ReadyFile string        // written once a warm-up read succeeded
	Every     time.Duration // launch period after the fault
	Attempt   time.Duration // an attempt slower than this failed
	Timeout   time.Duration // give up this long after the fault
	Wait      time.Duration // bound on the warm-up and the wait for the fault
}

func (o *probeOptions) flags(fs *flag.FlagSet) {
	o.Target.flags(fs)
	fs.StringVar(&o.Want, "want", "", "content of --file on the standby's volume, if it differs from the master's")
	fs.StringVar(&o.WantMAC, "want-mac", "", "the standby's MAC: a read counts once the VIP's neighbour entry names it (for replicated volumes, whose content is the same)")
	fs.StringVar(&o.FaultFile, "fault-file", "", "file the bench writes the fault's time to, unix ns and a newline (required)")
	fs.StringVar(&o.ReadyFile, "ready-file", "", "file written (the warm-up read's content) once a read succeeded (required)")
	fs.DurationVar(&o.Every, "every", 10*time.Millisecond, "start a fresh read this often after the fault")
	fs.DurationVar(&o.Attempt, "attempt", 200*time.Millisecond, "a read not done within this failed")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Second, "give up this long after the fault")
	fs.DurationVar(&o.Wait, "wait", 60*time.Second, "give up on the warm-up or on the fault after this long")
}

func (o *probeOptions) check() error {
	if err := o.Target.check(); err != nil {
		return err
	}
	switch {
	case o.Want == "" && o.WantMAC == "":
		return errors.New("--want or --want-mac is required (how else to tell the standby answered)")
	case o.FaultFile == "" || o.ReadyFile == "":
		return errors.New("--fault-file and --ready-file are required")
	case o.Every < time.Millisecond || o.Attempt < o.Every:
		return fmt.Errorf("--every %v --attempt %v: want every >= 1ms and attempt >= every", o.Every, o.Attempt)
	case o.Timeout <= 0 || o.Wait <= 0:
		return errors.New("--timeout and --wait must be positive")
	}
	if o.WantMAC != "" {
		mac, err := net.ParseMAC(o.WantMAC)
		if err != nil || len(mac) != 6 {
			return fmt.Errorf("--want-mac %q: want an Ethernet MAC address", o.WantMAC)
		}
		o.WantMAC = mac.String()
	}
	return nil
}

// probeResult is probe's JSON line.
type probeResult struct {
	OK      bool   `json:"ok"`
	Want    string `json:"want,omitempty"`
	WantMAC string `json:"want_mac,omitempty"`
	FaultNS int64  `json:"fault_ns"`
	// OKNS is when the first read that returned Want ended; MS is OKNS
	// minus FaultNS in milliseconds.
	OKNS int64   `json:"ok_ns,omitempty"`
	MS   float64 `json:"ms,omitempty"`
	// AttemptMS is how long that read took.
	AttemptMS float64 `json:"attempt_ms,omitempty"`
	// Attempts were started; Pending never returned; Late returned after
	// the attempt bound (failed); Answers counts reads that did not come
	// from the standby, by "content via MAC" (the old node); Errors counts
	// failed reads by kind.
	Attempts int            `json:"attempts"`
	Pending  int            `json:"pending"`
	Late     int            `json:"late"`
	Answers  map[string]int `json:"answers,omitempty"`
	Errors   map[string]int `json:"errors,omitempty"`
	Error    string         `json:"error,omitempty"`
}

// attempt is one read's outcome; mac is the VIP's neighbour entry right
// after the read (who answered it).
type attempt struct {
	start, end time.Time
	content    string
	mac        string
	err        error
}

// answer is what one read returned: a read from the standby matches both
// wanted values that are set.
type answer struct{ content, mac string }

func (a answer) String() string { return a.content + " via " + a.mac }

func (o probeOptions) fromStandby(a answer) bool {
	return (o.Want == "" || a.content == o.Want) && (o.WantMAC == "" || a.mac == o.WantMAC)
}

// tally accumulates attempts after the fault. It is pure: probe feeds it.
type tally struct {
	o     probeOptions
	res   probeResult
	bound time.Duration
	done  int
}

func newTally(o probeOptions, faultNS int64) *tally {
	return &tally{o: o, res: probeResult{Want: o.Want, WantMAC: o.WantMAC, FaultNS: faultNS}, bound: o.Attempt}
}

func (t *tally) launched() { t.res.Attempts++ }

// add records one attempt and reports whether it is the first success.
func (t *tally) add(a attempt) bool {
	t.done++
	took := a.end.Sub(a.start)
	switch {
	case took > t.bound:
		t.res.Late++
	case a.err != nil:
		if t.res.Errors == nil {
			t.res.Errors = map[string]int{}
		}
		t.res.Errors[errKind(a.err)]++
	case !t.o.fromStandby(answer{a.content, a.mac}):
		if t.res.Answers == nil {
			t.res.Answers = map[string]int{}
		}
		t.res.Answers[answer{a.content, a.mac}.String()]++
	default:
		if t.res.OK {
			return false
		}
		t.res.OK = true
		t.res.OKNS = a.end.UnixNano()
		t.res.MS = float64(t.res.OKNS-t.res.FaultNS) / 1e6
		t.res.AttemptMS = float64(took) / 1e6
		return true
	}
	return false
}

func (t *tally) result() probeResult {
	r := t.res
	r.Pending = r.Attempts - t.done
	return r
}

// errKind names a failed read's cause briefly, for counting.
func errKind(err error) string {
	s := err.Error()
	for _, k := range []struct{ sub, kind string }{
		{"connection refused", "refused"},
		{"no route to host", "no-route"},
		{"network is unreachable", "net-unreachable"},
		{"connection reset", "reset"},
		{"broken pipe", "broken-pipe"},
		{"EOF", "eof"},
		{"disconnected", "disconnected"},
		{"MNT3ERR", "mount-error"},
	} {
		if strings.Contains(s, k.sub) {
			return k.kind
		}
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return "other: " + s
}

// parseFaultFile reads the fault's time: decimal unix ns and a newline
// (a file caught half-written has no newline yet).
func parseFaultFile(b []byte) (int64, bool) {
	s, ok := strings.CutSuffix(string(b), "\n")
	if !ok {
		return 0, false
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || ns <= 0 {
		return 0, false
	}
	return ns, true
}

// probe warms up, waits for the fault, then times the failover (see the
// package documentation).
// reader is one client read and the VIP's neighbour entry after it.
type reader struct {
	read func() (string, error)
	mac  func() (string, error)
}

func (r reader) once() (answer, error) {
	c, err := r.read()
	if err != nil {
		return answer{}, err
	}
	m, err := r.mac()
	if err != nil {
		return answer{}, err
	}
	return answer{c, m}, nil
}

func probe(ctx context.Context, o probeOptions, r reader) (probeResult, error) {
	// Warm up: the path to the serving node works and the client's ARP
	// entry for the VIP is fresh, as for a client in use.
	warm := time.Now().Add(o.Wait)
	var first answer
	for {
		a, err := boundedAnswer(ctx, max(o.Attempt, time.Second), r)
		if err == nil {
			first = a
			break
		}
		if ctx.Err() != nil {
			return probeResult{}, ctx.Err()
		}
		if time.Now().After(warm) {
			return probeResult{}, fmt.Errorf("warm-up: no read of %s through %s succeeded within %v: %w", o.Target.File, o.Target.Server, o.Wait, err)
		}
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return probeResult{}, err
		}
	}
	if o.fromStandby(first) {
		return probeResult{}, fmt.Errorf("warm-up: the standby already answers before the fault (%s)", first)
	}
	if err := os.WriteFile(o.ReadyFile, []byte(first.content+" "+first.mac+"\n"), 0o644); err != nil {
		return probeResult{}, fmt.Errorf("write --ready-file: %w", err)
	}

	// Wait for the fault's time. Polling a file every millisecond is
	// cheap and needs nothing from the bench but a redirect.
	var faultNS int64
	for deadline := time.Now().Add(o.Wait); ; {
		if b, err := os.ReadFile(o.FaultFile); err == nil {
			if ns, ok := parseFaultFile(b); ok {
				faultNS = ns
				break
			}
		}
		if time.Now().After(deadline) {
			return probeResult{}, fmt.Errorf("no fault time in %s within %v", o.FaultFile, o.Wait)
		}
		if err := pause(ctx, time.Millisecond); err != nil {
			return probeResult{}, err
		}
	}

	t := newTally(o, faultNS)
	results := make(chan attempt, 4096)
	launch := func() {
		t.launched()
		go func() {
			a := attempt{start: time.Now()}
			var ans answer
			ans, a.err = r.once()
			a.content, a.mac = ans.content, ans.mac
			a.end = time.Now()
			select {
			case results <- a:
			default: // the probe is over
			}
		}()
	}
	launch()
	tick := time.NewTicker(o.Every)
	defer tick.Stop()
	giveUp := time.NewTimer(time.Until(time.Unix(0, faultNS).Add(o.Timeout)))
	defer giveUp.Stop()
	for {
		select {
		case <-ctx.Done():
			return probeResult{}, ctx.Err()
		case <-tick.C:
			launch()
		case a := <-results:
			if t.add(a) {
				return t.result(), nil
			}
		case <-giveUp.C:
			res := t.result()
			res.Error = fmt.Sprintf("no read answered by the standby within %v of the fault", o.Timeout)
			return res, nil
		}
	}
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
