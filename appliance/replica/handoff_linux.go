package replica

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"ftnas/journal"
	"ftnas/journal/capture"
)

// The hand-off between two masters: the old one ends its standby's
// session once the standby has its whole log (HandOff) and keeps that
// position if nothing came after it (HandedOff, settleHandOff); the new
// one continues that log (MasterConfig.Continue: takeContinue, Ready,
// GiveUpContinue). See the package doc.

// HandOff makes the standby's copy complete before this node stops
// serving: it waits until every change made so far is logged and the
// standby has applied all of the log, then ends the standby's session
// with journal.ErrHandedOff, which tells it so (its proof, as the next
// master, that nothing was lost), with note (journal.HandOff; at most
// journal.MaxNoteLen bytes, nil for none). It gives up when ctx ends or
// the standby is not connected. Call it once the file services take no
// more changes; the caller then stops Run.
func (m *Master) HandOff(ctx context.Context, note []byte) (uint64, error) {
	if len(note) > journal.MaxNoteLen {
		return 0, fmt.Errorf("replica: hand off: note of %d bytes exceeds %d", len(note), journal.MaxNoteLen)
	}
	var cause error = journal.ErrHandedOff
	if note != nil {
		cause = &journal.HandOff{Note: note}
	}
	m.mu.Lock()
	l, s := m.jlog, m.ship
	m.mu.Unlock()
	if l == nil || s == nil {
		return 0, errors.New("replica: hand off: master not running")
	}
	for {
		if !s.Status().Connected {
			return 0, errors.New("replica: hand off: no standby connected")
		}
		seq, err := m.Sync(ctx)
		if err != nil {
			return 0, fmt.Errorf("replica: hand off: %w", err)
		}
		if err := s.WaitAcked(ctx, seq); err != nil {
			return 0, fmt.Errorf("replica: hand off: wait for the standby to apply record %d: %w", seq, err)
		}
		// Anything logged meanwhile (a write in flight) is waited for
		// too: the hand-off covers the whole log.
		if l.Last() == seq {
			if !s.EndSession(cause) {
				return 0, errors.New("replica: hand off: the standby's session ended")
			}
			m.mu.Lock()
			m.handed, m.handedSeen = journal.Position{LogID: l.ID(), Seq: seq, Epoch: l.Epoch()}, false
			m.mu.Unlock()
			m.log.Info("replica master handed off: the standby has the whole log", "seq", seq)
			return seq, nil
		}
	}
}

// Ready is closed once the volume may change: at once for a master that
// does not continue a log (MasterConfig.Continue); for one that does,
// once its description's view of the volume is fixed, or the
// continuation was given up (GiveUpContinue, or the volume was no copy).
func (m *Master) Ready() <-chan struct{} { return m.ready }

// Continues reports whether the master was configured to continue its
// standby's log (MasterConfig.Continue): Ready is then worth waiting for.
func (m *Master) Continues() bool { return m.cfg.Continue.LogID != 0 }

func (m *Master) setReady() { m.readyOnce.Do(func() { close(m.ready) }) }

// GiveUpContinue ends a term that continues a log before its
// description's view of the volume is fixed: the caller cannot keep the
// volume unchanged any longer. The next term starts a log with a
// description (the standby resyncs from it). Ready is closed.
func (m *Master) GiveUpContinue() {
	m.mu.Lock()
	fixed, cancel := m.contFixed, m.termCancel
	m.cont = journal.Position{}
	m.mu.Unlock()
	if fixed != nil && cancel != nil {
		select {
		case <-fixed:
		default:
			m.log.Warn("replica master: giving up continuing the standby's log: the volume may change before its view is fixed")
			cancel(fmt.Errorf("%w: the continuation was given up", errNewLog))
		}
	}
	m.setReady()
}

// HandedOff reports, once Run has returned, the position of the standby
// when this master handed off to it (HandOff), if nothing was logged
// after it until the capture stopped: the volume is then exactly that
// log up to that record, the position from which this node, following
// the new master, reads on as a copy (the new master's
// MasterConfig.Continue is the same position).
func (m *Master) HandedOff() (journal.Position, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.handed, m.handedSeen
}

// takeContinue returns the continuation the first term starts with
// (MasterConfig.Continue), once; none where the volume root holds parked
// entries (the capture that parked them knew where they belong, a new
// one does not: only a description puts them right).
func (m *Master) takeContinue() journal.Position {
	m.mu.Lock()
	cont := m.cont
	m.cont = journal.Position{}
	m.mu.Unlock()
	if cont.LogID == 0 {
		return cont
	}
	ents, err := os.ReadDir(m.cfg.Volume)
	if err != nil {
		m.log.Warn("replica master: not continuing the standby's log", "err", err)
		return journal.Position{}
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), capture.ParkPrefix) {
			m.log.Warn("replica master: not continuing the standby's log: the volume has parked entries", "entry", e.Name())
			return journal.Position{}
		}
	}
	return cont
}

// settleHandOff, at the end of a term in which this master handed off,
// lets the capture log what was changed until now and keeps the hand-off
// position for HandedOff only if nothing was, and nothing waits to be (a
// rescan due, an entry parked): a change that is not in the handed-off
// log is on this volume alone, and only a resync undoes it.
func (m *Master) settleHandOff(c *capture.Capture, l *journal.Log) {
	m.mu.Lock()
	h := m.handed
	m.mu.Unlock()
	if h.LogID != l.ID() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), settleMax)
	err := c.Sync(ctx)
	cancel()
	last, pending := l.Last(), c.Stats().Pending
	ok := err == nil && last == h.Seq && !pending
	if !ok {
		m.log.Warn("replica master: changes after the hand-off, or not all known; following the new master with a resync",
			"handed_off_at", h.Seq, "last", last, "rescans_or_parked", pending, "err", err)
	}
	m.mu.Lock()
	m.handedSeen = ok
	m.mu.Unlock()
}

// settleMax bounds settleHandOff's wait for the capture.
const settleMax = 2 * time.Second
