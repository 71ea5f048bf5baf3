package journal

import (
	"reflect"
	"testing"
	"time"

	"ftnas/appliance/fileid"
)

func TestPendingNote(t *testing.T) {
	a, b := fileid.Stamp{ID: 1}, fileid.Stamp{ID: 2}
	p := &pending{files: map[fileid.Stamp]*pendingFile{}}
	deferred := []Record{
		{Seq: 1, Op: OpWrite, File: a, Off: 100, Len: 10},
		{Seq: 2, Op: OpSetAttr, File: b},
		{Seq: 3, Op: OpWrite, File: a, Off: 0, Len: 50},
		{Seq: 4, Op: OpWrite, File: a, Off: 105, Len: 20},
	}
	for _, r := range deferred {
		if !p.note(r) {
			t.Fatalf("record %d not deferred", r.Seq)
		}
	}
	for _, r := range []Record{
		{Seq: 5, Op: OpWrite, File: a, Flags: FlagInline, Len: 1, Data: []byte("x")},
		{Seq: 6, Op: OpSetAttr, File: b, AttrMask: AttrMode, Mode: 0o600},
		{Seq: 7, Op: OpTruncate, File: a},
	} {
		if p.note(r) {
			t.Fatalf("record %d (%s) deferred: it carries what it needs", r.Seq, r.Op)
		}
	}
	if len(p.order) != 2 || p.order[0].file != a || p.order[1].file != b {
		t.Fatalf("order %+v", p.order)
	}
	pa := p.order[0]
	if !pa.content || pa.whole || pa.seq != 1 || !reflect.DeepEqual(mergeSpans(pa.ranges), []span{{0, 50}, {100, 125}}) {
		t.Fatalf("file a: %+v, merged %v", pa, mergeSpans(pa.ranges))
	}
	if pb := p.order[1]; pb.content || !pb.meta {
		t.Fatalf("file b: %+v", pb)
	}
	// A write without a range makes it the whole file, for good.
	p.note(Record{Seq: 8, Op: OpWrite, File: a})
	p.note(Record{Seq: 9, Op: OpWrite, File: a, Off: 1, Len: 1})
	if !pa.whole || pa.ranges != nil {
		t.Fatalf("file a after a write without a range: %+v", pa)
	}
	// Removed later in the batch: dropped once.
	if !p.drop(b) || p.drop(b) || !p.order[1].dropped {
		t.Fatal("drop of b")
	}
}

func TestHoldFor(t *testing.T) {
	for _, c := range []struct {
		delta uint64
		took  time.Duration
		want  time.Duration
	}{
		{0, time.Second, 0},
		{holdBytes - 1, time.Second, 0},                             // small deltas never hold
		{holdBytes, 100 * time.Millisecond, 200 * time.Millisecond}, // a third of the time on deltas
		{1 << 30, 5 * time.Second, maxHold},
		{holdBytes, 0, 0},
	} {
		if got := holdFor(c.delta, c.took); got != c.want {
			t.Errorf("holdFor(%d, %v) = %v, want %v", c.delta, c.took, got, c.want)
		}
	}
}

// TestPendingNoteMergesRanges: a file written in a long stream of writes
// that follow each other stays one range; only more than maxRanges
// separate ranges make it a whole-file fetch.
func TestPendingNoteMergesRanges(t *testing.T) {
	a := fileid.Stamp{ID: 1}
	p := &pending{files: map[fileid.Stamp]*pendingFile{}}
	for i := range uint64(100) {
		p.note(Record{Seq: i + 1, Op: OpWrite, File: a, Off: i << 20, Len: 1 << 20})
	}
	pa := p.order[0]
	if pa.whole || !reflect.DeepEqual(pa.ranges, []span{{0, 100 << 20}}) {
		t.Fatalf("100 writes that follow each other: whole %v, ranges %v; want one range", pa.whole, pa.ranges)
	}
	for i := range uint64(maxRanges - 1) {
		p.note(Record{Op: OpWrite, File: a, Off: 200<<20 + i*8192, Len: 4096})
	}
	if pa.whole || len(pa.ranges) != maxRanges {
		t.Fatalf("%d separate ranges: whole %v, %d ranges", maxRanges, pa.whole, len(pa.ranges))
	}
	p.note(Record{Op: OpWrite, File: a, Off: 300 << 20, Len: 1})
	if !pa.whole || pa.ranges != nil {
		t.Fatalf("%d separate ranges: whole %v, ranges %d; want the whole file", maxRanges+1, pa.whole, len(pa.ranges))
	}
}
