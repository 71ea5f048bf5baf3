package heartbeat

import (
	"testing"
	"time"
)

// renewals returns the RenewLease actions in acts.
func renewals(acts []Action) []time.Time {
	var out []time.Time
	for _, a := range acts {
		if r, ok := a.(RenewLease); ok {
			out = append(out, r.Until)
		}
	}
	return out
}

// TestLeaseAnchoredAtAck: a serving node renews its lease to the send
// time of the newest heartbeat its peer acknowledged plus Lease, not to
// now+Lease; an ack of a sequence it never sent renews nothing.
func TestLeaseAnchoredAtAck(t *testing.T) {
	h := newTM(t, nil)
	asMaster(h)
	h.run(300*time.Millisecond, nil)
	sent := h.lastSent()
	sentAt := time.Unix(0, sent.Time)
	h.run(100*time.Millisecond, nil) // the ack arrives later
	h.peer.Seq++
	h.peer.Ack = sent.Seq
	acts := h.step(Heartbeat{Path: 0, Msg: h.peer})
	want := sentAt.Add(dflt.Lease)
	if got := renewals(acts); len(got) != 1 || !got[0].Equal(want) {
		t.Fatalf("renewals %v, want one to %v (sent at + Lease)", got, want)
	}
	// A copy on the other path, and an ack of an unknown sequence, renew
	// nothing.
	acts = h.step(Heartbeat{Path: 1, Msg: h.peer})
	h.peer.Seq++
	h.peer.Ack = sent.Seq + 1000
	acts = append(acts, h.step(Heartbeat{Path: 0, Msg: h.peer})...)
	if got := renewals(acts); len(got) != 0 {
		t.Fatalf("renewed %v on a duplicate or an unknown ack", got)
	}
	if s := h.m.Status(); !s.LeaseUntil.Equal(want) {
		t.Fatalf("lease %v, want %v", s.LeaseUntil, want)
	}
}

// TestStandbyAcksAtOnce: a standby answers each new heartbeat of a
// serving peer at once, acknowledging it, and only once per heartbeat
// although it arrives on both paths.
func TestStandbyAcksAtOnce(t *testing.T) {
	h := newTM(t, standby)
	asSlaveOf(h, StateMaster, 2)
	h.run(time.Second, both)
	n := len(h.sent)
	h.tick(time.Millisecond)
	acts := h.hear(0, 1)
	if got := countOf[Send](acts); got != 1 {
		t.Fatalf("%d sends on one heartbeat over two paths, want 1: %q", got, descs(acts))
	}
	if ack := h.sent[n].Ack; ack != h.peer.Seq {
		t.Fatalf("ack %d, want the peer's sequence %d", ack, h.peer.Seq)
	}
	// A peer that does not serve is not answered at once.
	h.peer.State = StateSlave
	h.tick(time.Millisecond)
	if acts := h.hear(0, 1); countOf[Send](acts) != 0 {
		t.Fatalf("answered a slave peer at once: %q", descs(acts))
	}
}

// TestStandbyPromotionBound: the standby promotes on the first tick after
// Dead when the master acks (its lease is bounded by last heard + Lease +
// Stall, under Dead), and after Dead+Lease with a version 1 master, which
// renews its lease while it hears the standby.
func TestStandbyPromotionBound(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		h := newTM(t, standby)
		h.peer.Legacy = legacy
		h.witness = ptr(true)
		asSlaveOf(h, StateMaster, 2)
		h.run(time.Second, both)
		last := h.m.Status().PeerAt
		var probed time.Time
		_, ok := h.runUntil(5*time.Second, quiet, func(a []Action) bool {
			if has(a, "ProbeWitness") && probed.IsZero() {
				probed = h.now
			}
			return has(a, "AddVIP")
		})
		if !ok {
			t.Fatalf("legacy %v: never promoted", legacy)
		}
		want, from := AckedPromoteAt(last, dflt), LeaseEnd(last, dflt)
		if legacy {
			want, from = PromoteAt(last, dflt.Dead, dflt.Lease), last.Add(dflt.Dead)
		}
		if d := h.now.Sub(want); d < 0 || d > tick {
			t.Fatalf("legacy %v: promoted %v after the last heartbeat, want %v", legacy, h.now.Sub(last), want.Sub(last))
		}
		// The witness (and VIP) probe goes out once the master's lease
		// is over, not before, and before the peer is dead when it can.
		if d := probed.Sub(from); d < 0 || d > tick {
			t.Fatalf("legacy %v: probed %v after the last heartbeat, want %v", legacy, probed.Sub(last), from.Sub(last))
		}
	}
}

// TestLegacyPeerRenewsAtSend: with a version 1 peer (no acks) the master
// renews its lease at each heartbeat it sends while it hears the peer, as
// version 1 did, and does not ask the witness.
func TestLegacyPeerRenewsAtSend(t *testing.T) {
	h := newTM(t, nil)
	h.peer.Legacy = true
	asMaster(h)
	acts := h.run(2*time.Second, both)
	wantNot(t, acts, "ProbeWitness", "RemoveVIP")
	if s := h.m.Status(); s.LeaseUntil.Before(h.now.Add(dflt.Lease - dflt.Interval - dflt.Jitter)) {
		t.Fatalf("lease %v after now, want about Lease", s.LeaseUntil.Sub(h.now))
	}
}

// TestStaleAcksKeptByWitness: the peer's heartbeats still arrive but
// acknowledge nothing new (the other direction is cut). The master asks
// the witness once acks are AckStale old and keeps its lease while it
// answers; without an answer the lease runs out and the master releases.
func TestStaleAcksKeptByWitness(t *testing.T) {
	for _, reachable := range []bool{true, false} {
		h := newTM(t, nil)
		h.witness = ptr(true)
		asMaster(h)
		h.run(time.Second, both)
		*h.witness = reachable
		h.staleAcks = true
		var probed time.Time
		acts, _ := h.runUntil(3*time.Second, both, func(a []Action) bool {
			if has(a, "ProbeWitness") && probed.IsZero() {
				probed = h.now
			}
			return false
		})
		if probed.IsZero() {
			t.Fatalf("reachable %v: no witness probe with stale acks", reachable)
		}
		if reachable {
			wantNot(t, acts, "RemoveVIP")
			continue
		}
		wantHas(t, acts, "RemoveVIP")
	}
}

// TestUnsyncedStandbyDoesNotPromote: a standby whose journal position went
// back (a resync from the master's new log) and has not caught up with
// the serving master's position is no copy of its data: when the master
// dies it stays standby (Promote{Force} still takes over). Once caught up
// it is synced, says so in its heartbeats, and takes over.
func TestUnsyncedStandbyDoesNotPromote(t *testing.T) {
	for _, caughtUp := range []bool{false, true} {
		h := newTM(t, standby)
		h.witness = ptr(true)
		h.peer.Journal = 500
		h.step(JournalPosition{Pos: 500, Epoch: 2})
		asSlaveOf(h, StateMaster, 2)
		h.run(300*time.Millisecond, both)
		if !h.m.Status().Synced || h.lastSent().Flags&FlagSynced == 0 {
			t.Fatalf("caught up at 500 of 500 but not synced: %+v", h.m.Status())
		}
		h.step(JournalPosition{Pos: 0, Epoch: 2}) // the resync
		h.peer.Journal = 700
		if caughtUp {
			h.step(JournalPosition{Pos: 700, Epoch: 2})
		} else {
			h.step(JournalPosition{Pos: 650, Epoch: 2})
		}
		h.run(300*time.Millisecond, both)
		if got := h.m.Status().Synced; got != caughtUp {
			t.Fatalf("caught up %v: synced %v", caughtUp, got)
		}
		if got := h.lastSent().Flags&FlagSynced != 0; got != caughtUp {
			t.Fatalf("caught up %v: heartbeat says synced %v", caughtUp, got)
		}
		acts := h.run(5*time.Second, quiet)
		if caughtUp {
			wantHas(t, acts, "AddVIP")
			continue
		}
		wantNot(t, acts, "AddVIP")
		h.step(Promote{Force: true})
		if !h.m.Serving() {
			t.Fatal("Promote{Force} did not take over on an unsynced standby")
		}
	}
}

// handedOver is a serving primary at journal position 40 that has just
// failed back to its caught-up peer (it released the VIP).
func handedOver(t *testing.T) *tm {
	t.Helper()
	h := newTM(t, standby)
	asPrimarySlave(h)
	h.step(JournalPosition{Pos: 40})
	h.peer.Journal = 40
	h.run(time.Second, both)
	wantHas(t, h.step(Failback{}), "RemoveVIP")
	return h
}

// TestHandedOffResyncs: a node that handed the service to a caught-up
// peer had every record then, but the new master's log starts with a
// description of its volume, and applying it rewrites this one before all
// of it is here (chaos seed 89). So once its position is in the new log
// it is no copy until caught up: it does not take over if the new master
// dies meanwhile (only Promote{Force} does), and does once caught up.
func TestHandedOffResyncs(t *testing.T) {
	h := handedOver(t)
	if s := h.m.Status(); !s.Synced {
		t.Fatalf("a node that handed over with every record is not synced: %+v", s)
	}
	h.peer.State, h.peer.Epoch, h.peer.Journal = StateMaster, 2, 60
	h.step(JournalPosition{Pos: 0}) // following the new master's log
	h.run(time.Second, both)
	h.step(JournalPosition{Pos: 20, Epoch: 2})
	h.run(300*time.Millisecond, both)
	if s := h.m.Status(); s.Synced {
		t.Fatalf("synced while applying the new master's description: %+v", s)
	}
	h.witness = ptr(true)
	wantNot(t, h.run(5*time.Second, quiet), "AddVIP")

	// The new master back; this node catches up, then it dies.
	h.step(JournalPosition{Pos: 60, Epoch: 2})
	h.run(time.Second, both)
	if s := h.m.Status(); !s.Synced {
		t.Fatalf("caught up with the new master and not synced: %+v", s)
	}
	if _, ok := h.runUntil(5*time.Second, quiet, func(a []Action) bool { return has(a, "AddVIP") }); !ok {
		t.Fatal("no takeover when the new master died after this node caught up")
	}
}

// TestHandedOffContinues: a node that handed the service over with every
// record, whose position goes on in the new master's continuation of its
// log (JournalPosition.Continues: no description rewrites its volume),
// stays a copy through the switch: it takes over at once if the new
// master dies, before it has caught up with it. A position without
// Continues (the continuation refused: a resync) ends that.
func TestHandedOffContinues(t *testing.T) {
	for _, resync := range []bool{false, true} {
		h := handedOver(t)
		h.step(JournalPosition{Pos: 40, Continues: true}) // its own log, handed off
		h.run(time.Second, both)
		h.peer.State, h.peer.Epoch, h.peer.Journal = StateMaster, 2, 60
		h.step(JournalPosition{Pos: 45, Epoch: 2, Continues: !resync})
		h.run(300*time.Millisecond, both)
		if s := h.m.Status(); s.Synced == resync || (h.lastSent().Flags&FlagSynced != 0) == resync {
			t.Fatalf("resync %v: following at 45 of 60: synced %v, heartbeat flags %v", resync, s.Synced, h.lastSent().Flags)
		}
		h.witness = ptr(true)
		_, took := h.runUntil(5*time.Second, quiet, func(a []Action) bool { return has(a, "AddVIP") })
		if took == resync {
			t.Fatalf("resync %v: took over when the new master died: %v", resync, took)
		}
	}
}

// TestEpochOwnerPreferred: both nodes alive, neither serving, in the same
// epoch: the node that promoted into it (epoch 3 is rank 1's, node 2's)
// served last and is preferred, even when the other's journal position
// reads higher (the last master just restarted: its position is 0 until
// it is in a log again).
func TestEpochOwnerPreferred(t *testing.T) {
	h := newTM(t, func(c *Config) { c.Epoch = 3 })
	h.tick(0)
	h.step(JournalPosition{Pos: 900})
	h.peer.State, h.peer.Epoch, h.peer.Journal = StateSlave, 3, 0
	acts := h.run(2*time.Second, both)
	wantNot(t, acts, "AddVIP")
	// The mirror: node 2 (rank 1) owns epoch 3 and promotes.
	h2 := newTM(t, func(c *Config) { c.NodeID, c.PeerID, c.Epoch = 2, 1, 3 })
	h2.tick(0)
	h2.peer.State, h2.peer.Epoch, h2.peer.Journal = StateSlave, 3, 900
	h2.peer.Flags = FlagPrimary
	wantHas(t, h2.run(2*time.Second, both), "AddVIP")
}

// TestCaughtUpOnlyInTheMastersLog: a standby's position in an older log
// (epoch 5) says nothing about the master's current one (epoch 7, just
// promoted again with a short new log): however high, it is not caught
// up until it is a position in the epoch 7 log.
func TestCaughtUpOnlyInTheMastersLog(t *testing.T) {
	h := newTM(t, standby)
	h.peer.Journal = 10
	h.step(JournalPosition{Pos: 5000, Epoch: 5})
	asSlaveOf(h, StateMaster, 7)
	h.run(time.Second, both)
	if h.m.Status().Synced {
		t.Fatal("synced with a position in another log")
	}
	h.step(JournalPosition{Pos: 10, Epoch: 7})
	h.run(300*time.Millisecond, both)
	if !h.m.Status().Synced {
		t.Fatal("not synced at the master's position in its log")
	}
}

// TestRestartedNodeWaitsForPeer: a node that comes back into an epoch (it
// served in the pair before) without hearing its peer does not take over
// on its own, witness or not: the peer may have served after it. The
// operator's Promote{Force} does.
func TestRestartedNodeWaitsForPeer(t *testing.T) {
	h := newTM(t, func(c *Config) { c.Epoch = 4 })
	h.witness = ptr(true)
	h.tick(0)
	wantNot(t, h.run(10*time.Second, quiet), "AddVIP")
	h.step(Promote{Force: true})
	if !h.m.Serving() {
		t.Fatal("Promote{Force} did not take over")
	}
}

// TestUnsyncedAfterPeerReleased: the peer served the current epoch and
// this node never caught up with it; the peer then released (it lost its
// witness) and was cut off. What it acknowledged while it served is on it
// alone, so this node does not take over when it goes silent, although
// its last view of the peer is a slave (chaos seed 9). Had this node
// caught up before the release, it would.
func TestUnsyncedAfterPeerReleased(t *testing.T) {
	for _, caughtUp := range []bool{false, true} {
		h := newTM(t, standby) // node 2: rank 1, epoch 2 is the peer's
		h.witness = ptr(true)
		h.step(JournalPosition{Pos: 5000, Epoch: 1}) // a position in an older log
		h.peer.Journal = 300
		asSlaveOf(h, StateMaster, 2)
		if caughtUp {
			h.step(JournalPosition{Pos: 300, Epoch: 2})
		}
		h.run(time.Second, both)
		if got := h.m.Status().Synced; got != caughtUp {
			t.Fatalf("caught up %v: synced %v", caughtUp, got)
		}
		h.peer.State = StateSlave // released: lost its witness
		h.run(500*time.Millisecond, both)
		acts := h.run(5*time.Second, quiet)
		if caughtUp {
			wantHas(t, acts, "AddVIP")
			continue
		}
		wantNot(t, acts, "AddVIP")
		h.step(Promote{Force: true})
		if !h.m.Serving() {
			t.Fatal("Promote{Force} did not take over")
		}
	}
}

// TestPositionsCompareInOneLog: journal positions of two logs say nothing
// of each other (chaos seed 29: a master back from a freeze, still at a
// high position of its own older log, was handed the service by the node
// that served meanwhile, without that node's writes). The serving node
// hands over only to a peer that says it follows its log (FlagSynced);
// a node takes a yielded role only at a position in the yielder's log.
func TestPositionsCompareInOneLog(t *testing.T) {
	// The serving side.
	h := newTM(t, standby)
	asPrimarySlave(h)
	h.step(JournalPosition{Pos: 1229, Epoch: 1})
	h.peer.Flags &^= FlagSynced
	h.peer.Journal = 2553 // the primary's own old log
	h.step(Failback{})
	wantNot(t, h.run(2*time.Second, both), "RemoveVIP")
	h.peer.Flags |= FlagSynced
	h.peer.Journal = 1229
	wantHas(t, h.run(time.Second, both), "RemoveVIP")

	// The taking side: node 1 served epoch 2 (its log ends at 1629),
	// node 2 served epoch 3 meanwhile and yields at 1229 of its log.
	h = newTM(t, func(c *Config) { c.Epoch = 2 })
	h.tick(0)
	h.step(JournalPosition{Pos: 1629, Epoch: 2})
	h.peer.State, h.peer.Epoch, h.peer.Journal, h.peer.Flags = StatePrimarySlave, 3, 1229, 0
	h.run(500*time.Millisecond, both)
	h.wantState(StateSlave, false, 3)
	h.peer.State, h.peer.Flags = StateSlave, FlagYield
	wantNot(t, h.run(time.Second, both), "AddVIP")
	acts := h.step(JournalPosition{Pos: 0, Epoch: 3}) // following its log now
	acts = append(acts, h.step(JournalPosition{Pos: 1229, Epoch: 3})...)
	wantHas(t, append(acts, h.run(time.Second, both)...), "AddVIP")
}

// TestNotSyncedWithAnUndescribedLog: a master whose new log does not yet
// describe its volume announces JournalUnknown; a standby at position 0
// (chaos seed 9: the master had just restarted, its log still empty) is
// no copy of it and does not take over when it dies.
func TestNotSyncedWithAnUndescribedLog(t *testing.T) {
	h := newTM(t, standby) // node 2; epoch 2 is the peer's
	h.witness = ptr(true)
	h.peer.Journal = JournalUnknown
	asSlaveOf(h, StatePrimarySlave, 2)
	h.step(JournalPosition{Pos: 0})
	h.run(time.Second, both)
	if h.m.Status().Synced {
		t.Fatal("synced with a master whose log describes nothing yet")
	}
	wantNot(t, h.run(5*time.Second, quiet), "AddVIP")
	// Once described and followed, it is.
	h = newTM(t, standby)
	h.witness = ptr(true)
	h.peer.Journal = 12
	asSlaveOf(h, StatePrimarySlave, 2)
	h.step(JournalPosition{Pos: 12, Epoch: 2})
	h.run(time.Second, both)
	if !h.m.Status().Synced {
		t.Fatal("not synced at the master's position")
	}
}

// TestSyncedAfterLogSwitchWithoutZero: a master that released follows the
// new master's log; its position may go from its own log's 25 straight to
// the new log's 28 (the 0 in between was not polled). The epoch says it
// is another log: once caught up there it is synced.
func TestSyncedAfterLogSwitchWithoutZero(t *testing.T) {
	h := newTM(t, nil)
	asMaster(h)
	h.step(JournalPosition{Pos: 25, Epoch: 2})
	h.peer.State, h.peer.Epoch, h.peer.Journal = StatePrimarySlave, 3, 28
	h.run(500*time.Millisecond, both)
	h.wantState(StateSlave, false, 3)
	h.step(JournalPosition{Pos: 28, Epoch: 3})
	h.run(500*time.Millisecond, both)
	if !h.m.Status().Synced {
		t.Fatalf("not synced at the new master's position in its log: %+v", h.m.Status())
	}
}
