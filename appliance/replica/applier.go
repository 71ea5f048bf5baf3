package replica

import (
	"context"
	"sync"
	"time"

	"ftnas/journal"
)

// lagApplier is the standby's Applier around the real one: it measures the
// lag of each record it applies (the time applied here minus the master's
// capture time) and counts records applied again (after a crash between an
// apply and its commit).
type lagApplier struct {
	inner journal.Applier
	now   func() time.Time

	mu        sync.Mutex
	lastSeq   uint64 // highest seq applied (or committed before this run)
	lastLogID uint64
	st        applyStats
}

type applyStats struct {
	Applied    uint64        // records applied by this run
	Reapplied  uint64        // of those, records at or below an applied seq
	Lag        time.Duration // of the last record applied
	MaxLag     time.Duration // largest lag seen
	LastTime   int64         // master capture time (Unix ns) of the last record applied
	LastApply  time.Time     // when it was applied
	LastSeq    uint64
	Position   journal.Position
	Committed  uint64 // commits
	CommitTime time.Time
}

func newLagApplier(inner journal.Applier, now func() time.Time) (*lagApplier, error) {
	pos, err := inner.Position()
	if err != nil {
		return nil, err
	}
	a := &lagApplier{inner: inner, now: now, lastSeq: pos.Seq, lastLogID: pos.LogID}
	a.st.Position = pos
	return a, nil
}

func (a *lagApplier) Position() (journal.Position, error) { return a.inner.Position() }

func (a *lagApplier) Apply(ctx context.Context, rec journal.Record, f journal.Fetcher) error {
	if err := a.inner.Apply(ctx, rec, f); err != nil {
		return err
	}
	a.applied(rec, a.now())
	return nil
}

// applied counts rec, applied at now.
func (a *lagApplier) applied(rec journal.Record, now time.Time) {
	lag := max(now.Sub(time.Unix(0, rec.Time)), 0)
	a.mu.Lock()
	a.st.Applied++
	if rec.Seq <= a.lastSeq {
		a.st.Reapplied++
	}
	a.lastSeq = max(a.lastSeq, rec.Seq)
	a.st.Lag, a.st.MaxLag = lag, max(a.st.MaxLag, lag)
	a.st.LastTime, a.st.LastApply, a.st.LastSeq = rec.Time, now, rec.Seq
	a.mu.Unlock()
}

// ApplyBatch implements journal.BatchApplier: the inner applier's batch if
// it has one, else its records one by one. The records of a batch count as
// applied when the batch is.
func (a *lagApplier) ApplyBatch(ctx context.Context, recs []journal.Record, f journal.Fetcher) (int, error) {
	var n int
	var err error
	if ba, ok := a.inner.(journal.BatchApplier); ok {
		n, err = ba.ApplyBatch(ctx, recs, f)
		n = min(max(n, 0), len(recs))
	} else {
		for _, rec := range recs {
			if err = a.inner.Apply(ctx, rec, f); err != nil {
				break
			}
			n++
		}
	}
	now := a.now()
	for _, rec := range recs[:n] {
		a.applied(rec, now)
	}
	return n, err
}

// Hold implements journal.Holder for the inner applier.
func (a *lagApplier) Hold() time.Duration {
	if h, ok := a.inner.(journal.Holder); ok {
		return h.Hold()
	}
	return 0
}

// Prefetch implements journal.Prefetcher for the inner applier.
func (a *lagApplier) Prefetch(ctx context.Context, recs []journal.Record, f journal.Fetcher) {
	if pf, ok := a.inner.(journal.Prefetcher); ok {
		pf.Prefetch(ctx, recs, f)
	}
}

func (a *lagApplier) Commit(pos journal.Position) error {
	if err := a.inner.Commit(pos); err != nil {
		return err
	}
	a.mu.Lock()
	if pos.LogID != a.lastLogID {
		// Another log: its numbering starts over.
		a.lastLogID, a.lastSeq = pos.LogID, pos.Seq
	}
	a.st.Position = pos
	a.st.Committed++
	a.st.CommitTime = a.now()
	a.mu.Unlock()
	return nil
}

func (a *lagApplier) stats() applyStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st
}
