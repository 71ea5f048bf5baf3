package journal

import (
	"bytes"
	"context"
	"os"
	"reflect"
	"sync"
	"testing"

	"ftnas/appliance/fileid"
)

// byteCounter counts the content bytes asked for through it.
type byteCounter struct {
	inner Fetcher
	mu    sync.Mutex
	asked uint64 // bytes of data asked for
	attrs int    // requests for attributes
}

func (c *byteCounter) Fetch(ctx context.Context, q *FetchRequest) (*FetchReply, error) {
	c.mu.Lock()
	if q.What&FetchData != 0 {
		c.asked += q.Len
	}
	if q.What&FetchAttr != 0 {
		c.attrs++
	}
	c.mu.Unlock()
	return c.inner.Fetch(ctx, q)
}

func (c *byteCounter) take() (asked uint64, attrs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	asked, attrs = c.asked, c.attrs
	c.asked, c.attrs = 0, 0
	return asked, attrs
}

// writeRanged writes b at off in the master's name and records it as a
// write without data (its range only), as the capture does for a large
// file.
func (r *inlineRig) writeRanged(name string, st fileid.Stamp, off int64, b []byte) {
	r.t.Helper()
	r.writeMaster(name, off, b)
	r.add(Record{Op: OpWrite, File: st, Off: uint64(off), Len: uint64(len(b))})
}

// prefetchAll shows the records told so far to the applier as one Records
// message and waits until what it asked for has come.
func (r *inlineRig) prefetchAll(f Fetcher) {
	r.t.Helper()
	r.app.Prefetch(context.Background(), r.recs, f)
	r.app.pre.mu.Lock()
	var pfs []*prefetch
	for _, fs := range r.app.pre.files {
		pfs = append(pfs, fs...)
	}
	r.app.pre.mu.Unlock()
	for _, pf := range pfs {
		<-pf.done
	}
}

// applyWith applies the records told so far as one batch, fetching with f,
// and checks the standby then holds the master's tree.
func (r *inlineRig) applyWith(f Fetcher) {
	r.t.Helper()
	n, err := r.app.ApplyBatch(context.Background(), r.recs, f)
	if err != nil || n != len(r.recs) {
		r.t.Fatalf("ApplyBatch of %d records: %d, %v", len(r.recs), n, err)
	}
	r.recs = nil
	compareTrees(r.t, r.m.dir, r.s.dir)
}

// bigRig is an inlineRig with an empty file "big" on both sides, and a
// byteCounter fetching from the master, its counts cleared.
func bigRig(t *testing.T) (*inlineRig, *byteCounter, fileid.Stamp) {
	t.Helper()
	r := newInlineRig(t)
	f := &byteCounter{inner: directFetcher{NewFSSource(r.m.tree)}}
	big := r.create("big")
	r.applyWith(f)
	f.take()
	return r, f, big
}

// TestPrefetchTaken: the ranges a Records message's writes name are
// fetched as it arrives, the first with the file's attributes; its batch
// takes them and asks the master for nothing, and forgets them once
// applied.
func TestPrefetchTaken(t *testing.T) {
	r, f, big := bigRig(t)

	r.writeRanged("big", big, 0, randomBytes(3<<20, 1))
	r.writeRanged("big", big, 5<<20, randomBytes(1<<20, 2)) // a hole between
	r.prefetchAll(f)
	if asked, _ := f.take(); asked != 4<<20 {
		t.Fatalf("prefetch asked for %d bytes, want %d", asked, 4<<20)
	}
	before := r.app.Stats().Prefetched
	r.applyWith(f)
	if asked, attrs := f.take(); asked != 0 || attrs != 0 {
		t.Errorf("the batch asked for %d bytes and %d attributes after the prefetch; want none: the prefetch brought them", asked, attrs)
	}
	if got := r.app.Stats().Prefetched - before; got != 4<<20 {
		t.Errorf("prefetched bytes taken %d, want %d", got, 4<<20)
	}
	if len(r.app.pre.files) != 0 || r.app.pre.bytes != 0 {
		t.Errorf("after the batch: %d files, %d bytes still prefetched", len(r.app.pre.files), r.app.pre.bytes)
	}
}

// TestPrefetchInvalidated: a record after the prefetch that writes into its
// range (or truncates its file, or writes it without a range) makes the
// batch fetch the range afresh; one that writes elsewhere, or changes the
// mode, does not, but the attributes are asked for again. Were a stale
// range or stale attributes taken, the standby would not match the master.
func TestPrefetchInvalidated(t *testing.T) {
	r := newInlineRig(t)
	f := &byteCounter{inner: directFetcher{NewFSSource(r.m.tree)}}
	a, b, c, d, e := r.create("a"), r.create("b"), r.create("c"), r.create("d"), r.create("e")
	r.applyWith(f)
	for _, x := range []struct {
		name string
		st   fileid.Stamp
	}{{"a", a}, {"b", b}, {"c", c}, {"d", d}, {"e", e}} {
		r.writeRanged(x.name, x.st, 0, randomBytes(1<<20, 3))
	}
	r.prefetchAll(f)
	f.take()

	// a: overwritten inside the prefetched range, recorded after it.
	r.writeRanged("a", a, 1000, bytes.Repeat([]byte("A"), 5000))
	// b: truncated, then written further on.
	if err := os.Truncate(r.m.path("b"), 100); err != nil {
		t.Fatal(err)
	}
	r.add(Record{Op: OpTruncate, File: b, Size: 100})
	r.writeRanged("b", b, 2<<20, []byte("tail"))
	// c: written outside the prefetched range only: the prefetch holds.
	r.writeRanged("c", c, 1<<20, []byte("more"))
	// d: overwritten inside the range by a write without a range.
	if err := os.WriteFile(r.m.path("d"), bytes.Repeat([]byte("D"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	r.add(Record{Op: OpWrite, File: d})
	// e: its mode changed after the prefetch (a setattr with the value).
	if err := os.Chmod(r.m.path("e"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.add(Record{Op: OpSetAttr, File: e, AttrMask: AttrMode, Mode: 0o600})
	before := r.app.Stats().Prefetched
	r.applyWith(f) // compares the trees
	if got := r.app.Stats().Prefetched - before; got != 2<<20 {
		t.Errorf("prefetched bytes taken %d, want %d (c's and e's)", got, 2<<20)
	}
	if _, attrs := f.take(); attrs != 5 {
		t.Errorf("the batch asked for the attributes of %d files, want 5 (each changed after its prefetch)", attrs)
	}
}

// TestPrefetchBounded: a message naming more than prefetchBytes has the
// rest fetched by its batch; a new session does not take what an old one
// prefetched.
func TestPrefetchBounded(t *testing.T) {
	r, f, big := bigRig(t)
	const size = prefetchBytes + 8<<20
	r.writeRanged("big", big, 0, randomBytes(size, 4))
	r.prefetchAll(f)
	if asked, _ := f.take(); asked != prefetchBytes {
		t.Fatalf("prefetch asked for %d bytes, want the budget, %d", asked, prefetchBytes)
	}
	other := &byteCounter{inner: directFetcher{NewFSSource(r.m.tree)}}
	before := r.app.Stats().Prefetched
	r.applyWith(other)
	if asked, _ := other.take(); asked != size {
		t.Errorf("a batch over another session asked for %d bytes, want all %d", asked, size)
	}
	if got := r.app.Stats().Prefetched - before; got != 0 {
		t.Errorf("took %d bytes prefetched over another session", got)
	}
}

func TestSpans(t *testing.T) {
	sps := []span{{0, 10}, {20, 30}, {40, 50}}
	if got := intersect(span{5, 45}, sps); !reflect.DeepEqual(got, []span{{5, 10}, {20, 30}, {40, 45}}) {
		t.Errorf("intersect: %v", got)
	}
	if got := subtract(sps, span{5, 45}); !reflect.DeepEqual(got, []span{{0, 5}, {45, 50}}) {
		t.Errorf("subtract: %v", got)
	}
	if got := subtract(sps, span{10, 20}); !reflect.DeepEqual(got, sps) {
		t.Errorf("subtract of a gap: %v", got)
	}
	if overlaps(span{10, 20}, sps) || !overlaps(span{29, 31}, sps) {
		t.Error("overlaps")
	}
	pf := &prefetch{after: 5, sp: span{100, 200}}
	for _, c := range []struct {
		ts   []touch
		want bool
	}{
		{nil, true},
		{[]touch{{seq: 4, all: true}}, true},           // before it: in it
		{[]touch{{seq: 6, sp: span{200, 300}}}, true},  // after it, elsewhere
		{[]touch{{seq: 6, sp: span{199, 300}}}, false}, // after it, into it
		{[]touch{{seq: 6, all: true}}, false},          // a truncate after it
		{[]touch{{seq: 5, sp: span{150, 160}}}, true},  // its own message's
		{[]touch{{seq: 7, sp: span{0, 101}}}, false},
		{[]touch{{seq: 7, meta: true}}, true}, // a chmod: the bytes hold
	} {
		if got := pf.valid(c.ts); got != c.want {
			t.Errorf("valid(%v) = %v, want %v", c.ts, got, c.want)
		}
	}
	pf.attr = true
	if !pf.attrValid([]touch{{seq: 5, all: true}}) || pf.attrValid([]touch{{seq: 6, meta: true}}) || pf.attrValid([]touch{{seq: 6, sp: span{500, 600}}}) {
		t.Error("attrValid: want true for its own message's records only")
	}
	ts := touches([]Record{
		{Seq: 1, Op: OpWrite, File: fileid.Stamp{ID: 1}, Off: 10, Len: 5},
		{Seq: 2, Op: OpWrite, File: fileid.Stamp{ID: 1}, Flags: FlagInline, Off: 0, Len: 1, Data: []byte("x")},
		{Seq: 3, Op: OpTruncate, File: fileid.Stamp{ID: 2}},
		{Seq: 4, Op: OpWrite, File: fileid.Stamp{ID: 2}},
		{Seq: 5, Op: OpSetAttr, File: fileid.Stamp{ID: 3}},
		{Seq: 6, Op: OpRename, File: fileid.Stamp{ID: 3}},
	})
	want := map[fileid.Stamp][]touch{
		{ID: 1}: {{seq: 1, sp: span{10, 15}}, {seq: 2, sp: span{0, 1}}},
		{ID: 2}: {{seq: 3, all: true}, {seq: 4, all: true}},
		{ID: 3}: {{seq: 5, meta: true}},
	}
	if !reflect.DeepEqual(ts, want) {
		t.Errorf("touches: %v, want %v", ts, want)
	}
}
