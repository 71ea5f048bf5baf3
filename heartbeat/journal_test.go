package heartbeat

import (
	"testing"
	"time"
)

// A master that goes on without its standby's journal outdates the
// standby first: the standby stops counting itself a copy, so it does not
// take over when the master then dies (what the master acknowledged alone
// would be lost), and counts again once it has caught up with the log.
func TestOutdatedStandbyDoesNotTakeOver(t *testing.T) {
	h := newTM(t, standby)
	h.witness = ptr(true)
	asSlaveOf(h, StateMaster, 2)
	if !h.m.Status().Synced || h.lastSent().Flags&FlagSynced == 0 {
		t.Fatalf("a slave at position 0 of an empty log is not synced: %+v", h.m.Status())
	}

	// The master's journal to this node broke; it outdates the node.
	h.peer.Flags |= FlagOutdate
	h.peer.Journal = 40
	acts := h.hear()
	if h.m.Status().Synced {
		t.Fatal("still synced after the master's FlagOutdate")
	}
	if s := h.lastSent(); s.Flags&FlagSynced != 0 {
		t.Fatalf("the answer to FlagOutdate still says synced: %v (%q)", s.Flags, descs(acts))
	}

	// Caught up, but the master still outdates: no copy.
	h.step(JournalPosition{Pos: 40, Epoch: 2})
	h.run(300*time.Millisecond, both)
	if h.m.Status().Synced {
		t.Fatal("synced again while the master sends FlagOutdate")
	}

	// The master dies: this node does not take over by itself.
	acts = h.run(5*time.Second, quiet)
	wantNot(t, acts, "AddVIP")
	h.wantState(StateSlave, false, 2)

	// Promote{Force} still does.
	acts = h.step(Promote{Force: true})
	wantHas(t, acts, "AddVIP", "StartServices")
}

func TestOutdateLiftedAfterCatchingUp(t *testing.T) {
	h := newTM(t, standby)
	asSlaveOf(h, StateMaster, 2)
	h.peer.Flags |= FlagOutdate
	h.peer.Journal = 40
	h.hear()
	if h.m.Status().Synced {
		t.Fatal("synced under FlagOutdate")
	}
	// The journal reconnects; the master stops outdating; this node
	// applies the log up to the master's position.
	h.peer.Flags &^= FlagOutdate
	h.run(300*time.Millisecond, both)
	if h.m.Status().Synced {
		t.Fatal("synced while behind the master's position")
	}
	h.step(JournalPosition{Pos: 40, Epoch: 2})
	h.run(300*time.Millisecond, both)
	if !h.m.Status().Synced || h.lastSent().Flags&FlagSynced == 0 {
		t.Fatal("not synced after catching up with the master's log")
	}
}

// The master sends FlagOutdate while asked to, and reports the peer
// outdated only on a heartbeat that acknowledges one of those and does
// not say synced.
func TestMasterOutdatesPeer(t *testing.T) {
	h := newTM(t, nil)
	asMaster(h)
	h.peer.Flags |= FlagSynced
	h.hear()
	if h.m.Status().PeerOutdated || h.m.Status().Outdating {
		t.Fatal("outdating before Outdate")
	}

	h.step(Outdate{On: true})
	sent := h.lastSent()
	if sent.Flags&FlagOutdate == 0 {
		t.Fatalf("heartbeat after Outdate lacks FlagOutdate: %v", sent.Flags)
	}
	if !h.m.Status().Outdating {
		t.Fatal("status does not say outdating")
	}

	// The peer's next heartbeat acks it but still says synced (it was
	// sent before the peer handled the flag): not outdated yet.
	h.hear()
	if h.m.Status().PeerOutdated {
		t.Fatal("peer outdated while it says synced")
	}
	// A heartbeat without FlagSynced that acks only a heartbeat sent
	// before Outdate proves nothing.
	h.peer.Flags &^= FlagSynced
	h.staleAcks = true
	h.peer.Ack = sent.Seq - 1
	h.hear()
	if h.m.Status().PeerOutdated {
		t.Fatal("peer outdated on a heartbeat acking one sent before Outdate")
	}
	h.staleAcks = false
	h.hear()
	if !h.m.Status().PeerOutdated {
		t.Fatalf("peer not outdated: %+v", h.m.Status().Peer)
	}

	// Off: no flag, no outdated peer.
	h.step(Outdate{On: false})
	if h.lastSent().Flags&FlagOutdate != 0 || h.m.Status().PeerOutdated {
		t.Fatal("still outdating after Outdate{On: false}")
	}

	// A release ends it too: serving again starts without the flag.
	h.step(Outdate{On: true})
	h.step(Demote{})
	if h.m.Status().Outdating || h.m.Status().PeerOutdated {
		t.Fatal("outdating after the release")
	}
	h.step(Promote{})
	h.peer.State = StateSlave
	h.run(time.Second, both)
	if h.m.Status().Serving && h.lastSent().Flags&FlagOutdate != 0 {
		t.Fatal("a new term sends FlagOutdate unasked")
	}
}

// Renew: a serving node that starts a new log takes a new epoch of its own
// rank, above every epoch seen, and tells the peer at once; a standby does
// nothing.
func TestRenewTakesNewEpoch(t *testing.T) {
	h := newTM(t, nil)
	asMaster(h)
	acts := h.step(Renew{})
	wantHas(t, acts, "Epoch(4)", "Send(master e4 primary)")
	wantNot(t, acts, "RemoveVIP", "StopServices", "AddVIP")
	h.wantState(StateMaster, true, 4)

	s := newTM(t, standby)
	asSlaveOf(s, StateMaster, 2)
	wantActs(t, s.step(Renew{}))
	s.wantState(StateSlave, false, 2)
}

// A node that has just promoted announces no journal position until its
// journal layer reports one in the new term's log: a standby with no
// position (0) must not count as caught up with it (chaos seed 47 of a
// loaded run: it did, and took over when the new master died 300 ms
// later, without the writes on it).
func TestPromotedNodeAnnouncesNoPositionYet(t *testing.T) {
	h := newTM(t, standby)
	h.witness = ptr(true)
	h.tick(0)
	h.step(JournalPosition{}) // a standby with no position yet
	acts, ok := h.runUntil(5*time.Second, quiet, func(a []Action) bool { return has(a, "AddVIP") })
	if !ok {
		t.Fatalf("never promoted: %q", descs(acts))
	}
	if j := h.lastSent().Journal; j != JournalUnknown {
		t.Fatalf("just promoted, announces position %d, want JournalUnknown", j)
	}
	h.step(JournalPosition{Pos: 7, Epoch: h.m.Epoch()})
	h.run(300*time.Millisecond, nil)
	if j := h.lastSent().Journal; j != 7 {
		t.Fatalf("after the journal reported 7: announces %d", j)
	}

	// The other side: a standby at position 0 hearing that heartbeat
	// is not synced.
	s := newTM(t, nil)
	s.tick(0)
	s.step(JournalPosition{})
	s.peer.State, s.peer.Epoch, s.peer.Journal = StatePrimarySlave, 3, JournalUnknown
	s.hear()
	s.run(300*time.Millisecond, both)
	if s.m.Status().Synced {
		t.Fatal("a standby at 0 counts as caught up with a master whose position is unknown")
	}
}

// A standby that lost its master for a while (a partition: it could not
// reach the witness, so it did not promote) is no copy when the master
// is back: the master may have acknowledged changes alone meanwhile. It
// counts as synced again once caught up with the master's position.
func TestStandbyBackFromPartitionIsNotSynced(t *testing.T) {
	h := newTM(t, standby)
	h.witness = ptr(false) // partitioned from the witness too
	asSlaveOf(h, StateMaster, 2)
	h.step(JournalPosition{Pos: 10, Epoch: 2})
	h.peer.Journal = 10
	h.run(300*time.Millisecond, both)
	if !h.m.Status().Synced {
		t.Fatal("not synced at the master's position")
	}
	// The master goes on; this node hears nothing past the dead interval.
	acts := h.run(3*time.Second, quiet)
	wantNot(t, acts, "AddVIP")
	// Back: the master is at 25 now.
	h.peer.Journal = 25
	h.hear()
	h.run(300*time.Millisecond, both)
	if h.m.Status().Synced {
		t.Fatal("synced right after the partition, behind the master's position")
	}
	h.step(JournalPosition{Pos: 25, Epoch: 2})
	h.run(300*time.Millisecond, both)
	if !h.m.Status().Synced {
		t.Fatal("not synced again after catching up")
	}
}

// VIPHeld: the peer serves but is not heard (split heartbeat paths). This
// node is no copy from then on, and does not take over when the peer then
// dies.
func TestVIPHeldUnsyncs(t *testing.T) {
	h := newTM(t, standby)
	h.witness = ptr(false) // the probe found the VIP held: "not reachable"
	asSlaveOf(h, StateMaster, 2)
	if !h.m.Status().Synced {
		t.Fatal("not synced")
	}
	h.run(2*time.Second, quiet) // heartbeats lost on both paths
	h.step(VIPHeld{})
	if h.m.Status().Synced || h.lastSent().Flags&FlagSynced != 0 {
		t.Fatal("still synced after VIPHeld")
	}
	h.witness = ptr(true) // the peer really died: nobody answers for the VIP
	acts := h.run(5*time.Second, quiet)
	wantNot(t, acts, "AddVIP")
	h.wantState(StateSlave, false, 2)
}
