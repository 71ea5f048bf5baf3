package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ftnas/heartbeat"
)

func TestParseFaultFile(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1733000000123456000\n", 1733000000123456000, true},
		{"1733000000123456000", 0, false}, // not yet complete
		{"17330\n", 17330, true},
		{"\n", 0, false},
		{"-5\n", 0, false},
		{"12x\n", 0, false},
		{"", 0, false},
	} {
		got, ok := parseFaultFile([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseFaultFile(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseFaultFile(f *testing.F) {
	for _, s := range []string{"1733000000123456000\n", "1\n", "", "\n\n", "99999999999999999999\n", "01\n", " 7\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ns, ok := parseFaultFile(b)
		if ok && (ns <= 0 || !strings.HasSuffix(string(b), "\n")) {
			t.Fatalf("accepted %q as %d", b, ns)
		}
		if !ok {
			return
		}
		if again, ok := parseFaultFile([]byte(strconv.FormatInt(ns, 10) + "\n")); !ok || again != ns {
			t.Fatalf("%q parsed as %d, which does not round-trip (%d, %v)", b, ns, again, ok)
		}
	})
}

func TestTallyClassifies(t *testing.T) {
	fault := time.Unix(100, 0)
	tl := newTally(probeOptions{Want: "n2", Attempt: 200 * time.Millisecond}, fault.UnixNano())
	at := func(startMS, endMS int) (time.Time, time.Time) {
		return fault.Add(time.Duration(startMS) * time.Millisecond), fault.Add(time.Duration(endMS) * time.Millisecond)
	}
	for range 5 {
		tl.launched()
	}
	s, e := at(0, 300)
	if tl.add(attempt{start: s, end: e, content: "n2"}) {
		t.Fatal("a read slower than the bound counted as the success")
	}
	s, e = at(10, 20)
	tl.add(attempt{start: s, end: e, err: errors.New("dial tcp 10.0.0.1:111: connect: connection refused")})
	s, e = at(20, 25)
	tl.add(attempt{start: s, end: e, content: "n1"})
	s, e = at(1700, 1712)
	if !tl.add(attempt{start: s, end: e, content: "n2"}) {
		t.Fatal("the first in-time read of n2 is not the success")
	}
	r := tl.result()
	if !r.OK || r.MS != 1712 || r.AttemptMS != 12 || r.Late != 1 || r.Errors["refused"] != 1 || r.Answers["n1 via "] != 1 || r.Pending != 1 || r.Attempts != 5 {
		t.Errorf("result %+v", r)
	}
}

// TestTallyTellsNodesApartByMAC: with replicated volumes both nodes
// return the same content; only the VIP's neighbour entry says which one
// answered, and a read through the old node's MAC is not the success.
func TestTallyTellsNodesApartByMAC(t *testing.T) {
	fault := time.Unix(100, 0)
	for _, tc := range []struct {
		name, want, wantMAC string
	}{
		{"by MAC", "", mac2},
		{"by both", "data", mac2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := newTally(probeOptions{Want: tc.want, WantMAC: tc.wantMAC, Attempt: time.Second}, fault.UnixNano())
			tl.launched()
			tl.launched()
			if tl.add(attempt{start: fault, end: fault.Add(5 * time.Millisecond), content: "data", mac: mac1}) {
				t.Fatal("a read through the old node's MAC counted as the success")
			}
			if !tl.add(attempt{start: fault.Add(900 * time.Millisecond), end: fault.Add(903 * time.Millisecond), content: "data", mac: mac2}) {
				t.Fatal("the read through the standby's MAC is not the success")
			}
			if r := tl.result(); !r.OK || r.MS != 903 || r.Answers["data via "+mac1] != 1 || len(r.Answers) != 1 {
				t.Errorf("result %+v", r)
			}
		})
	}
}

func TestErrKind(t *testing.T) {
	for in, want := range map[string]string{
		"dial tcp 10.77.1.100:111: connect: no route to host": "no-route",
		"portmapper/MOUNT: EOF":                               "eof",
		"MNT /data: MNT3ERR_ACCES":                            "mount-error",
		"something odd":                                       "other: something odd",
	} {
		if got := errKind(errors.New(in)); got != want {
			t.Errorf("errKind(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeReader answers from a script of (content, MAC) pairs; the last one
// repeats. The probe runs attempts concurrently: a lock held from read
// to mac keeps each attempt's MAC its own.
func fakeReader(script ...answer) reader {
	var (
		mu    sync.Mutex
		calls int
		last  answer
	)
	return reader{
		read: func() (string, error) {
			mu.Lock()
			last = script[min(calls, len(script)-1)]
			calls++
			if last.content == "" {
				mu.Unlock()
				return "", errors.New("connection refused")
			}
			return last.content, nil
		},
		mac: func() (string, error) {
			defer mu.Unlock()
			return last.mac, nil
		},
	}
}

func probeTestOptions(t *testing.T) probeOptions {
	dir := t.TempDir()
	return probeOptions{
		Target:    nfsTarget{Server: "10.0.0.1", Export: "/data", File: "whoami"},
		FaultFile: filepath.Join(dir, "fault"), ReadyFile: filepath.Join(dir, "ready"),
		Every: time.Millisecond, Attempt: time.Minute, Timeout: time.Minute, Wait: time.Minute,
	}
}

const (
	mac1 = "02:00:00:00:00:01"
	mac2 = "02:00:00:00:00:02"
)

// TestProbeTimesFromTheFault: warm-up on the old node, the ready file,
// then the first read the standby answers. With replicated volumes the
// content is the same on both: the neighbour entry tells them apart.
func TestProbeTimesFromTheFault(t *testing.T) {
	for _, tc := range []struct {
		name, want, wantMAC string
		script              []answer
		other               string
	}{
		{"by content", "n2", "", []answer{{"", ""}, {"n1", mac1}, {"n1", mac1}, {"n2", mac2}}, "n1 via " + mac1},
		{"by MAC", "", mac2, []answer{{"", ""}, {"data", mac1}, {"data", mac1}, {"data", mac2}}, "data via " + mac1},
		{"by both", "n2", mac2, []answer{{"n1", mac1}, {"n2", mac1}, {"n2", mac2}}, "n2 via " + mac1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := probeTestOptions(t)
			o.Want, o.WantMAC = tc.want, tc.wantMAC
			if err := o.check(); err != nil {
				t.Fatal(err)
			}
			fault := time.Now().Add(-time.Second) // the fault was a second ago
			if err := os.WriteFile(o.FaultFile, []byte(strconv.FormatInt(fault.UnixNano(), 10)+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r, err := probe(ctx, o, fakeReader(tc.script...))
			if err != nil {
				t.Fatal(err)
			}
			first := tc.script[0]
			if first.content == "" {
				first = tc.script[1]
			}
			if b, err := os.ReadFile(o.ReadyFile); err != nil || string(b) != first.content+" "+first.mac+"\n" {
				t.Errorf("ready file: %q, %v", b, err)
			}
			if !r.OK || r.FaultNS != fault.UnixNano() || r.MS < 1000 || r.MS > 30000 {
				t.Errorf("result %+v: want ok, timed from the fault (>= 1000 ms)", r)
			}
			// Attempts overlap, so the standby's answer may be tallied
			// before the old node's: at most that one other answer.
			for k, n := range r.Answers {
				if k != tc.other || n > 1 {
					t.Errorf("answers %v: want at most one, %q", r.Answers, tc.other)
				}
			}
		})
	}
}

func TestProbeRefusesTheStandbyBeforeTheFault(t *testing.T) {
	o := probeTestOptions(t)
	o.WantMAC = mac2
	_, err := probe(context.Background(), o, fakeReader(answer{"data", mac2}))
	if err == nil || !strings.Contains(err.Error(), "before the fault") {
		t.Errorf("err %v, want one saying the standby answered before the fault", err)
	}
}

func TestRunRejectsBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing OP"},
		{[]string{"frob"}, `unknown op "frob"`},
		{[]string{"read"}, `--server ""`},
		{[]string{"read", "--server", "10.0.0.1", "--export", "data"}, `--export "data"`},
		{[]string{"probe", "--server", "10.0.0.1"}, "--want or --want-mac is required"},
		{[]string{"probe", "--server", "10.0.0.1", "--want-mac", "n2", "--fault-file", "f", "--ready-file", "r"}, `--want-mac "n2"`},
		{[]string{"probe", "--server", "10.0.0.1", "--want", "n2", "--fault-file", "f", "--ready-file", "r", "--every", "300ms"}, "attempt >= every"},
		{[]string{"watch", "--vip", "10.0.0.1"}, "MEMBER=NETNS"},
		{[]string{"watch", "--vip", "10.0.0.1", "n1"}, `member "n1"`},
		{[]string{"watch", "--vip", "10.0.0.1", "n1=a", "n1=b"}, "given twice"},
		{[]string{"report"}, "--trials and --events are required"},
		{[]string{"timers", "x"}, "unexpected arguments"},
	} {
		var out, errOut strings.Builder
		err := run(context.Background(), tc.args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want error containing %q", tc.args, err, tc.want)
		}
	}
}

func TestTimersAreHeartbeatDefaults(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"timers"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	d := heartbeat.DefaultTiming()
	for _, want := range []string{
		fmt.Sprintf("interval_ms=%d\n", d.Interval.Milliseconds()),
		fmt.Sprintf("dead_ms=%d\n", d.Dead.Milliseconds()),
		fmt.Sprintf("lease_ms=%d\n", d.Lease.Milliseconds()),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("timers output lacks %q:\n%s", want, out.String())
		}
	}
}
