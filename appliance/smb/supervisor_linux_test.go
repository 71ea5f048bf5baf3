//go:build linux

package smb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeClock is a manual clock. After records each requested duration on
// calls so a test can see every back-off the supervisor chooses.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
	calls  chan time.Duration
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_000_000_000, 0), calls: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.timers = append(c.timers, fakeTimer{c.now.Add(d), ch})
	c.mu.Unlock()
	c.calls <- d
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
		} else {
			keep = append(keep, t)
		}
	}
	c.timers = keep
}

// nextAfter returns the next duration the supervisor waits for.
func (c *fakeClock) nextAfter(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.calls:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("supervisor did not start a back-off wait")
		return 0
	}
}

// waitFor polls cond until it holds or timeout passes. It is for waiting
// on real processes, whose progress no event reports.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

// alive reports whether pid is a live (non-zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// fakeSetup makes a config file and returns its path.
func fakeSetup(t *testing.T) (dir, conf string) {
	dir = t.TempDir()
	conf = filepath.Join(dir, "smb.conf")
	if err := os.WriteFile(conf, []byte("[global]\n\tpid directory = "+filepath.Join(dir, "run")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, conf
}

// runResult is a Run in a goroutine.
type runResult struct {
	done chan struct{} // closed when Run returned
	err  error
}

func startRun(t *testing.T, s *Supervisor) (cancel func(), r *runResult) {
	ctx, cancelCtx := context.WithCancel(context.Background())
	r = &runResult{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = s.Run(ctx)
	}()
	t.Cleanup(func() {
		cancelCtx()
		<-r.done
	})
	return cancelCtx, r
}

func waitRunReturn(t *testing.T, r *runResult) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

// TestSupervisorBackoff drives restarts of a fake smbd with a fake clock:
// back-off doubles up to MaxBackoff, resets after a stable run, and the
// state reports restarts and the last exit.
func TestSupervisorBackoff(t *testing.T) {
	dir, conf := fakeSetup(t)
	smbd := filepath.Join(dir, "fake-smbd")
	count := filepath.Join(dir, "count")
	writeScript(t, smbd, fmt.Sprintf(`n=$(cat %[1]s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %[1]s
if [ $n -le 4 ]; then echo "crash $n"; exit 3; fi
exec sleep 1000
`, count))
	clk := newFakeClock()
	logs := &recHandler{}
	s := NewSupervisor(SupervisorConfig{
		ConfPath: conf, Log: slog.New(logs), Clock: clk, SmbdPath: smbd,
		MinBackoff: time.Second, MaxBackoff: 4 * time.Second, StableAfter: 10 * time.Second,
	})
	cancel, done := startRun(t, s)

	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		if got := clk.nextAfter(t); got != want {
			t.Fatalf("back-off %d = %v, want %v", i, got, want)
		}
		st := s.State()
		if st.Phase != PhaseBackoff || st.Restarts != i || !strings.Contains(st.LastError, "exit status 3") || st.PID != 0 {
			t.Fatalf("state during back-off %d: %+v", i, st)
		}
		if !st.Since.Equal(clk.Now()) {
			t.Errorf("Since = %v, want fake now %v", st.Since, clk.Now())
		}
		clk.Advance(want)
	}
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "already active") {
		t.Errorf("second Run = %v, want already active", err)
	}

	// Fifth start stays up. Let it be up for StableAfter, then kill it.
	waitFor(t, 10*time.Second, "fake smbd running", func() bool { return s.State().Phase == PhaseRunning })
	pid := s.State().PID
	if s.State().Restarts != 4 {
		t.Errorf("restarts = %d, want 4", s.State().Restarts)
	}
	clk.Advance(10 * time.Second)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if got := clk.nextAfter(t); got != time.Second {
		t.Errorf("back-off after a stable run = %v, want reset to 1s", got)
	}
	if st := s.State(); !strings.Contains(st.LastError, "killed") {
		t.Errorf("last error %q does not say killed", st.LastError)
	}
	clk.Advance(time.Second)
	waitFor(t, 10*time.Second, "restart", func() bool {
		st := s.State()
		return st.Phase == PhaseRunning && st.PID != pid
	})
	pid = s.State().PID

	cancel()
	if err := waitRunReturn(t, done); err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
	if alive(pid) {
		t.Errorf("fake smbd %d still alive after Run returned", pid)
	}
	if st := s.State(); st.Phase != PhaseStopped || st.PID != 0 {
		t.Errorf("state after Run: %+v", st)
	}
	found := false
	logs.mu.Lock()
	for _, r := range logs.recs {
		found = found || r.Message == "smbd: crash 1"
	}
	logs.mu.Unlock()
	if !found {
		t.Error("smbd output \"crash 1\" was not logged")
	}
}

// TestSupervisorStopEscalates: an smbd that ignores SIGTERM is killed
// with its whole process group after StopGrace.
func TestSupervisorStopEscalates(t *testing.T) {
	dir, conf := fakeSetup(t)
	smbd := filepath.Join(dir, "fake-smbd")
	kid := filepath.Join(dir, "kid")
	writeScript(t, smbd, fmt.Sprintf("trap '' TERM\nsleep 1000 &\necho $! > %s.tmp; mv %[1]s.tmp %[1]s\nwait\n", kid))
	s := NewSupervisor(SupervisorConfig{ConfPath: conf, SmbdPath: smbd, StopGrace: 100 * time.Millisecond})
	cancel, done := startRun(t, s)
	var kidPid int
	waitFor(t, 10*time.Second, "fake smbd child", func() bool {
		b, err := os.ReadFile(kid)
		if err != nil {
			return false
		}
		kidPid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	pid := s.State().PID
	if pid == 0 || !alive(pid) || !alive(kidPid) {
		t.Fatalf("processes not up: smbd %d, child %d", pid, kidPid)
	}
	cancel()
	if err := waitRunReturn(t, done); err != nil {
		t.Errorf("Run = %v", err)
	}
	if alive(pid) {
		t.Errorf("smbd %d still alive after Run returned", pid)
	}
	// The child got SIGKILL with the group before Run returned; it may
	// still be in the kernel's exit path (its files, the log pipe, are
	// closed before it turns zombie), so give that a moment.
	waitFor(t, 5*time.Second, "the SIGKILLed child gone", func() bool { return !alive(kidPid) })
}

func TestSupervisorStartFailure(t *testing.T) {
	dir, conf := fakeSetup(t)
	clk := newFakeClock()
	s := NewSupervisor(SupervisorConfig{ConfPath: conf, Clock: clk, SmbdPath: filepath.Join(dir, "missing-smbd"), MinBackoff: time.Second})
	cancel, done := startRun(t, s)
	if got := clk.nextAfter(t); got != time.Second {
		t.Errorf("back-off = %v", got)
	}
	if st := s.State(); st.Phase != PhaseBackoff || !strings.Contains(st.LastError, "start smbd") {
		t.Errorf("state %+v", st)
	}
	cancel()
	if err := waitRunReturn(t, done); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestSupervisorKick: Kick ends a back-off wait without the clock moving.
func TestSupervisorKick(t *testing.T) {
	dir, conf := fakeSetup(t)
	smbd := filepath.Join(dir, "fake-smbd")
	count := filepath.Join(dir, "count")
	writeScript(t, smbd, fmt.Sprintf("echo x >> %s\nexit 1\n", count))
	clk := newFakeClock()
	s := NewSupervisor(SupervisorConfig{ConfPath: conf, Clock: clk, SmbdPath: smbd, MinBackoff: time.Hour, MaxBackoff: 4 * time.Hour})
	cancel, done := startRun(t, s)
	if d := clk.nextAfter(t); d != time.Hour {
		t.Fatalf("first back-off %v", d)
	}
	starts := func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "x")
	}
	if n := starts(); n != 1 {
		t.Fatalf("%d starts before Kick, want 1", n)
	}
	s.Kick()
	if d := clk.nextAfter(t); d != 2*time.Hour {
		t.Fatalf("second back-off %v", d)
	}
	if n := starts(); n != 2 {
		t.Errorf("%d starts after Kick, want 2", n)
	}
	cancel()
	if err := waitRunReturn(t, done); err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestSupervisorRejects(t *testing.T) {
	s := NewSupervisor(SupervisorConfig{ConfPath: "smb.conf"})
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "not absolute") {
		t.Errorf("relative conf: %v", err)
	}
	s = NewSupervisor(SupervisorConfig{ConfPath: filepath.Join(t.TempDir(), "none.conf")})
	if err := s.Run(context.Background()); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing conf: %v", err)
	}
	if err := s.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("Reload while stopped: %v", err)
	}
}

// TestSupervisorWaitsUntilReady: while Ready is false smbd is not started
// (no crash loop, no back-off growth, no restart counted); Run asks again
// at each ReadyPoll and at a Kick, and starts smbd once Ready holds.
func TestSupervisorWaitsUntilReady(t *testing.T) {
	dir, conf := fakeSetup(t)
	smbd := filepath.Join(dir, "fake-smbd")
	count := filepath.Join(dir, "count")
	writeScript(t, smbd, fmt.Sprintf("echo x >> %s\nexec sleep 1000\n", count))
	starts := func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "x")
	}
	var ready atomic.Bool
	var asked atomic.Int32
	clk := newFakeClock()
	s := NewSupervisor(SupervisorConfig{
		ConfPath: conf, Clock: clk, SmbdPath: smbd, ReadyPoll: time.Minute,
		Ready: func() bool { asked.Add(1); return ready.Load() },
	})
	cancel, done := startRun(t, s)
	for i := range 3 {
		if d := clk.nextAfter(t); d != time.Minute {
			t.Fatalf("wait %d: %v, want the ReadyPoll of 1m", i, d)
		}
		if st := s.State(); st.Phase != PhaseWaiting || st.Restarts != 0 || st.PID != 0 {
			t.Fatalf("state while not ready: %+v", st)
		}
		if n := asked.Load(); n != int32(i+1) {
			t.Fatalf("Ready asked %d times after %d polls, want %d", n, i, i+1)
		}
		clk.Advance(time.Minute)
	}
	// The fourth question, after the third poll, is answered false too.
	if d := clk.nextAfter(t); d != time.Minute {
		t.Fatalf("fourth wait: %v", d)
	}
	if n := starts(); n != 0 {
		t.Fatalf("smbd started %d times while not ready", n)
	}
	// The address comes up; a Kick (not the clock) starts smbd.
	ready.Store(true)
	s.Kick()
	waitFor(t, 10*time.Second, "smbd started after Kick", func() bool { return starts() > 0 })
	if n, st := starts(), s.State(); n != 1 || st.Phase != PhaseRunning || st.Restarts != 0 {
		t.Errorf("after Kick: %d starts, state %+v; want 1 start, 0 restarts", n, st)
	}
	cancel()
	if err := waitRunReturn(t, done); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestSupervisorWaitEndsWithContext: Run returns while waiting for Ready.
func TestSupervisorWaitEndsWithContext(t *testing.T) {
	dir, conf := fakeSetup(t)
	clk := newFakeClock()
	s := NewSupervisor(SupervisorConfig{
		ConfPath: conf, Clock: clk, SmbdPath: filepath.Join(dir, "never-started"),
		Ready: func() bool { return false },
	})
	cancel, done := startRun(t, s)
	if d := clk.nextAfter(t); d != DefaultReadyPoll {
		t.Fatalf("wait %v, want DefaultReadyPoll", d)
	}
	cancel()
	if err := waitRunReturn(t, done); err != nil {
		t.Errorf("Run = %v", err)
	}
	if st := s.State(); st.Phase != PhaseStopped || st.LastError != "" {
		t.Errorf("state after Run: %+v", st)
	}
}
