package replica

import (
	"context"
	"testing"
	"time"

	"ftnas/journal"
)

type memApplier struct {
	pos     journal.Position
	applied []uint64
}

func (m *memApplier) Position() (journal.Position, error) { return m.pos, nil }
func (m *memApplier) Apply(_ context.Context, r journal.Record, _ journal.Fetcher) error {
	m.applied = append(m.applied, r.Seq)
	return nil
}
func (m *memApplier) Commit(p journal.Position) error { m.pos = p; return nil }

func TestLagApplier(t *testing.T) {
	now := time.Unix(1000, 0)
	inner := &memApplier{pos: journal.Position{LogID: 7, Seq: 5, Epoch: 1}}
	a, err := newLagApplier(inner, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Seq 5 again (applied before a crash, not committed), then 6 and 7.
	for _, r := range []journal.Record{
		{Seq: 5, Time: now.Add(-3 * time.Second).UnixNano()},
		{Seq: 6, Time: now.Add(-2 * time.Second).UnixNano()},
		{Seq: 7, Time: now.Add(time.Second).UnixNano()}, // master clock ahead
	} {
		if err := a.Apply(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
		now = now.Add(100 * time.Millisecond)
	}
	if err := a.Commit(journal.Position{LogID: 7, Seq: 7, Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	s := a.stats()
	if s.Applied != 3 || s.Reapplied != 1 || s.LastSeq != 7 || s.Position.Seq != 7 || s.Committed != 1 {
		t.Errorf("stats %+v", s)
	}
	if s.Lag != 0 || s.MaxLag != 3*time.Second {
		t.Errorf("lag %v, max %v: want 0 (clock ahead) and 3s", s.Lag, s.MaxLag)
	}
	if len(inner.applied) != 3 || inner.pos.Seq != 7 {
		t.Errorf("inner applier saw %v, position %+v", inner.applied, inner.pos)
	}
}
