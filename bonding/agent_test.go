package bonding

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDP is a Datapath at this package's boundary: it records the actions
// applied and fails the ones it is told to.
type fakeDP struct {
	mu       sync.Mutex
	links    map[string]LinkInfo
	applied  []string
	failOn   map[string]error // by show() prefix
	activity []string
	answers  []string
	carrier  chan Carrier
}

func (f *fakeDP) Link(name string) (LinkInfo, error) {
	if name == "broken" {
		return LinkInfo{}, errors.New("netlink exploded")
	}
	return f.links[name], nil
}

func (f *fakeDP) Apply(a Action) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := show(a)
	for prefix, err := range f.failOn {
		if strings.HasPrefix(s, prefix) {
			return err
		}
	}
	f.applied = append(f.applied, s)
	return nil
}

func (f *fakeDP) Activity() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.activity
	f.activity = nil
	return a
}

func (f *fakeDP) ProbeAnswers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.answers
	f.answers = nil
	return a
}

func (f *fakeDP) Carrier() <-chan Carrier { return f.carrier }

func (f *fakeDP) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.applied)
}

func TestAgent(t *testing.T) {
	dp := &fakeDP{
		links: map[string]LinkInfo{
			"eth0": link("eth0", 1, "10.0.0.1/24"),
			"eth1": link("eth1", 2, "10.0.0.2/24"),
			"eth2": link("eth2", 3),
		},
		failOn:  map[string]error{"enslave eth2": errors.New("device busy")},
		carrier: make(chan Carrier),
	}
	c, err := New(Config{ProbeTarget: target})
	if err != nil {
		t.Fatal(err)
	}
	ticks := make(chan time.Time)
	changes := make(chan Changed, 100)
	a := NewAgent(c, dp, AgentOptions{Ticks: ticks, Now: func() time.Time { return t0 }, OnChange: func(ch Changed) { changes <- ch }})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error)
	go func() { ran <- a.Run(runCtx) }()

	// Add waits for the probe reply: other frames do not count; deliver
	// the answer on the next tick.
	added := make(chan error)
	go func() { added <- a.Add(ctx, "eth0") }()
	waitChange(t, changes, "eth0", Checking)
	dp.mu.Lock()
	dp.activity = []string{"eth0"}
	dp.mu.Unlock()
	ticks <- t0.Add(10 * time.Millisecond)
	if s, err := a.Status(ctx); err != nil || s.NICs[0].State != Checking {
		t.Fatalf("frames other than the answer admitted eth0: %+v, %v", s, err)
	}
	dp.mu.Lock()
	dp.answers = []string{"eth0"}
	dp.mu.Unlock()
	ticks <- t0.Add(25 * time.Millisecond)
	if err := <-added; err != nil {
		t.Fatalf("add eth0: %v", err)
	}
	waitChange(t, changes, "eth0", Up)

	if err := a.Add(ctx, "broken"); err == nil || err.Error() != "bonding: add broken: netlink exploded" {
		t.Fatalf("add broken = %v", err)
	}
	if err := a.Add(ctx, "missing"); err == nil || !strings.Contains(err.Error(), "no such interface") {
		t.Fatalf("add missing = %v", err)
	}
	// A datapath failure refuses the add and rolls the NIC back.
	go func() { added <- a.Add(ctx, "eth2") }()
	waitChange(t, changes, "eth2", Checking)
	dp.mu.Lock()
	dp.answers = []string{"eth2"}
	dp.mu.Unlock()
	ticks <- t0.Add(50 * time.Millisecond)
	if err := <-added; err == nil || err.Error() != "bonding: add eth2: enslave: device busy" {
		t.Fatalf("add eth2 = %v", err)
	}
	got := dp.log()
	if !slices.Contains(got, "release eth2 "+m3+" 1500") || slices.Contains(got, "active [eth0 eth2]") {
		t.Fatalf("after failed enslave, applied:\n%s", strings.Join(got, "\n"))
	}

	// Carrier loss reaches the controller.
	dp.carrier <- Carrier{NIC: "eth0", Up: false}
	waitChange(t, changes, "eth0", Down)
	if err := a.SetMode(ctx, Failover); err != nil {
		t.Fatal(err)
	}
	s, err := a.Status(ctx)
	if err != nil || s.Mode != Failover || len(s.NICs) != 1 || s.NICs[0].State != Down || s.Identity.IPv4() != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("status = %+v, %v", s, err)
	}
	if err := a.Remove(ctx, "eth0"); err != nil {
		t.Fatal(err)
	}
	if got := dp.log(); !slices.Contains(got, "destroy to eth0 [10.0.0.1/24]") {
		t.Fatalf("remove last: applied:\n%s", strings.Join(got, "\n"))
	}

	// A request still waiting when Run stops gets ErrStopped; later ones too.
	go func() { added <- a.Add(ctx, "eth1") }()
	waitChange(t, changes, "eth1", Checking)
	stop()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if err := <-added; !errors.Is(err, ErrStopped) {
		t.Fatalf("pending add after stop = %v", err)
	}
	if _, err := a.Status(ctx); !errors.Is(err, ErrStopped) {
		t.Fatalf("status after stop = %v", err)
	}
}

func waitChange(t *testing.T, ch <-chan Changed, nic string, to State) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case c := <-ch:
			if c.NIC == nic && c.To == to {
				return
			}
		case <-deadline:
			t.Fatalf("no change of %s to %v", nic, to)
		}
	}
}
