package heartbeat

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Config configures a Machine.
type Config struct {
	ClusterID uint64
	NodeID    uint32 // this node, not 0
	PeerID    uint32 // the peer, 0 when no peer is configured
	Role      Role   // required when a peer is configured; default primary
	Paths     int    // heartbeat paths, 1..MaxPaths, default 2
	Timing    Timing // zero fields take defaults
	Failback  FailbackPolicy
	// Epoch is the last epoch this node persisted (from EpochChanged).
	Epoch uint64
	// Seq is the sequence number the first heartbeat continues from. It
	// must grow across restarts, e.g. max(persisted, wall clock in ns),
	// or the peer's Receiver drops this node's heartbeats as replays
	// until the epoch changes.
	Seq uint64
	// Seed seeds the heartbeat jitter.
	Seed uint64
}

// WithDefaults fills in defaults.
func (c Config) WithDefaults() Config {
	if c.Paths == 0 {
		c.Paths = 2
	}
	if c.Role == 0 && c.PeerID == 0 {
		c.Role = RolePrimary
	}
	c.Timing = c.Timing.WithDefaults()
	return c
}

// Validate checks a Config filled in by WithDefaults.
func (c Config) Validate() error {
	switch {
	case c.NodeID == 0:
		return errors.New("heartbeat: config: node id must not be 0")
	case c.PeerID == c.NodeID:
		return fmt.Errorf("heartbeat: config: peer id %d is this node's id", c.PeerID)
	case c.Role != RolePrimary && c.Role != RoleStandby:
		return fmt.Errorf("heartbeat: config: role %v: want primary or standby", c.Role)
	case c.Paths < 1 || c.Paths > MaxPaths:
		return fmt.Errorf("heartbeat: config: %d paths: want 1..%d", c.Paths, MaxPaths)
	case c.Failback != FailbackManual && c.Failback != FailbackAuto:
		return fmt.Errorf("heartbeat: config: failback policy %v: want manual or auto", c.Failback)
	}
	return c.Timing.Validate()
}

// Machine is the failover state machine. See the package documentation
// for its rules. It is not safe for concurrent use.
type Machine struct {
	cfg  Config
	t    Timing
	rank int
	rng  *rand.Rand

	state   State
	serving bool
	epoch   uint64
	seq     uint64
	journal uint64
	healthy bool

	started    bool
	now        time.Time
	startedAt  time.Time
	nextSend   time.Time
	leaseUntil time.Time
	releasedAt time.Time
	forceSend  bool

	sent       [sentRing]sentBeat // this node's recent heartbeats: seq → sent at
	ackAt      time.Time          // send time of the newest of them the peer acknowledged
	peerLegacy bool               // the peer speaks version 1 (no acks)
	servedAt   time.Time          // when this node last started serving

	peerSeen     bool
	firstSeen    time.Time
	lastHeard    [MaxPaths]time.Time
	peer         Msg // the peer's newest heartbeat
	peerAt       time.Time
	peerMaxEpoch uint64

	witnessPending bool
	witnessAsked   time.Time
	witnessOK      bool
	witnessAt      time.Time // time of the last result, zero if none
	// witnessDownAt is the time of the last "unreachable" result, and
	// witnessBackAt of the first "reachable" one after it. A node whose
	// witness did not answer after it last heard its peer may have been
	// cut off from everything, so the peer's silence until the witness
	// answered again says nothing (chaos seed 51: a master cut off for
	// 2 s released, got the witness back 100 ms after the cut healed,
	// before the peer's next heartbeat, and took the service back from
	// the peer that had taken over, with the peer's writes). A dead-peer
	// promotion then waits until the peer has been silent for Dead after
	// the witness came back.
	witnessDownAt, witnessBackAt time.Time

	adminYield      bool      // Demote: do not promote until the peer serves or Promote
	yieldUntil      time.Time // handover: do not promote before this
	request         bool      // FlagRequest: asking the serving peer for the service
	operatorPromote bool      // Promote given: take a yielded role even when behind in the journal
	forcePromote    bool      // Promote{Force}: pending
	forced          bool      // serving by Promote{Force}: witness not needed until the peer is heard
	failbackPending bool      // Failback on a PrimarySlave: pending
	caughtUpSince   time.Time // FailbackAuto: since when the primary is caught up
	// synced: not serving, and caught up with the serving peer's journal
	// at least once since this process started or its position went back
	// (a resync): its data is a copy of the master's, perhaps lagging.
	synced     bool
	logEpoch   uint64    // JournalPosition.Epoch: the log this node's position is in
	wentBackAt time.Time // when the position last went back: only a newer peer view counts for catching up
	// handedOff: this node handed the service to a caught-up peer and had
	// every record then: it stays synced until its position moves to the
	// new master's log (whose first records rewrite this volume), or for
	// good where that log continues this node's (JournalPosition.Continues).
	handedOff bool
	// awaitReset: this node released; its position is still its own
	// log's until the caller reports the reset (a lower position, or 0)
	// to the new master's log, and is not compared with the master's
	// until then.
	awaitReset bool
	// outdating: serving, and going on without the standby's journal
	// (Outdate{On}): heartbeats carry FlagOutdate. outdateSeq is the first
	// of them: only a peer heartbeat acknowledging it or a later one
	// shows the peer has seen the flag.
	outdating  bool
	outdateSeq uint64
	// journalFed: a journal layer reports positions (JournalPosition was
	// given at least once); without one, positions stay 0.
	journalFed bool

	alarms map[Alarm]bool
}

// New returns a Machine in StateAlone, not serving, at cfg.Epoch.
func New(cfg Config) (*Machine, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Machine{
		cfg:     cfg,
		t:       cfg.Timing,
		rank:    Rank(cfg.NodeID, cfg.PeerID),
		rng:     rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.NodeID))),
		epoch:   cfg.Epoch,
		seq:     cfg.Seq,
		healthy: true,
		alarms:  make(map[Alarm]bool),
	}, nil
}

// sentRing is how many of its own heartbeats a node remembers to match
// acks against: 32 at 100 ms spacing is 3.2 s, longer than any lease.
const sentRing = 32

type sentBeat struct {
	seq uint64
	at  time.Time
}

// sentAt is when this node sent the heartbeat with sequence seq, if it
// still remembers it.
func (m *Machine) sentAt(seq uint64) (time.Time, bool) {
	b := m.sent[seq%sentRing]
	return b.at, seq != 0 && b.seq == seq
}

// Config returns the configuration with defaults filled in.
func (m *Machine) Config() Config { return m.cfg }

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Serving reports whether this node holds the VIP and serves.
func (m *Machine) Serving() bool { return m.serving }

// Epoch returns the current epoch.
func (m *Machine) Epoch() uint64 { return m.epoch }

// Step feeds one event to the machine and returns the actions to execute,
// in order.
func (m *Machine) Step(ev Event) []Action {
	var out []Action
	switch e := ev.(type) {
	case Tick:
		m.onTick(e.Now)
	case Heartbeat:
		m.onHeartbeat(e, &out)
	case WitnessResult:
		if !m.started {
			return nil
		}
		m.witnessPending = false
		switch {
		case !e.Reachable:
			m.witnessDownAt = m.now
		case !m.witnessOK && !m.witnessDownAt.IsZero():
			m.witnessBackAt = m.now
		}
		m.witnessOK = e.Reachable
		m.witnessAt = m.now
		if m.serving {
			m.renewLease(&out, m.leaseTarget())
		}
	case ServiceHealth:
		if e.OK != m.healthy {
			m.forceSend = true
		}
		m.healthy = e.OK
		if !e.OK && m.serving {
			m.release(&out, m.releaseState(), "service health probe failed: "+e.Reason)
		}
	case JournalPosition:
		// A position in another log (its epoch changed) is a switch of
		// logs even when it reads higher: the poll may not have seen
		// the 0 in between (a node that released went on straight
		// from its own log's 25 to the new master's 28 and never
		// counted as following it).
		newLog := e.Epoch != m.logEpoch && (m.logEpoch != 0 || m.awaitReset)
		// A position in the log this node handed over with every
		// record, or in the new master's continuation of it, is no
		// resync: no description rewrites this volume, which stays a
		// copy (while it has not handed over, Continues means nothing).
		cont := m.handedOff && e.Continues
		if !m.serving && !cont && (e.Pos < m.journal || m.awaitReset && e.Pos == 0 || newLog) {
			// A resync (or, after a release, the switch to the new
			// master's log): not a copy until caught up again. Also
			// after a handover with every record: the new master's log
			// starts with a description of its volume, and applying it
			// changes this one before the whole of it is here (chaos
			// seed 89: the new master renamed a file right after the
			// handover; its description made the new name here empty,
			// its content to be fetched, and pruned the old name; the
			// new master was killed before the fetch, and this node
			// took over with the file empty).
			m.synced = false
			m.handedOff, m.awaitReset = false, false
			m.wentBackAt = m.now
		}
		m.journal, m.logEpoch = e.Pos, e.Epoch
		m.journalFed = true
	case Outdate:
		if e.On != m.outdating {
			m.outdating = e.On
			m.outdateSeq = m.seq + 1 // sent at once (forceSend)
			m.forceSend = true
		}
	case VIPHeld:
		if !m.serving {
			m.noCopy()
		}
	case Renew:
		if m.serving {
			m.setEpoch(&out, NextEpoch(max(m.epoch, m.peerMaxEpoch), m.rank))
			m.forceSend = true
		}
	case Promote:
		m.adminYield = false
		m.yieldUntil = time.Time{}
		if !m.serving && m.cfg.PeerID != 0 {
			m.request = true
			m.operatorPromote = true
			m.forcePromote = e.Force
			m.forceSend = true
		}
	case Demote:
		m.adminYield = true
		m.request = false
		m.operatorPromote = false
		m.forcePromote = false
		m.failbackPending = false
		m.forceSend = true
		if m.serving {
			m.release(&out, m.releaseState(), "demoted by operator")
		}
	case Failback:
		switch {
		case m.state == StatePrimarySlave:
			m.failbackPending = true
		case !m.serving && m.cfg.PeerID != 0 && m.cfg.Role == RolePrimary:
			m.adminYield = false
			m.yieldUntil = time.Time{}
			m.request = true
			m.forceSend = true
		}
	default:
		panic(fmt.Sprintf("heartbeat: unknown event %T", ev))
	}
	if m.started {
		m.reconcile(&out)
		m.maybeSend(&out)
		m.syncAlarms(&out)
	}
	return out
}

func (m *Machine) onTick(now time.Time) {
	if !m.started {
		m.started = true
		m.now = now
		m.startedAt = now
		m.nextSend = now
		return
	}
	if now.Before(m.now) {
		return
	}
	if c := StallCredit(now.Sub(m.now), m.t.Stall); c > 0 {
		// This process stalled: do not count the stall as the peer's
		// silence (its heartbeats may be queued, unread).
		for p := range m.lastHeard {
			if !m.lastHeard[p].IsZero() {
				m.lastHeard[p] = m.lastHeard[p].Add(c)
			}
		}
		m.startedAt = m.startedAt.Add(c)
		if !m.firstSeen.IsZero() {
			m.firstSeen = m.firstSeen.Add(c)
		}
		if m.witnessPending {
			m.witnessAsked = m.witnessAsked.Add(c)
		}
	}
	m.now = now
}

func (m *Machine) onHeartbeat(e Heartbeat, out *[]Action) {
	msg := e.Msg
	if !m.started || m.cfg.PeerID == 0 || msg.NodeID != m.cfg.PeerID || msg.ClusterID != m.cfg.ClusterID ||
		e.Path < 0 || e.Path >= m.cfg.Paths || !msg.State.Valid() {
		return
	}
	back := m.peerSeen && !m.peerAlive()
	m.lastHeard[e.Path] = m.now
	if !m.peerSeen {
		m.peerSeen = true
		m.firstSeen = m.now
	}
	if back && !m.serving {
		// The peer was dead to this node (a partition, a stall) and is
		// back: while it was away it may have gone on alone, with
		// changes this node has not got (chaos seed 46 of a loaded run:
		// a master committed a rename alone while this standby was
		// partitioned, died 2 s after the partition healed, and this
		// node, still counting itself synced, took over without it).
		// It is a copy again once caught up with the peer's position.
		m.noCopy()
	}
	if msg.Epoch > m.peerMaxEpoch {
		m.peerMaxEpoch = msg.Epoch
	}
	// The same heartbeat arrives once per path, and paths may reorder:
	// keep the newest as the peer's view.
	if m.peerAt.IsZero() || msg.Seq > m.peer.Seq || msg.Epoch > m.peer.Epoch {
		m.peer = msg
		m.peerAt = m.now
		m.peerLegacy = msg.Legacy
		if msg.State.Serving() && !m.serving {
			// Acknowledge at once: the serving peer's lease is anchored
			// at the send time of its newest heartbeat this node acked.
			m.forceSend = true
		}
	}
	if at, ok := m.sentAt(msg.Ack); ok && at.After(m.ackAt) {
		m.ackAt = at
		if m.serving {
			m.renewLease(out, m.ackAt.Add(m.t.Lease))
		}
	}
	if m.state == StateAlone {
		m.setState(out, StateSlave, "peer seen")
	}
	if m.serving && msg.State.Serving() {
		m.forceSend = true // both serve: tell the peer at once, the loser releases
	}
	if m.peer.State.Serving() {
		// The peer took the service: a yield has done its job.
		m.adminYield = false
		m.yieldUntil = time.Time{}
		if !m.serving {
			m.setEpoch(out, m.peer.Epoch) // follow the master's epoch
		}
	}
}

// releaseState is the state a node goes to when it stops serving.
func (m *Machine) releaseState() State {
	if m.cfg.PeerID == 0 {
		return StateAlone
	}
	return StateSlave
}

func (m *Machine) peerAlive() bool {
	for p := 0; p < m.cfg.Paths; p++ {
		if m.pathAlive(p) {
			return true
		}
	}
	return false
}

func (m *Machine) pathAlive(p int) bool {
	return !m.lastHeard[p].IsZero() && m.now.Sub(m.lastHeard[p]) <= m.t.Dead
}

func (m *Machine) lastHeardAny() time.Time {
	var t time.Time
	for p := 0; p < m.cfg.Paths; p++ {
		if m.lastHeard[p].After(t) {
			t = m.lastHeard[p]
		}
	}
	return t
}

// deathTime is when the peer was declared dead (or, never seen, when the
// wait for it began); a witness result must be at least this recent.
func (m *Machine) deathTime() time.Time {
	if !m.peerSeen {
		return m.startedAt
	}
	return m.lastHeardAny().Add(m.t.Dead)
}

// promoteAt is the earliest time a standby may promote with the peer dead:
// the peer's lease waited out, and, when the witness did not answer after
// the peer was last heard, the peer silent for Dead since the witness
// answered again (witnessBackAt).
func (m *Machine) promoteAt() time.Time {
	back := m.backFrom()
	if !m.peerSeen {
		return later(m.startedAt.Add(m.t.StartupWait), back)
	}
	if m.peerLegacy {
		// A version 1 master renews its lease at every heartbeat it sends
		// while it hears this node, up to Dead after the last one heard.
		return later(PromoteAt(m.lastHeardAny(), m.t.Dead, m.t.Lease), back)
	}
	return later(AckedPromoteAt(m.lastHeardAny(), m.t), back)
}

// backFrom is zero, or, when the witness did not answer after the peer was
// last heard (this node may have been cut off), Dead after it answered
// again: the earliest time the peer's silence means anything.
func (m *Machine) backFrom() time.Time {
	if m.witnessDownAt.IsZero() || !m.witnessDownAt.After(m.lastHeardAny()) {
		return time.Time{}
	}
	// Not answered since: the promotion waits for an answer anyway.
	return later(m.witnessBackAt, m.witnessDownAt).Add(m.t.Dead)
}

// probeFrom is the earliest time a witness result counts for a dead-peer
// promotion: the witness check also asks who holds the VIP, which means
// something only once the silent master's lease has run out.
func (m *Machine) probeFrom() time.Time {
	if !m.peerSeen || m.peerLegacy {
		return m.deathTime()
	}
	return LeaseEnd(m.lastHeardAny(), m.t)
}

func (m *Machine) yielding() bool {
	return m.adminYield || m.now.Before(m.yieldUntil)
}

// witnessFresh: a result obtained after since and within WitnessInterval.
func (m *Machine) witnessFresh(since time.Time) bool {
	return !m.witnessAt.IsZero() && !m.witnessAt.Before(since) && m.now.Sub(m.witnessAt) < m.t.WitnessInterval
}

// witnessStep expires an unanswered probe and asks for a new one when the
// last result is older than since or stale.
func (m *Machine) witnessStep(out *[]Action, since time.Time) {
	if m.witnessPending && m.now.Sub(m.witnessAsked) >= m.t.WitnessTimeout {
		// Unanswered: "unreachable", as of when the answer was due.
		m.witnessPending = false
		m.witnessOK = false
		m.witnessAt = m.witnessAsked.Add(m.t.WitnessTimeout)
		m.witnessDownAt = m.witnessAt
	}
	if !m.witnessPending && !m.witnessFresh(since) {
		m.witnessPending = true
		m.witnessAsked = m.now
		*out = append(*out, ProbeWitness{})
	}
}

// leaseTarget is how far a serving node may extend its lease now (zero:
// not at all): to now+Lease with no peer configured, when forced, while a
// version 1 peer is heard, or on a recent successful witness probe made
// after the peer died or stopped acknowledging (then the standby's own
// witness check finds this node answering for the VIP and stays
// standby); otherwise to the send time of the newest heartbeat the peer
// acknowledged plus Lease, a time the peer can bound by what it heard.
func (m *Machine) leaseTarget() time.Time {
	now := m.now.Add(m.t.Lease)
	switch {
	case m.cfg.PeerID == 0 || m.forced || m.peerLegacy && m.peerAlive():
		return now
	case m.witnessOK && !m.witnessAt.Before(m.witnessSince()) &&
		m.now.Sub(m.witnessAt) < m.t.WitnessInterval+m.t.WitnessTimeout:
		return now
	case !m.ackAt.IsZero():
		return m.ackAt.Add(m.t.Lease)
	}
	return time.Time{}
}

// acksStale: the serving node has had no ack for AckStale (counted from
// when it started serving if it never had one).
func (m *Machine) acksStale() bool {
	return m.now.Sub(later(m.ackAt, m.servedAt)) > m.t.AckStale()
}

// witnessSince is how recent a serving node's witness result must be to
// renew its lease: from the peer's death, or from when acks went stale.
func (m *Machine) witnessSince() time.Time {
	if !m.peerAlive() {
		return m.deathTime()
	}
	return later(m.ackAt, m.servedAt).Add(m.t.AckStale())
}

// renewLease extends the lease to until if that is later.
func (m *Machine) renewLease(out *[]Action, until time.Time) {
	if until.After(m.leaseUntil) {
		m.leaseUntil = until
		*out = append(*out, RenewLease{Until: until})
	}
}

func (m *Machine) reconcile(out *[]Action) {
	switch {
	case m.cfg.PeerID == 0:
		if !m.serving && m.healthy && !m.adminYield {
			m.serve(out, StateAlone, "no peer configured")
		}
	case m.serving:
		m.reconcileServing(out)
	default:
		m.reconcileStandby(out)
	}
}

func (m *Machine) reconcileServing(out *[]Action) {
	if !m.leaseUntil.IsZero() && !m.now.Before(m.leaseUntil) {
		m.release(out, StateSlave, "lease expired (stalled, or the peer stopped acknowledging and the witness did not answer)")
		return
	}
	if m.peerAlive() && !m.peerLegacy && m.acksStale() && !m.forced {
		// Heartbeats get through one way only, or are lost: keep the
		// lease through the witness until acks come back.
		m.witnessStep(out, m.witnessSince())
	}
	if !m.peerAlive() {
		m.caughtUpSince = time.Time{}
		if m.forced {
			return // the operator vouched that the peer is dead
		}
		death := m.deathTime()
		m.witnessStep(out, death)
		if !m.witnessOK && !m.witnessAt.IsZero() && !m.witnessAt.Before(death) {
			m.release(out, StateSlave, "lost the peer and the witness")
		}
		return
	}
	m.forced = false
	p := m.peer
	if p.State.Serving() {
		if m.peerWins() {
			m.release(out, StateSlave, fmt.Sprintf("peer serves at epoch %d, this node at %d", p.Epoch, m.epoch))
			m.setEpoch(out, p.Epoch)
		}
		return
	}
	if p.Epoch > m.epoch {
		// The peer once served above this epoch: stay, but above it, so
		// the peer follows and its applier accepts this node's journal.
		m.setEpoch(out, NextEpoch(max(m.epoch, m.peerMaxEpoch), m.rank))
		m.forceSend = true
	}
	if m.shouldHandOver() {
		m.release(out, StateSlave, "handover to peer")
		m.synced, m.handedOff = true, true // release cleared them
		m.yieldUntil = m.now.Add(m.t.Dead + m.t.Lease)
	}
}

// peerWins resolves both nodes serving: the higher epoch wins; on equal
// epochs (impossible unless persisted epochs were lost) the configured
// primary, then the lower node id.
func (m *Machine) peerWins() bool {
	p := m.peer
	if p.Epoch != m.epoch {
		return p.Epoch > m.epoch
	}
	peerPrimary, mePrimary := p.Flags&FlagPrimary != 0, m.cfg.Role == RolePrimary
	if peerPrimary != mePrimary {
		return peerPrimary
	}
	return p.NodeID < m.cfg.NodeID
}

// shouldHandOver: the peer is alive and not serving (checked by caller).
func (m *Machine) shouldHandOver() bool {
	p := m.peer
	// Caught up: at this node's position in this node's log. A position
	// says so only with FlagSynced (the peer follows this log; chaos seed
	// 29: a peer back from a freeze, still at a high position of its own
	// older log, was handed the service without this node's writes). A
	// version 1 peer sends no FlagSynced: its position is taken as is.
	inLog := p.Flags&FlagSynced != 0 || p.Legacy
	eligible := p.State == StateSlave && p.Flags&FlagYield == 0 && inLog && p.Journal >= m.journal
	if !eligible {
		m.caughtUpSince = time.Time{}
		return false
	}
	if p.Flags&FlagRequest != 0 {
		return true
	}
	if m.state != StatePrimarySlave || p.Flags&FlagPrimary == 0 {
		return false
	}
	if m.failbackPending {
		return true
	}
	if m.cfg.Failback != FailbackAuto {
		return false
	}
	if m.caughtUpSince.IsZero() {
		m.caughtUpSince = m.now
	}
	return m.now.Sub(m.caughtUpSince) >= m.t.FailbackDelay
}

func (m *Machine) reconcileStandby(out *[]Action) {
	if !m.healthy || m.yielding() {
		return
	}
	if m.peerAlive() {
		m.forcePromote = false
		p := m.peer
		sameLog := m.logEpoch == 0 && m.journal == 0 || m.logEpoch == p.Epoch
		outdated := p.State.Serving() && p.Flags&FlagOutdate != 0
		if outdated {
			// The master goes on without this node's journal: what it
			// acknowledges from now on is on it alone, so this node
			// must not take over when it dies (only Promote{Force}).
			m.noCopy()
		}
		if p.State.Serving() && !outdated && sameLog && m.journal >= p.Journal && !m.awaitReset && m.peerAt.After(m.wentBackAt) && !m.synced {
			m.synced = true
			m.forceSend = true
		}
		if p.State.Serving() && !m.now.Before(m.probeFrom()) {
			// The serving peer has been silent past its lease: ask the
			// witness now, so the answer is in by the time it is dead.
			m.witnessStep(out, m.probeFrom())
		}
		// Decide on a current view of the peer, newer than this node's
		// last release.
		if p.State.Serving() || !m.peerViewCurrent() || !m.preferred() {
			return
		}
		reason := "peer alive and not serving; this node is preferred"
		if p.Flags&FlagYield != 0 {
			reason = ReasonHandedOver
		}
		m.promote(out, reason)
		return
	}
	if m.forcePromote {
		m.promote(out, "forced by operator with the peer dead")
		m.forced = true
		return
	}
	if !m.peerSeen && m.epoch > 0 {
		// This node served in a pair before (a persisted epoch) and came
		// back without hearing its peer: it cannot tell whether the peer
		// served after it (chaos seeds 42, 66: a node back from a restart
		// took over from a master killed before they met, without the
		// master's acknowledged writes). It waits for the peer, or for
		// Promote{Force} (nasctl cluster takeover).
		return
	}
	if m.peerSeen && !m.synced && (m.peer.State.Serving() || !m.ownsEpoch()) {
		// The master died while this node was not a copy of its data
		// (resyncing after it rejoined): serving it would lose what the
		// master acknowledged. So did a peer that served the current
		// epoch and released before it died (chaos seed 9: it lost its
		// witness, demoted itself, then was cut off): what it
		// acknowledged while it served is on it alone. Only
		// Promote{Force} takes over now.
		return
	}
	// After a cut-off, the result must be one asked for once the peer
	// has been silent for Dead with the witness answering: its VIP probe
	// then ran while this node's network worked.
	from := later(m.probeFrom(), m.backFrom())
	if m.now.Before(from) {
		return
	}
	m.witnessStep(out, from)
	if !m.now.Before(m.promoteAt()) && m.witnessOK && m.witnessFresh(from) {
		reason := "peer dead, lease waited out, witness reachable"
		if !m.peerSeen {
			reason = "peer never seen, witness reachable"
		}
		m.promote(out, reason)
	}
}

// ownsEpoch: this node promoted into the current epoch (epochs are
// disjoint by rank), so it served last and no data is newer than its own.
// Epoch 0 is nobody's: nothing was served yet.
func (m *Machine) ownsEpoch() bool {
	return m.epoch == 0 || int(m.epoch%2) == m.rank&1
}

// peerViewCurrent: the peer's newest heartbeat acknowledges one this
// node sent since it last released, within Dead. A heartbeat that was
// queued while this node stalled acknowledges older ones and is not
// acted on (it may show the peer as a slave when it has since taken
// over). A version 1 peer sends no acks: its heartbeat must have arrived
// since the release.
func (m *Machine) peerViewCurrent() bool {
	if m.peerLegacy {
		return !m.peerAt.Before(m.releasedAt)
	}
	at, ok := m.sentAt(m.peer.Ack)
	return ok && !at.Before(m.releasedAt) && m.now.Sub(at) <= m.t.Dead
}

// preferred decides, with both nodes alive and neither serving, whether
// this node should promote. Both nodes evaluate the mirror of the same
// comparison, so exactly one is preferred.
func (m *Machine) preferred() bool {
	p := m.peer
	if p.Flags&FlagYield != 0 {
		// Take over a yielded role once every record the peer wrote has
		// been applied here (its shipper keeps shipping after it released),
		// unless the operator asked for this node regardless. Positions
		// compare only within the peer's log: one in another log (this
		// node's own, before it released) says nothing.
		inLog := m.logEpoch == p.Epoch || p.Journal == 0 || p.Legacy
		return inLog && m.journal >= p.Journal || m.operatorPromote
	}
	if peerReq := p.Flags&FlagRequest != 0; m.request != peerReq {
		return m.request
	}
	if p.Epoch != m.epoch {
		return m.epoch > p.Epoch
	}
	if m.epoch > 0 {
		// The node that promoted into this epoch (epochs are disjoint by
		// rank) served last: its data is the newest, whatever the other
		// applied of it. Its journal position may even read lower, just
		// restarted and not yet in a log (chaos seed 8: a master back
		// from a restart lost to a standby that had not caught up).
		return m.ownsEpoch()
	}
	if p.Journal != m.journal {
		return m.journal > p.Journal
	}
	peerPrimary, mePrimary := p.Flags&FlagPrimary != 0, m.cfg.Role == RolePrimary
	if peerPrimary != mePrimary {
		return mePrimary
	}
	return m.cfg.NodeID < p.NodeID
}

func (m *Machine) promote(out *[]Action, reason string) {
	m.setEpoch(out, NextEpoch(max(m.epoch, m.peerMaxEpoch), m.rank))
	to := StateMaster
	if m.cfg.Role == RoleStandby {
		to = StatePrimarySlave
	}
	m.serve(out, to, reason)
}

func (m *Machine) serve(out *[]Action, to State, reason string) {
	m.serving = true
	m.servedAt = m.now
	if m.journalFed {
		// The journal layer starts this term's log now; until it
		// reports a position in it, none is known (chaos seed 47 of a
		// loaded run: a node just promoted still announced its standby
		// position 0, and a standby with no position counted as caught
		// up with it, then took over without the writes on it).
		m.journal, m.logEpoch = JournalUnknown, m.epoch
	}
	m.setState(out, to, reason)
	m.leaseUntil = m.now.Add(m.t.Lease)
	*out = append(*out, AddVIP{}, GratuitousARP{}, StartServices{}, RenewLease{Until: m.leaseUntil})
	m.request = false
	m.operatorPromote = false
	m.forcePromote = false
	m.failbackPending = false
	m.caughtUpSince = time.Time{}
	m.adminYield = false
	m.yieldUntil = time.Time{}
	m.forceSend = true
}

// release gives up the service: the VIP goes first.
func (m *Machine) release(out *[]Action, to State, reason string) {
	*out = append(*out, RemoveVIP{}, StopServices{})
	m.serving = false
	m.forced = false
	m.leaseUntil = time.Time{}
	m.releasedAt = m.now
	m.synced, m.handedOff, m.awaitReset = false, false, true
	m.outdating = false // a new term's journal layer asks again
	m.failbackPending = false
	m.caughtUpSince = time.Time{}
	m.setState(out, to, reason)
	m.forceSend = true
}

func (m *Machine) setState(out *[]Action, to State, reason string) {
	if to == m.state {
		return
	}
	*out = append(*out, StateChanged{From: m.state, To: to, Reason: reason})
	m.state = to
	m.forceSend = true
}

// setEpoch moves the epoch up, never down.
func (m *Machine) setEpoch(out *[]Action, e uint64) {
	if e > m.epoch {
		m.epoch = e
		*out = append(*out, EpochChanged{Epoch: e})
	}
}

func (m *Machine) flags() Flags {
	var f Flags
	if m.cfg.Role == RolePrimary {
		f |= FlagPrimary
	}
	if m.yielding() {
		f |= FlagYield
	}
	if m.request {
		f |= FlagRequest
	}
	if m.synced && !m.serving {
		f |= FlagSynced
	}
	if m.outdating && m.serving {
		f |= FlagOutdate
	}
	return f
}

// noCopy: this node, not serving, may lack changes the serving peer made
// (outdated, VIPHeld, the peer back from the dead): it is no copy of its
// data until it has caught up with the peer's position again, and tells
// the peer at once.
func (m *Machine) noCopy() {
	if !m.synced && !m.handedOff {
		return
	}
	m.synced, m.handedOff = false, false
	m.wentBackAt = m.now
	m.forceSend = true
}

// peerOutdated: this node serves and sends FlagOutdate, and the peer's
// newest heartbeat acknowledges one of those and does not claim to be
// synced. A version 1 peer cannot be outdated.
func (m *Machine) peerOutdated() bool {
	if !m.serving || !m.outdating || m.peerLegacy {
		return false
	}
	return m.peer.Ack >= m.outdateSeq && m.peer.Flags&FlagSynced == 0
}

// maybeSend sends a heartbeat when one is due (or something changed) and
// renews the lease with it.
func (m *Machine) maybeSend(out *[]Action) {
	if !m.forceSend && m.now.Before(m.nextSend) {
		return
	}
	m.forceSend = false
	m.nextSend = m.now.Add(Jittered(m.t.Interval, m.t.Jitter, m.rng.Float64()))
	if m.serving {
		m.renewLease(out, m.leaseTarget())
	}
	if m.cfg.PeerID == 0 || !m.healthy {
		return // nobody to tell, or silent so the peer takes over
	}
	m.seq++
	m.sent[m.seq%sentRing] = sentBeat{seq: m.seq, at: m.now}
	var ack uint64
	if m.peerAlive() {
		ack = m.peer.Seq
	}
	*out = append(*out, Send{Msg: Msg{
		ClusterID: m.cfg.ClusterID,
		NodeID:    m.cfg.NodeID,
		State:     m.state,
		Flags:     m.flags(),
		Epoch:     m.epoch,
		Seq:       m.seq,
		Journal:   m.journal,
		Time:      m.now.UnixNano(),
		Ack:       ack,
	}})
}

func (m *Machine) wantAlarms() map[Alarm]bool {
	want := make(map[Alarm]bool)
	if !m.healthy {
		want[Alarm{Kind: AlarmServiceFailed}] = true
	}
	if m.cfg.PeerID == 0 {
		return want
	}
	if !m.peerAlive() {
		if m.peerSeen {
			want[Alarm{Kind: AlarmPeerDown}] = true
		}
		since := m.probeFrom()
		if m.serving {
			since = m.witnessSince()
		}
		if !m.witnessOK && !m.witnessAt.IsZero() && !m.witnessAt.Before(since) {
			want[Alarm{Kind: AlarmWitnessUnreachable}] = true
		}
		return want
	}
	for p := 0; p < m.cfg.Paths; p++ {
		// A path never heard counts as silent since the peer was first seen.
		if m.now.Sub(later(m.lastHeard[p], m.firstSeen)) > m.t.Dead {
			want[Alarm{Kind: AlarmPathDown, Path: p}] = true
		}
	}
	if m.serving && m.peer.State.Serving() {
		want[Alarm{Kind: AlarmSplitBrain}] = true
	}
	return want
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func compareAlarms(a, b Alarm) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Path, b.Path))
}

func (m *Machine) syncAlarms(out *[]Action) {
	want := m.wantAlarms()
	var clear, raise []Alarm
	for a := range m.alarms {
		if !want[a] {
			clear = append(clear, a)
		}
	}
	for a := range want {
		if !m.alarms[a] {
			raise = append(raise, a)
		}
	}
	slices.SortFunc(clear, compareAlarms)
	slices.SortFunc(raise, compareAlarms)
	for _, a := range clear {
		delete(m.alarms, a)
		*out = append(*out, ClearAlarm{Alarm: a})
	}
	for _, a := range raise {
		m.alarms[a] = true
		*out = append(*out, a)
	}
}

// Status is a snapshot of the machine for status displays and tests.
type Status struct {
	State      State
	Serving    bool
	Epoch      uint64
	Seq        uint64 // last sequence sent
	Journal    uint64
	Healthy    bool
	Yielding   bool // will not promote (Demote, or a handover in progress)
	AdminYield bool // Demote given and not yet undone
	Requesting bool // asking the serving peer for the service
	Synced     bool // not serving, and a copy of the serving peer's data (may promote when it dies)
	Outdating  bool // serving, and telling the peer it is no copy (Outdate)
	// PeerOutdated: Outdating, and the peer has acknowledged it: it is
	// no copy and will not take over by itself.
	PeerOutdated bool
	LeaseUntil   time.Time

	PeerSeen  bool
	PeerAlive bool
	PathAlive []bool
	PathHeard []time.Time // per path, the last authenticated heartbeat (zero if none)
	Peer      Msg         // the peer's newest heartbeat
	PeerAt    time.Time

	WitnessKnown     bool // a witness result exists
	WitnessReachable bool
	WitnessAt        time.Time
	Now              time.Time // the machine's clock at the last Tick

	Alarms []Alarm // sorted
}

// Status returns a snapshot.
func (m *Machine) Status() Status {
	s := Status{
		State:            m.state,
		Serving:          m.serving,
		Epoch:            m.epoch,
		Seq:              m.seq,
		Journal:          m.journal,
		Healthy:          m.healthy,
		Yielding:         m.yielding(),
		AdminYield:       m.adminYield,
		Requesting:       m.request,
		Synced:           m.synced && !m.serving,
		Outdating:        m.outdating && m.serving,
		PeerOutdated:     m.peerOutdated(),
		LeaseUntil:       m.leaseUntil,
		PeerSeen:         m.peerSeen,
		PeerAlive:        m.peerAlive(),
		PathAlive:        make([]bool, m.cfg.Paths),
		PathHeard:        slices.Clone(m.lastHeard[:m.cfg.Paths]),
		Peer:             m.peer,
		PeerAt:           m.peerAt,
		WitnessKnown:     !m.witnessAt.IsZero(),
		WitnessReachable: m.witnessOK,
		WitnessAt:        m.witnessAt,
		Now:              m.now,
	}
	for p := range s.PathAlive {
		s.PathAlive[p] = m.pathAlive(p)
	}
	for a := range m.alarms {
		s.Alarms = append(s.Alarms, a)
	}
	slices.SortFunc(s.Alarms, compareAlarms)
	return s
}
