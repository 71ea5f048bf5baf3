package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTreeHash(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, map[string]string{"x/1": "one", "2": "two", ".ftnas-state/j": "a", ".replbench-m3": "1"})
	writeTree(t, b, map[string]string{"x/1": "one", "2": "two"})
	h := newHasher()
	ha, na, err := h.tree(a)
	if err != nil {
		t.Fatal(err)
	}
	hb, nb, err := h.tree(b)
	if err != nil {
		t.Fatal(err)
	}
	if ha != hb || na != nb || na != 4 {
		t.Fatalf("same trees (skipped entries aside): %s/%d vs %s/%d, want equal with 4 entries", ha, na, hb, nb)
	}
	writeTree(t, b, map[string]string{"x/1": "onf"}) // same size, other content
	if hb2, _, _ := h.tree(b); hb2 == ha {
		t.Error("changed content, same hash: the cache kept a stale content hash")
	}
	if err := os.Chmod(filepath.Join(a, "2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ha2, _, _ := h.tree(a); ha2 == ha {
		t.Error("changed mode, same hash")
	}
	if err := os.Rename(filepath.Join(a, "2"), filepath.Join(a, "3")); err != nil {
		t.Fatal(err)
	}
	if ha3, _, _ := h.tree(a); ha3 == ha {
		t.Error("renamed file, same hash")
	}
}

func TestSummarize(t *testing.T) {
	var ms []float64
	for i := 100; i >= 1; i-- {
		ms = append(ms, float64(i))
	}
	s := summarize(ms)
	if s.N != 100 || s.P50 != 50 || s.P99 != 99 || s.Max != 100 {
		t.Errorf("summarize(1..100) = %+v, want n 100, p50 50, p99 99, max 100", s)
	}
	if z := summarize(nil); z != (summary{}) {
		t.Errorf("summarize(nil) = %+v, want zeros", z)
	}
}

func TestSocketsFlag(t *testing.T) {
	s := sockets{}
	if err := s.Set("n1=/run/a.sock"); err != nil || s["n1"] != "/run/a.sock" {
		t.Errorf("Set(n1=/run/a.sock): %v, %v", err, s)
	}
	for _, bad := range []string{"", "n1", "=x", "n1="} {
		if err := s.Set(bad); err == nil {
			t.Errorf("Set(%q): no error", bad)
		}
	}
}

func TestWorkloadCheck(t *testing.T) {
	ok := workloadOptions{Server: "10.0.0.1", Dir: "d", Files: 10, Renames: 5, Deletes: 5}
	if err := ok.check(); err != nil {
		t.Errorf("valid options: %v", err)
	}
	for name, o := range map[string]workloadOptions{
		"server":   {Server: "host", Dir: "d"},
		"too many": {Server: "10.0.0.1", Dir: "d", Files: 1, Renames: 1, Deletes: 1},
		"abs dir":  {Server: "10.0.0.1", Dir: "/d"},
	} {
		if err := o.check(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestLinkBytes(t *testing.T) {
	dev := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
 ded0: 1500 10 0 0 0 0 0 0 2500 20 0 0 0 0 0 0
`
	n, err := linkBytes(dev, "ded0")
	if err != nil || n != 4000 {
		t.Fatalf("linkBytes(ded0) = %d, %v; want 4000 (rx 1500 + tx 2500)", n, err)
	}
	if _, err := linkBytes(dev, "ded1"); err == nil {
		t.Error("linkBytes(ded1): no error for an interface that is not there")
	}
	if _, err := linkBytes(" bad: 1 2\n", "bad"); err == nil {
		t.Error("linkBytes(bad): no error for a short line")
	}
}

func TestPhases(t *testing.T) {
	w := workloadResult{StartNS: 1000, PhaseEndNS: map[string]int64{"creates": 2000, "writes": 3000}}
	trace := strings.Join([]string{
		`{"t":500,"ev":"status","lag_ms":999}`, // before the workload: left out
		`{"t":1100,"ev":"status","lag_ms":10}`,
		`{"t":1200,"ev":"marker","lag_ms":5}`,
		`{"t":1000,"ev":"link","bytes":0}`,
		`{"t":2000,"ev":"link","bytes":1000}`,
		`{"t":2500,"ev":"status","lag_ms":300}`,
		`{"t":2600,"ev":"link","bytes":2000}`,
		`{"t":2900,"ev":"link","bytes":8000}`,
		`{"t":3500,"ev":"marker","lag_ms":7}`,
		`{"t":2100,"ev":"cpu","busy":100,"total":400}`,
		`{"t":2900,"ev":"cpu","busy":400,"total":800}`,
	}, "\n")
	rows, err := phases(strings.NewReader(trace), w)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0].Phase != "creates" || rows[1].Phase != "writes" || rows[2].Phase != "after" {
		t.Fatalf("rows %+v; want creates, writes, after", rows)
	}
	if c := rows[0]; c.CPUBusy != -1 || c.Status.N != 1 || c.Status.Max != 10 || c.Marker.Max != 5 || c.Seconds != 1e-6 || c.LinkMBs != 1000 {
		t.Errorf("creates %+v", c)
	}
	if wr := rows[1]; wr.Status.P99 != 300 || wr.Marker.N != 0 || wr.LinkMBs != 20000 || wr.CPUBusy != 75 {
		t.Errorf("writes %+v", wr)
	}
	if _, err := phases(strings.NewReader("{bad"), w); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a bad trace line: %v; want an error naming line 1", err)
	}
}

func TestCPUJiffies(t *testing.T) {
	stat := "cpu  100 5 50 1000 20 3 7 0 40 0\ncpu0 50 2 25 500 10 1 3 0 20 0\nintr 1\n"
	busy, total, err := cpuJiffies(stat)
	// busy: user, nice, system, irq, softirq, steal; guest is in user.
	if err != nil || busy != 165 || total != 1185 {
		t.Fatalf("cpuJiffies = %d, %d, %v; want 165, 1185", busy, total, err)
	}
	if _, _, err := cpuJiffies("cpu0 1 2 3 4 5\n"); err == nil {
		t.Error("no error without the all-CPU line")
	}
	if _, _, err := cpuJiffies("cpu 1 2 x 4 5 6\n"); err == nil || !strings.Contains(err.Error(), "field 3") {
		t.Errorf("a bad field: %v; want an error naming field 3", err)
	}
}

func TestPacer(t *testing.T) {
	p := newPacer(0)
	if err := p.wait(context.Background(), 1<<30); err != nil {
		t.Fatal(err)
	}
	// 1 MiB/s: the second MiB may start 1 s after the first; a cancelled
	// context ends the wait.
	p = newPacer(1)
	if err := p.wait(context.Background(), 1<<20); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.wait(ctx, 1<<20); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait past its rate with a cancelled context: %v", err)
	}
}
