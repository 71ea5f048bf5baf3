package heartbeat

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var (
	simSeed  = flag.Uint64("heartbeat.seed", 0, "run the randomized failover simulation with this seed only")
	simSeeds = flag.Int("heartbeat.seeds", 40, "number of seeds for the randomized failover simulation")
	simTrace = flag.Bool("heartbeat.trace", false, "print the simulation's event log")
)

// simNode is one node of the simulated pair: a Machine with its Receiver
// and MemTransport, and the simulated world its actions act on.
type simNode struct {
	id   uint32
	cfg  Config
	m    *Machine
	rx   *Receiver
	tr   *MemTransport
	rank int

	down       int // steps until restart, 0 when running
	stallSteps int // steps left in a stall (no ticks, no reads)

	// The world.
	vip, services bool
	persisted     uint64 // last EpochChanged
	probePending  bool
	witnessUp     bool
	witnessHangs  bool
	healthy       bool
	lastEpoch     uint64
	lastState     State
	logEpoch      uint64 // the epoch of the log its journal position is in
	stateChanges  int
}

type sim struct {
	t     *testing.T
	seed  uint64
	rng   *rand.Rand
	net   *MemNetwork
	key   []byte
	nodes [2]*simNode
	now   time.Time
	step  int
	log   []string
	trace bool
}

// simTiming: defaults, but a shorter failback delay so auto failback
// happens within the runs.
func simTiming() Timing { return Timing{FailbackDelay: 3 * time.Second}.WithDefaults() }

func newSim(t *testing.T, seed uint64, policy FailbackPolicy) *sim {
	s := &sim{
		t:    t,
		seed: seed,
		rng:  rand.New(rand.NewPCG(seed, 42)),
		net:  NewMemNetwork(seed),
		key:  []byte("sim-cluster-key-0123456789"),
		now:  t0,
	}
	roles := [2]Role{RolePrimary, RoleStandby}
	for i := range s.nodes {
		id, peer := uint32(i+1), uint32(2-i)
		n := &simNode{id: id, rank: Rank(id, peer), witnessUp: true, healthy: true}
		n.cfg = Config{ClusterID: testCluster, NodeID: id, PeerID: peer, Role: roles[i], Timing: simTiming(), Failback: policy, Seed: seed}.WithDefaults()
		s.nodes[i] = n
		s.start(n)
	}
	return s
}

func (s *sim) logf(n *simNode, format string, args ...any) {
	who := "--"
	if n != nil {
		who = fmt.Sprintf("n%d", n.id)
	}
	line := fmt.Sprintf("%6d %8s %s %s", s.step, s.now.Sub(t0).Round(time.Millisecond), who, fmt.Sprintf(format, args...))
	if s.trace {
		s.t.Log(line)
	}
	s.log = append(s.log, line)
	if len(s.log) > 400 {
		s.log = s.log[len(s.log)-200:]
	}
}

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	tail := s.log
	if len(tail) > 60 {
		tail = tail[len(tail)-60:]
	}
	s.t.Fatalf("seed %d (replay: go test ./heartbeat -run %s -heartbeat.seed=%d -heartbeat.trace): step %d: %s\nrecent events:\n%s",
		s.seed, strings.Split(s.t.Name(), "/")[0], s.seed, s.step, fmt.Sprintf(format, args...), strings.Join(tail, "\n"))
}

// start (re)starts a node's process from its persisted epoch.
func (s *sim) start(n *simNode) {
	cfg := n.cfg
	cfg.Epoch = n.persisted
	cfg.Seq = uint64(s.now.UnixNano())
	cfg.Seed = s.rng.Uint64()
	m, err := New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	rx, err := NewReceiver(s.key, testCluster, cfg.PeerID)
	if err != nil {
		s.t.Fatal(err)
	}
	n.m, n.rx = m, rx
	n.tr = s.net.Attach(n.id, cfg.PeerID, cfg.Paths)
	n.probePending = false
	n.lastEpoch = n.persisted
	n.lastState = StateAlone
	s.apply(n, ServiceHealth{OK: n.healthy})
	s.apply(n, Tick{Now: s.now})
}

// crash kills a node's process; its supervisor removes the VIP.
func (s *sim) crash(n *simNode, steps int) {
	s.logf(n, "CRASH for %d steps", steps)
	_ = n.tr.Close()
	n.down = steps
	n.stallSteps = 0
	n.vip, n.services = false, false
}

// apply steps n's machine with ev and executes the actions.
func (s *sim) apply(n *simNode, ev Event) {
	acts := n.m.Step(ev)
	for _, a := range acts {
		switch a := a.(type) {
		case Send:
			for p := range n.cfg.Paths {
				msg := a.Msg
				msg.Path = uint8(p)
				if err := n.tr.Send(p, Encode(s.key, msg)); err != nil {
					s.fail("n%d send: %v", n.id, err)
				}
			}
		case AddVIP:
			if n.m.Epoch() != n.persisted {
				s.fail("n%d AddVIP at epoch %d before persisting it (persisted %d)", n.id, n.m.Epoch(), n.persisted)
			}
			n.vip = true
		case RemoveVIP:
			n.vip = false
		case StartServices:
			if !n.vip {
				s.fail("n%d StartServices without the VIP", n.id)
			}
			n.services = true
		case StopServices:
			if n.vip {
				s.fail("n%d StopServices before RemoveVIP", n.id)
			}
			n.services = false
		case EpochChanged:
			if a.Epoch <= n.persisted {
				s.fail("n%d EpochChanged %d not above persisted %d", n.id, a.Epoch, n.persisted)
			}
			n.persisted = a.Epoch
			s.logf(n, "epoch %d", a.Epoch)
		case StateChanged:
			n.stateChanges++
			s.logf(n, "%v -> %v (%s)", a.From, a.To, a.Reason)
		case ProbeWitness:
			n.probePending = true
		case Alarm:
			s.logf(n, "alarm %v", a)
		case ClearAlarm:
			s.logf(n, "clear %v", a.Alarm)
		case GratuitousARP, RenewLease:
		default:
			s.fail("unknown action %T", a)
		}
	}
}

func (s *sim) randomFaults() {
	r := s.rng
	a, b := s.nodes[0], s.nodes[1]
	if r.Float64() < 0.004 { // one direction of one path
		from, to := a, b
		if r.IntN(2) == 0 {
			from, to = b, a
		}
		p := r.IntN(2)
		cut := !s.net.IsCut(from.id, to.id, p)
		s.net.Cut(from.id, to.id, p, cut)
		s.logf(nil, "cut n%d->n%d path %d = %v", from.id, to.id, p, cut)
	}
	if r.Float64() < 0.002 { // full partition, or heal it
		cut := !s.net.IsCut(1, 2, 0)
		for p := range 2 {
			s.net.CutPath(1, 2, p, cut)
		}
		s.logf(nil, "partition = %v", cut)
	}
	if r.Float64() < 0.002 {
		loss := []float64{0, 0, 0.1, 0.3, 0.7}[r.IntN(5)]
		s.net.SetLoss(loss)
		s.logf(nil, "loss %.1f", loss)
	}
	for _, n := range s.nodes {
		if r.Float64() < 0.002 {
			n.witnessUp = !n.witnessUp
			s.logf(n, "witness up = %v", n.witnessUp)
		}
		if r.Float64() < 0.0005 {
			n.witnessHangs = !n.witnessHangs
			s.logf(n, "witness hangs = %v", n.witnessHangs)
		}
		if n.down > 0 {
			continue
		}
		if r.Float64() < 0.0015 {
			n.healthy = !n.healthy
			s.logf(n, "healthy = %v", n.healthy)
			s.apply(n, ServiceHealth{OK: n.healthy, Reason: "sim"})
		}
		if r.Float64() < 0.0015 {
			var ev Event
			switch r.IntN(4) {
			case 0:
				ev = Demote{}
			case 1:
				ev = Promote{}
			case 2:
				ev = Promote{Force: true}
			case 3:
				ev = Failback{}
			}
			s.logf(n, "admin %T%+v", ev, ev)
			s.apply(n, ev)
		}
		if r.Float64() < 0.0005 {
			s.crash(n, 20+r.IntN(200))
			continue
		}
		if n.stallSteps == 0 && r.Float64() < 0.001 {
			n.stallSteps = 4 + r.IntN(80)
			s.logf(n, "STALL for %d steps", n.stallSteps)
		}
	}
}

// advance runs one step of 25 ms for both nodes.
func (s *sim) advance(faults, writes bool) {
	s.step++
	s.now = s.now.Add(tick)
	if faults {
		s.randomFaults()
	}
	for _, n := range s.nodes {
		if n.down > 0 {
			n.down--
			if n.down == 0 {
				s.logf(n, "RESTART at epoch %d", n.persisted)
				s.start(n)
			}
			continue
		}
		if n.stallSteps > 0 {
			n.stallSteps--
			continue
		}
		s.apply(n, Tick{Now: s.now})
		s.receive(n)
		if n.probePending && !n.witnessHangs && s.rng.Float64() < 0.7 {
			n.probePending = false
			s.apply(n, WitnessResult{Reachable: n.witnessUp && !s.vipAnswered(n)})
		}
		if writes && n.m.Serving() && s.rng.Float64() < 0.05 {
			n.logEpoch = n.m.Status().Epoch
			s.apply(n, JournalPosition{Pos: n.m.Status().Journal + 1, Epoch: n.logEpoch})
		}
	}
	s.check()
}

func (s *sim) receive(n *simNode) {
	for {
		select {
		case p, ok := <-n.tr.Packets():
			if !ok {
				return
			}
			msg, err := n.rx.Accept(p.Path, p.Data)
			if err != nil {
				s.fail("n%d dropped a datagram from its own peer: %v", n.id, err)
			}
			s.apply(n, Heartbeat{Path: p.Path, Msg: msg})
			// The applier follows the serving peer's journal (resyncing to
			// it after a split brain); after a handover the old server's
			// shipper delivers its last records.
			own := n.m.Status().Journal
			if !n.m.Serving() && (msg.State.Serving() && (own != msg.Journal || n.logEpoch != msg.Epoch) || msg.Flags&FlagYield != 0 && own < msg.Journal) {
				n.logEpoch = msg.Epoch
				s.apply(n, JournalPosition{Pos: msg.Journal, Epoch: msg.Epoch})
			}
		default:
			return
		}
	}
}

// vipAnswered is the other half of nasd's witness check: a node that does
// not hold the VIP asks the LAN (path 0) who does, and the other node's
// kernel answers while it holds the VIP and its fence is open (its lease
// runs), even while its process is stalled. An answer may be lost.
func (s *sim) vipAnswered(n *simNode) bool {
	o := s.nodes[0]
	if o == n {
		o = s.nodes[1]
	}
	if n.vip || o.down > 0 || !o.vip || !s.now.Before(o.m.Status().LeaseUntil) || s.net.IsCut(o.id, n.id, 0) {
		return false
	}
	return s.rng.Float64() >= s.net.Loss()
}

// check verifies the invariants after every step.
func (s *sim) check() {
	for _, n := range s.nodes {
		if n.down > 0 {
			continue
		}
		st := n.m.Status()
		if st.Epoch < n.lastEpoch {
			s.fail("n%d epoch went down from %d to %d", n.id, n.lastEpoch, st.Epoch)
		}
		n.lastEpoch = st.Epoch
		if st.Epoch != n.persisted {
			s.fail("n%d at epoch %d, persisted %d", n.id, st.Epoch, n.persisted)
		}
		if n.vip != st.Serving || n.services != st.Serving {
			s.fail("n%d serving %v but vip %v services %v", n.id, st.Serving, n.vip, n.services)
		}
		if st.Serving && int(st.Epoch%2) != n.rank {
			s.fail("n%d serves at epoch %d, not of its class %d", n.id, st.Epoch, n.rank)
		}
		if st.Serving != (st.State == StateMaster || st.State == StatePrimarySlave) {
			s.fail("n%d serving %v in state %v", n.id, st.Serving, st.State)
		}
		if st.Serving && st.State == StateMaster && n.cfg.Role != RolePrimary ||
			st.Serving && st.State == StatePrimarySlave && n.cfg.Role != RoleStandby {
			s.fail("n%d (%v) serves as %v", n.id, n.cfg.Role, st.State)
		}
		n.lastState = st.State
	}
	a, b := s.nodes[0], s.nodes[1]
	if a.vip && b.vip && a.m.Epoch() == b.m.Epoch() {
		s.fail("both nodes hold the VIP in epoch %d", a.m.Epoch())
	}
}

// heal ends every fault and clears operator yields.
func (s *sim) heal() {
	s.logf(nil, "HEAL")
	s.net.Heal()
	for _, n := range s.nodes {
		n.witnessUp, n.witnessHangs = true, false
		n.stallSteps = 0
		if n.down > 0 {
			n.down = 1 // restarts on the next step
		}
		if !n.healthy {
			n.healthy = true
			if n.down == 0 {
				s.apply(n, ServiceHealth{OK: true})
			}
		}
	}
	for _, n := range s.nodes {
		if n.down == 0 && n.m.Status().AdminYield {
			s.logf(n, "admin Promote (heal)")
			s.apply(n, Promote{})
		}
	}
}

func (s *sim) converged() {
	a, b := s.nodes[0], s.nodes[1]
	sa, sb := a.m.Status(), b.m.Status()
	if sa.Serving == sb.Serving {
		s.fail("after healing: n1 serving %v (%v), n2 serving %v (%v)", sa.Serving, sa.State, sb.Serving, sb.State)
	}
	slave := sa
	if sa.Serving {
		slave = sb
	}
	if slave.State != StateSlave {
		s.fail("after healing the non-serving node is %v, want slave", slave.State)
	}
	if len(sa.Alarms)+len(sb.Alarms) != 0 {
		s.fail("alarms after healing: %v %v", sa.Alarms, sb.Alarms)
	}
}

func runSim(t *testing.T, seed uint64, policy FailbackPolicy, faultSteps int) {
	s := newSim(t, seed, policy)
	s.trace = *simTrace
	for range faultSteps {
		s.advance(true, true)
	}
	s.heal()
	// Long enough for a restart, a startup wait, a handover and an
	// automatic failback; then the pair must stay put.
	for range 600 {
		s.advance(false, false)
	}
	changes := s.nodes[0].stateChanges + s.nodes[1].stateChanges
	for range 200 {
		s.advance(false, false)
	}
	if c := s.nodes[0].stateChanges + s.nodes[1].stateChanges; c != changes {
		s.fail("%d state changes after the pair should have settled", c-changes)
	}
	s.converged()
}

// TestRandomizedFailover drives the pair through thousands of steps of
// random partitions (per path and direction), loss, witness loss and
// hangs, service failures, operator commands, crashes with restarts from
// the persisted epoch, and process stalls, checking the invariants at every
// step; then heals everything and checks that exactly one node serves.
func TestRandomizedFailover(t *testing.T) {
	seeds := *simSeeds
	steps := 6000
	if testing.Short() {
		seeds, steps = 8, 3000
	}
	if *simSeed != 0 {
		for _, policy := range []FailbackPolicy{FailbackManual, FailbackAuto} {
			t.Run(policy.String(), func(t *testing.T) { runSim(t, *simSeed, policy, steps) })
		}
		return
	}
	for i := range seeds {
		seed := uint64(i + 1)
		policy := FailbackPolicy(i % 2)
		t.Run(fmt.Sprintf("seed%d-%v", seed, policy), func(t *testing.T) { runSim(t, seed, policy, steps) })
	}
}

// TestSimHappyPath checks the harness itself: without faults the primary
// becomes master within a heartbeat, the standby its slave, and the
// datagrams all arrive.
func TestSimHappyPath(t *testing.T) {
	s := newSim(t, 1, FailbackManual)
	for range 400 {
		s.advance(false, true)
	}
	a, b := s.nodes[0].m.Status(), s.nodes[1].m.Status()
	if a.State != StateMaster || b.State != StateSlave || a.Epoch != 2 || b.Epoch != 2 {
		t.Fatalf("n1 %v e%d, n2 %v e%d; want master/slave at epoch 2", a.State, a.Epoch, b.State, b.Epoch)
	}
	if s.nodes[0].stateChanges != 2 || s.nodes[1].stateChanges != 1 {
		t.Fatalf("state changes %d, %d; want 2 and 1", s.nodes[0].stateChanges, s.nodes[1].stateChanges)
	}
	st := s.net.Stats()
	if st.Sent < 200 || st.Delivered+st.Cut != st.Sent || st.Cut > 2 { // n1's first heartbeat goes out before n2 attaches
		t.Fatalf("network stats %+v", st)
	}
	if rx := s.nodes[1].rx.Stats(); rx.Accepted == 0 || rx.Dropped() != 0 {
		t.Fatalf("receiver stats %+v", rx)
	}
}

// TestFrozenMasterLeaseRunsOutBeforeTakeover: the master freezes (SIGSTOP)
// right after its heartbeats stopped getting through to the standby for
// lost before the freeze (it still hears the standby). The standby must
// not promote before the lease the master's acks gave it ended. With no
// loss that is the master's whole lease; with one-way loss the master
// kept its lease through the witness, which the standby cannot see when
// the same cut also blocks the VIP's ARP answer: then, when the master
// runs again, it must release on its first step (it hears the standby
// serve in a higher epoch).
func TestFrozenMasterLeaseRunsOutBeforeTakeover(t *testing.T) {
	for _, lost := range []time.Duration{0, 400 * time.Millisecond, 800 * time.Millisecond} {
		t.Run(fmt.Sprint("lost", lost), func(t *testing.T) {
			s := newSim(t, 3, FailbackManual)
			for range 200 {
				s.advance(false, false)
			}
			a, b := s.nodes[0], s.nodes[1]
			if !a.m.Serving() {
				t.Fatal("n1 not serving")
			}
			for p := range 2 {
				s.net.Cut(a.id, b.id, p, true)
			}
			for range int(lost / tick) {
				s.advance(false, false)
			}
			a.stallSteps = 1 << 30
			lease := a.m.Status().LeaseUntil
			acked := a.m.ackAt.Add(a.m.t.Lease)
			frozen := s.now
			for !b.m.Serving() && s.now.Sub(frozen) < 10*time.Second {
				s.advance(false, false)
			}
			if !b.m.Serving() {
				t.Fatal("standby never took over")
			}
			if s.now.Before(acked) {
				t.Fatalf("standby promoted at %v, before the lease the master's acks gave it ended at %v",
					s.now.Sub(t0), acked.Sub(t0))
			}
			if lost == 0 && s.now.Before(lease) {
				t.Fatalf("standby promoted at %v, before the frozen master's lease ended at %v",
					s.now.Sub(t0), lease.Sub(t0))
			}
			t.Logf("lease ended %v after the freeze (acked part %v), takeover %v after",
				lease.Sub(frozen), acked.Sub(frozen), s.now.Sub(frozen))
			a.stallSteps = 0
			s.advance(false, false)
			if a.m.Serving() || a.vip {
				t.Fatalf("the old master still serves (vip %v, state %v, epoch %d) after its first step", a.vip, a.m.State(), a.m.Epoch())
			}
		})
	}
}
