package heartbeat

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// world records what the nodes did to the (fake) VIP and services, in one
// global order.
type world struct {
	mu      sync.Mutex
	log     []string
	vip     map[uint32]bool
	epochs  map[uint32][]uint64
	witness atomic.Bool
}

func (w *world) record(id uint32, what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = append(w.log, fmt.Sprintf("n%d %s", id, what))
	switch what {
	case "vip+":
		for other, held := range w.vip {
			if held && other != id {
				w.log = append(w.log, "DOUBLE VIP")
			}
		}
		w.vip[id] = true
	case "vip-":
		w.vip[id] = false
	}
}

func (w *world) events(id uint32) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	prefix := fmt.Sprintf("n%d ", id)
	for _, l := range w.log {
		if s, ok := strings.CutPrefix(l, prefix); ok {
			out = append(out, s)
		}
	}
	return out
}

type fakeVIP struct {
	w  *world
	id uint32
}

func (v fakeVIP) Add(context.Context) error      { v.w.record(v.id, "vip+"); return nil }
func (v fakeVIP) Remove(context.Context) error   { v.w.record(v.id, "vip-"); return nil }
func (v fakeVIP) Announce(context.Context) error { v.w.record(v.id, "arp"); return nil }

type fakeServices struct {
	w  *world
	id uint32
}

func (s fakeServices) Start(context.Context) error { s.w.record(s.id, "start"); return nil }
func (s fakeServices) Stop(context.Context) error  { s.w.record(s.id, "stop"); return nil }

type testNode struct {
	id     uint32
	node   *Node
	ticks  chan time.Time
	cancel context.CancelFunc
	done   chan error
}

type nodePair struct {
	t     *testing.T
	w     *world
	now   time.Time
	nodes []*testNode
	// settle, if set, runs after every round of ticks: transports with
	// real latency use it to let the datagrams of the round arrive before
	// fake time moves on.
	settle func()
	// probes counts witness probes in flight: fake time must not run
	// past a probe whose goroutine has not been scheduled yet.
	probes atomic.Int64
}

func newNodePair(t *testing.T) *nodePair {
	net := NewMemNetwork(1)
	return newNodePairOn(t, [2]Transport{net.Attach(1, 2, 2), net.Attach(2, 1, 2)})
}

func newNodePairOn(t *testing.T, trs [2]Transport) *nodePair {
	w := &world{vip: map[uint32]bool{}, epochs: map[uint32][]uint64{}}
	w.witness.Store(true)
	np := &nodePair{t: t, w: w, now: t0}
	key := []byte("node-test-key-0123456789")
	for i, role := range []Role{RolePrimary, RoleStandby} {
		id, peer := uint32(i+1), uint32(2-i)
		tn := &testNode{id: id, ticks: make(chan time.Time), done: make(chan error, 1)}
		n, err := NewNode(NodeConfig{
			Machine:   Config{ClusterID: testCluster, NodeID: id, PeerID: peer, Role: role, Seed: 1},
			Key:       key,
			Transport: trs[i],
			VIP:       fakeVIP{w, id},
			Services:  fakeServices{w, id},
			Witness: func(context.Context) bool {
				defer np.probes.Add(-1)
				return w.witness.Load()
			},
			OnAction: func(a Action) {
				if _, ok := a.(ProbeWitness); ok {
					np.probes.Add(1)
				}
			},
			SaveEpoch: func(e uint64) error {
				w.mu.Lock()
				defer w.mu.Unlock()
				w.epochs[id] = append(w.epochs[id], e)
				return nil
			},
			Ticks: tn.ticks,
		})
		if err != nil {
			t.Fatal(err)
		}
		tn.node = n
		ctx, cancel := context.WithCancel(context.Background())
		tn.cancel = cancel
		go func() { tn.done <- n.Run(ctx) }()
		np.nodes = append(np.nodes, tn)
	}
	t.Cleanup(func() {
		for _, tn := range np.nodes {
			if tn.cancel != nil {
				tn.stop(t)
			}
		}
	})
	return np
}

func (tn *testNode) stop(t *testing.T) {
	tn.cancel()
	tn.cancel = nil
	select {
	case err := <-tn.done:
		if err != nil {
			t.Errorf("n%d Run: %v", tn.id, err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("n%d Run did not return", tn.id)
	}
}

// waitFor ticks the running nodes in fake time (25 ms a tick) until cond
// holds, at most maxTicks ticks.
func (np *nodePair) waitFor(what string, maxTicks int, cond func() bool) {
	np.t.Helper()
	for range maxTicks {
		if cond() {
			return
		}
		np.now = np.now.Add(tick)
		for _, tn := range np.nodes {
			if tn.cancel != nil {
				tn.ticks <- np.now
			}
		}
		np.settleProbes()
		if np.settle != nil {
			np.settle()
		}
	}
	np.t.Fatalf("%s: not after %d ticks; log %q", what, maxTicks, np.w.log)
}

// settleProbes waits (in real time, briefly) until every witness probe
// started so far has answered and the answers are queued or taken.
func (np *nodePair) settleProbes() {
	deadline := time.Now().Add(5 * time.Second)
	for np.probes.Load() > 0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
}

func (np *nodePair) st(i int) Status { return np.nodes[i].node.Status() }

// tookOver: the stale VIP removed at start, then the VIP added, then the
// gratuitous ARPs and the service start (which run concurrently).
func tookOver(ev []string) bool {
	if len(ev) != 4 || ev[0] != "vip-" || ev[1] != "vip+" {
		return false
	}
	rest := slices.Sorted(slices.Values(ev[2:]))
	return slices.Equal(rest, []string{"arp", "start"})
}

func TestNodePair(t *testing.T) {
	np := newNodePair(t)
	ctx := context.Background()
	n1, n2 := np.nodes[0], np.nodes[1]

	np.waitFor("n1 master, n2 slave", 100, func() bool {
		return np.st(0).State == StateMaster && np.st(1).State == StateSlave && np.st(1).Epoch == 2
	})
	np.waitFor("n1 announced and started", 10, func() bool { return tookOver(np.w.events(1)) })
	if got := np.w.events(2); !slices.Equal(got, []string{"vip-"}) {
		t.Fatalf("n2 did %q, want only the stale-VIP removal", got)
	}

	// n1's services fail: it releases and goes silent; n2 takes over
	// after the dead interval and the lease.
	if err := n1.node.Submit(ctx, ServiceHealth{OK: false, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	np.waitFor("n2 takes over", 120, func() bool { return np.st(1).State == StatePrimarySlave })
	if got, want := np.w.events(1)[4:], []string{"vip-", "stop"}; !slices.Equal(got, want) {
		t.Fatalf("n1 released with %q, want %q", got, want)
	}
	np.waitFor("n2 announced and started", 10, func() bool { return tookOver(np.w.events(2)) })

	// n1 recovers and rejoins as slave; failback hands the role back.
	if err := n1.node.Submit(ctx, ServiceHealth{OK: true}); err != nil {
		t.Fatal(err)
	}
	np.waitFor("n1 rejoins as slave", 40, func() bool { return np.st(0).State == StateSlave && np.st(0).Epoch == 3 })
	// Its applier follows n2's log (epoch 3), empty so far: caught up.
	if err := n1.node.Submit(ctx, JournalPosition{Pos: 0, Epoch: 3}); err != nil {
		t.Fatal(err)
	}
	np.waitFor("n1 synced", 40, func() bool { return np.st(0).Synced })
	if err := n2.node.Submit(ctx, Failback{}); err != nil {
		t.Fatal(err)
	}
	np.waitFor("failback", 40, func() bool {
		return np.st(0).State == StateMaster && np.st(1).State == StateSlave && np.st(1).Epoch == 4
	})
	np.w.mu.Lock()
	if slices.Contains(np.w.log, "DOUBLE VIP") {
		t.Errorf("both nodes held the VIP: %q", np.w.log)
	}
	if got, want := np.w.epochs, map[uint32][]uint64{1: {2, 3, 4}, 2: {2, 3, 4}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("persisted epochs %v, want %v", got, want)
	}
	np.w.mu.Unlock()
	if rs := n2.node.ReceiverStats(); rs.Accepted == 0 || rs.Dropped() != 0 {
		t.Errorf("n2 receiver %+v", rs)
	}

	// Stopping the serving node releases the VIP and stops the services.
	n1.stop(t)
	ev := np.w.events(1)
	if got, want := ev[len(ev)-2:], []string{"vip-", "stop"}; !slices.Equal(got, want) {
		t.Fatalf("n1 at shutdown did %q, want %q", got, want)
	}
}

func TestNewNodeErrors(t *testing.T) {
	w := &world{vip: map[uint32]bool{}}
	base := NodeConfig{
		Machine:   Config{ClusterID: 1, NodeID: 1, PeerID: 2, Role: RolePrimary},
		Key:       []byte("0123456789abcdef"),
		Transport: NewMemNetwork(1).Attach(1, 2, 2),
		VIP:       fakeVIP{w, 1},
		Services:  fakeServices{w, 1},
		Witness:   func(context.Context) bool { return true },
		SaveEpoch: func(uint64) error { return nil },
	}
	if _, err := NewNode(base); err != nil {
		t.Fatalf("NewNode: %v", err)
	}
	for name, mod := range map[string]func(*NodeConfig){
		"short key":  func(c *NodeConfig) { c.Key = []byte("short") },
		"no witness": func(c *NodeConfig) { c.Witness = nil },
		"bad config": func(c *NodeConfig) { c.Machine.NodeID = 0 },
	} {
		cfg := base
		mod(&cfg)
		if _, err := NewNode(cfg); err == nil {
			t.Errorf("%s: NewNode accepted it", name)
		}
	}
}

func TestNodeEpochPersistFailureMeansNoService(t *testing.T) {
	w := &world{vip: map[uint32]bool{}}
	ticks := make(chan time.Time)
	var probes atomic.Int32 // witness probes started and not answered
	n, err := NewNode(NodeConfig{
		Machine:   Config{ClusterID: 1, NodeID: 1, PeerID: 2, Role: RolePrimary, Seed: 1},
		Key:       []byte("0123456789abcdef"),
		Transport: NewMemNetwork(1).Attach(1, 2, 2),
		VIP:       fakeVIP{w, 1},
		Services:  fakeServices{w, 1},
		Witness: func(context.Context) bool {
			defer probes.Add(-1)
			return true
		},
		OnAction: func(a Action) {
			if _, ok := a.(ProbeWitness); ok {
				probes.Add(1)
			}
		},
		SaveEpoch: func(uint64) error { return fmt.Errorf("disk full") },
		Ticks:     ticks,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	// Ticks until the node has tried to serve and failed: past the
	// startup wait, and past the witness's answer, which comes from a
	// goroutine of its own: each tick waits (in real time, briefly) for
	// the probes started to answer, as nodePair does, and the ticks go
	// on until the failure (a fixed 5 s of them could all be taken
	// before the answer came, on a loaded machine). At most a minute.
	now := t0
	failed := func() bool { return slices.Contains(n.Status().Alarms, Alarm{Kind: AlarmServiceFailed}) }
	for i := 0; i < 2400 && (i < 200 || !failed()); i++ {
		now = now.Add(tick)
		ticks <- now
		for deadline := time.Now().Add(5 * time.Second); probes.Load() > 0 && time.Now().Before(deadline); {
			runtime.Gosched()
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, e := range w.events(1) {
		if e == "vip+" || e == "start" {
			t.Fatalf("served without a persisted epoch: %q", w.events(1))
		}
	}
	if s := n.Status(); s.Healthy || !slices.Contains(s.Alarms, Alarm{Kind: AlarmServiceFailed}) {
		t.Fatalf("status %+v, want unhealthy with the service-failed alarm", s)
	}
}
