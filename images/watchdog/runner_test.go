package watchdog

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type fakeDev struct {
	mu     sync.Mutex
	pets   int
	closed bool
	fail   bool
}

func (d *fakeDev) Keepalive() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("closed")
	}
	if d.fail {
		return errors.New("EIO")
	}
	d.pets++
	return nil
}

func (d *fakeDev) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

func (d *fakeDev) state() (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pets, d.closed
}

// TestRunner drives the loop with a fake clock, ticks and probe: it pets
// while booting, stops once nasd has failed its probes for longer than
// the grace, resumes when they pass, keeps petting during a clean stop
// and closes with the magic 'V'.
func TestRunner(t *testing.T) {
	dev := &fakeDev{}
	var mu sync.Mutex
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	set := func(s int) {
		mu.Lock()
		now = time.Date(2026, 12, 5, 0, 0, s, 0, time.UTC)
		mu.Unlock()
	}
	started := make(chan struct{}, 1)
	answers := make(chan error)
	events := make(chan string)
	probes := 0
	r := &Runner{
		Dev: dev, Policy: NewPolicy(15 * time.Second), ProbeTimeout: time.Hour,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		Probe: func(ctx context.Context) error {
			probes++
			started <- struct{}{}
			select {
			case err := <-answers:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		afterEvent: func(e string) { events <- e },
	}
	ticks := make(chan time.Time)
	stop, done := make(chan struct{}), make(chan struct{})
	ran := make(chan error, 1)
	go func() { ran <- r.Run(t.Context(), ticks, stop, done) }()

	wait := func(want string) {
		t.Helper()
		if got := <-events; got != want {
			t.Fatalf("event %q, want %q", got, want)
		}
	}
	tick := func(s int, wantPets int, wantProbe bool) {
		t.Helper()
		set(s)
		ticks <- now
		wait("tick")
		if wantProbe {
			<-started
		}
		if pets, _ := dev.state(); pets != wantPets {
			t.Fatalf("at %ds: %d pets, want %d", s, pets, wantPets)
		}
	}
	answer := func(s int, err error) {
		t.Helper()
		set(s)
		answers <- err
		wait("probed")
	}
	tick(0, 1, true)
	answer(1, errors.New("connection refused")) // nasd still starting
	tick(10, 2, true)
	answer(11, nil)
	tick(20, 3, true)              // the probe hangs
	tick(26, 4, false)             // 15 s since the last good probe: still fed, no second probe
	tick(27, 4, false)             // 16 s: not fed
	answer(28, errors.New("hung")) // the hung probe ends
	tick(29, 4, true)
	answer(30, nil) // nasd came back
	tick(31, 5, true)

	close(stop) // a clean shutdown: fed although nasd stops
	wait("stop")
	if pets, _ := dev.state(); pets != 6 {
		t.Fatalf("stop: %d pets", pets)
	}
	answer(60, errors.New("nasd stopped"))
	tick(100, 7, false)
	close(done)
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if _, closed := dev.state(); !closed || probes != 5 {
		t.Errorf("closed %v after %d probes", closed, probes)
	}
}

// TestRunnerKeepaliveError: a failing keepalive does not end the loop;
// cancelling it returns without the magic close.
func TestRunnerKeepaliveError(t *testing.T) {
	dev := &fakeDev{fail: true}
	events := make(chan string, 8) // the cancelled probe's result may be handled too
	r := &Runner{
		Dev: dev, Policy: NewPolicy(time.Minute), ProbeTimeout: time.Hour,
		Probe:      func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
		afterEvent: func(e string) { events <- e },
	}
	ctx, cancel := context.WithCancel(t.Context())
	ticks := make(chan time.Time)
	ran := make(chan error, 1)
	go func() { ran <- r.Run(ctx, ticks, nil, nil) }()
	ticks <- time.Now()
	<-events
	ticks <- time.Now()
	<-events
	cancel()
	if err := <-ran; !errors.Is(err, context.Canceled) {
		t.Errorf("run: %v", err)
	}
	if pets, closed := dev.state(); pets != 0 || closed {
		t.Errorf("pets %d closed %v", pets, closed)
	}
}
