package replica

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ftnas/journal"
	"ftnas/kernel/changelog"
)

// TestSwitchRoles runs the pair, then swaps the roles as heartbeat would
// after a failover: the former standby's volume is the master's, the former
// master follows it (from a fresh position: a new log), and changes flow
// the other way. The new master's first records describe its shares; the
// new standby holds the same files, so only differing blocks travel.
func TestSwitchRoles(t *testing.T) {
	p := newPair(t, pairOpts{})
	s1 := p.shares[0].Root
	must(t, os.MkdirAll(filepath.Join(s1, "d/e"), 0o755))
	big := bytes.Repeat([]byte("switch"), 200000)
	write(t, filepath.Join(s1, "d/big"), 0, big)
	write(t, filepath.Join(s1, "d/e/small"), 0, []byte("small"))
	p.sync()
	p.check()
	p.stopMaster()
	p.stopStandby()

	// B (the old standby's volume) is master now, at a higher epoch; A
	// (the old master's volume) follows, from a fresh position.
	sw := p.swap(t, journal.Position{}, journal.Position{})
	sw.changeOnB(t)
	if got := sw.a.Stats().Apply.BytesFetched; got >= uint64(len(big))/2 {
		t.Errorf("the new standby fetched %d bytes; it had the %d-byte file already", got, len(big))
	}
	sw.stop(t)
}

// swapped is a pair after a switch of roles: B, the old standby's volume,
// master at epoch 3; A, the old master's volume, its standby.
type swapped struct {
	p            *pair
	b            *Master
	a            *Standby
	bdone, adone chan error
	cancel       context.CancelFunc
}

// swap starts B as master, continuing the log at cont (MasterConfig.
// Continue) if it is set, and A as its standby, from apos (a fresh
// position if it is zero).
func (p *pair) swap(t *testing.T, cont, apos journal.Position) *swapped {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	bcfg := p.mcfg
	bcfg.Volume, bcfg.Tree, bcfg.Listener, bcfg.NodeID, bcfg.Epoch = p.svol, p.stree, ln, "s", 3
	bcfg.LogPath = filepath.Join(t.TempDir(), "journal.db")
	bcfg.TLS = p.scfg.TLS // each end presents its own certificate and pins the other's
	bcfg.Tune = nil
	bcfg.Shares = []changelog.Share{{FSID: 1, Root: filepath.Join(p.svol, "s1")}, {FSID: 2, Root: filepath.Join(p.svol, "s2")}}
	bcfg.Continue = cont
	b, err := NewMaster(bcfg)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	sw := &swapped{p: p, b: b, bdone: make(chan error, 1), adone: make(chan error, 1), cancel: cancel}
	t.Cleanup(cancel)
	go func() { sw.bdone <- b.Run(ctx) }()
	if cont.LogID != 0 {
		select {
		case <-b.Ready():
		case <-time.After(30 * time.Second):
			t.Fatal("the continuing master never said the volume may change")
		}
	}
	waitRunning(t, b, sw.bdone)

	acfg := p.scfg
	acfg.Tree, acfg.NodeID, acfg.TLS = p.mtree, "m", p.mcfg.TLS
	acfg.PositionPath = filepath.Join(t.TempDir(), "position")
	if apos.LogID != 0 {
		must(t, journal.NewPositionFile(acfg.PositionPath).Save(apos))
	}
	addr := ln.Addr().String()
	acfg.Dial = func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	if sw.a, err = NewStandby(acfg); err != nil {
		t.Fatal(err)
	}
	go func() { sw.adone <- sw.a.Run(ctx) }()
	return sw
}

// changeOnB changes B's first share (a write, a directory moved, a new
// file), waits until A has applied it all, and checks both shares are the
// same on A. It returns B's last record.
func (sw *swapped) changeOnB(t *testing.T) uint64 {
	t.Helper()
	p := sw.p
	sb1 := filepath.Join(p.svol, "s1")
	write(t, filepath.Join(sb1, "d/e/small"), 0, []byte("SMALL"))
	must(t, os.Rename(filepath.Join(sb1, "d/e"), filepath.Join(sb1, "e2")))
	write(t, filepath.Join(sb1, "new"), 0, []byte("written on B"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seq, err := sw.b.Sync(ctx)
	must(t, err)
	must(t, sw.b.WaitAcked(ctx, seq))
	for _, sh := range []string{"s1", "s2"} {
		if d := compareTrees(filepath.Join(p.svol, sh), filepath.Join(p.mvol, sh)); d != "" {
			t.Fatalf("after the switch, share %s differs: %s", sh, d)
		}
	}
	return seq
}

func (sw *swapped) stop(t *testing.T) {
	t.Helper()
	sw.cancel()
	waitDone(t, "new master", sw.bdone)
	waitDone(t, "new standby", sw.adone)
}

// TestFencedMasterStops: a master at an epoch below the one the standby has
// seen is refused, and its Run ends with journal.ErrFenced; the standby
// keeps waiting for a proper master.
func TestFencedMasterStops(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.sync()
	addr := p.ln.Addr().String()
	p.stopMaster()

	ln, err := net.Listen("tcp", addr) // where the standby dials
	must(t, err)
	cfg := p.mcfg
	cfg.Listener, cfg.Epoch = ln, 1 // below the standby's 2
	cfg.LogPath = filepath.Join(t.TempDir(), "journal.db")
	m, err := NewMaster(cfg)
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, journal.ErrFenced) {
			t.Fatalf("Run: %v, want ErrFenced", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stale master was not fenced")
	}
	if s := p.standby.Stats(); !s.Running || s.Position.Epoch != 2 {
		t.Errorf("standby %+v", s)
	}
}

// TestHandOffAndDrain: a master that hands off waits until the standby has
// applied everything written so far, then ends the session with
// journal.ErrHandedOff; the standby's Drain returns once that session
// ended, reporting the hand-off and its note, and its Run ends without
// reconnecting.
// A standby whose session broke without a hand-off reports none.
func TestHandOffAndDrain(t *testing.T) {
	p := newPair(t, pairOpts{})
	s1 := p.shares[0].Root
	p.sync()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Written just before the hand-off, not waited for: the hand-off
	// covers it.
	write(t, filepath.Join(s1, "last"), 0, bytes.Repeat([]byte("last words "), 5000))
	if _, err := p.master.HandOff(ctx, make([]byte, journal.MaxNoteLen+1)); err == nil {
		t.Fatal("HandOff took a note over journal.MaxNoteLen")
	}
	seq, err := p.master.HandOff(ctx, []byte("the old master's note"))
	if err != nil {
		t.Fatalf("HandOff: %v (master %+v, standby %+v)", err, p.master.Stats(), p.standby.Stats())
	}
	handedOff, err := p.standby.Drain(ctx)
	if err != nil || !handedOff {
		t.Fatalf("Drain = %v, %v; want the hand-off (standby %+v)", handedOff, err, p.standby.Stats())
	}
	select {
	case err := <-p.sdone:
		p.sdone = nil
		if err != nil {
			t.Fatalf("drained standby's Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the drained standby's Run did not end")
	}
	if st := p.standby.Stats(); st.Position.Seq != seq || !st.HandedOff || string(st.HandOffNote) != "the old master's note" {
		t.Fatalf("standby at %+v, want seq %d handed off with the master's note", st, seq)
	}
	p.check()
	if p.standby.Run(ctx) != nil {
		t.Fatal("Run after Drain")
	}

	// A standby whose session just breaks has no hand-off to report.
	q := newPair(t, pairOpts{})
	q.sync()
	q.stopMaster()
	handedOff, err = q.standby.Drain(ctx)
	if err != nil || handedOff {
		t.Fatalf("Drain after the master vanished = %v, %v; want no hand-off", handedOff, err)
	}
	if st := q.standby.Stats(); st.HandOffNote != nil {
		t.Errorf("standby without a hand-off has note %q", st.HandOffNote)
	}
	if _, err := q.master.HandOff(ctx, nil); err == nil {
		t.Fatal("HandOff of a stopped master succeeded")
	}
}

// TestHandOffThenContinue: after a hand-off the new master's log
// continues the one it had whole (MasterConfig.Continue), and the old
// master, whose volume is that log up to the hand-off (Master.HandedOff),
// reads on from there: no resync, no description, only the changes made
// after the switch. A master with a write after its hand-off has no
// such position.
func TestHandOffThenContinue(t *testing.T) {
	p := newPair(t, pairOpts{})
	s1 := p.shares[0].Root
	must(t, os.MkdirAll(filepath.Join(s1, "d/e"), 0o755))
	for i := range 50 {
		write(t, filepath.Join(s1, "d", "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), 0, bytes.Repeat([]byte{byte(i)}, 3000))
	}
	p.sync()
	write(t, filepath.Join(s1, "d/e/small"), 0, []byte("small")) // covered by the hand-off
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seq, err := p.master.HandOff(ctx, nil)
	must(t, err)
	if handedOff, err := p.standby.Drain(ctx); err != nil || !handedOff {
		t.Fatalf("Drain = %v, %v", handedOff, err)
	}
	p.stopMaster()
	handed, ok := p.master.HandedOff()
	spos := p.standby.Stats().Position
	if !ok || handed.Seq != seq || handed.LogID != spos.LogID || handed.Seq != spos.Seq {
		t.Fatalf("HandedOff = %+v, %v; standby at %+v, hand-off at %d", handed, ok, spos, seq)
	}
	p.stopStandby()

	// B (the old standby) serves, continuing the log it has whole; A
	// (the old master) follows from its hand-off position.
	sw := p.swap(t, spos, handed)
	if st := sw.b.Stats(); !st.Continued || st.LogID != spos.LogID || st.LastSeq != spos.Seq || st.Capture.Silent < 50 {
		t.Fatalf("continuing master: %+v", st)
	}
	last := sw.changeOnB(t)
	st := sw.a.Stats()
	if st.NeedResync || st.Position.LogID != spos.LogID || st.Applied == 0 || st.Applied > 20 || st.Position.Seq != last {
		t.Fatalf("the old master followed the continuation with %+v; want log %x read on from %d to %d, a few records", st, spos.LogID, spos.Seq, last)
	}
	sw.stop(t)

	// A write after the hand-off leaves its master with no position to
	// read on from.
	q := newPair(t, pairOpts{})
	q.sync()
	if _, err := q.master.HandOff(ctx, nil); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(q.shares[0].Root, "late"), 0, []byte("after the hand-off"))
	q.stopMaster()
	if pos, ok := q.master.HandedOff(); ok {
		t.Fatalf("HandedOff = %+v after a write that came after the hand-off", pos)
	}
}
