package journal

import (
	"context"
	"slices"
	"sync"

	"ftnas/appliance/fileid"
)

// Prefetch. A batch fetches its files' written ranges at its end, and the
// receiver starts a batch only once the one before it is committed: a
// record that arrives while a batch fetches waited for that whole batch,
// then for its own fetches. Under a steady stream of writes the batches
// grew until that wait was most of the lag. So the receiver shows every
// Records message to the applier as it arrives (Prefetcher), and the
// applier starts fetching the ranges its writes name at once, into
// memory; the batch that applies the records takes the prefetched range
// instead of fetching it again.
//
// Why a prefetched range is as good as one fetched at the batch's end: it
// was asked for after every record up to its message's last (its "after"
// seq) had been captured, so it holds what they wrote. A later record can
// have changed the range only if it writes into it (a write that overlaps
// it, a write without a range, a truncate); a batch holding such a record
// does not take the range (prefetch.valid) and fetches it afresh. Changes
// whose records come in a later batch are corrected by that batch, as
// with any fetch. A file's first prefetched range brings its attributes
// and xattrs too; the batch takes them only if no record after the
// prefetch changed the file at all (prefetch.attrValid), else it asks for
// them again: the size the file is cut to must be as new as its contents.
const (
	// prefetchBytes bounds the bytes prefetched and not yet applied;
	// records beyond it are fetched at their batch's end as before.
	prefetchBytes = 64 << 20
	// prefetchWorkers bounds the prefetches in flight.
	prefetchWorkers = 8
)

// prefetch is one range of a file asked for ahead of its batch.
type prefetch struct {
	f     Fetcher
	file  fileid.Stamp
	after uint64 // the last record received when it was asked for
	sp    span
	attr  bool // with the attributes and xattrs
	done  chan struct{}
	rep   *FetchReply // when done: the reply, nil if the fetch failed
}

// prefetches are the ranges asked for ahead, by file, for one session.
type prefetches struct {
	mu    sync.Mutex
	f     Fetcher // the session they were asked over
	files map[fileid.Stamp][]*prefetch
	bytes uint64
	sem   chan struct{}
}

// touch is a record of a batch that changes a file: a write of sp, or of
// all of it (a write without a range, a truncate), or of its attributes
// or xattrs only (meta).
type touch struct {
	seq  uint64
	sp   span
	all  bool
	meta bool
}

// touches lists, by file, the records of recs that change a file's
// contents, attributes or xattrs.
func touches(recs []Record) map[fileid.Stamp][]touch {
	m := make(map[fileid.Stamp][]touch)
	for _, r := range recs {
		switch r.Op {
		case OpTruncate:
			m[r.File] = append(m[r.File], touch{seq: r.Seq, all: true})
		case OpWrite:
			sp, ok := writeSpan(r)
			m[r.File] = append(m[r.File], touch{seq: r.Seq, sp: sp, all: !ok})
		case OpSetAttr, OpSetXattr, OpRemoveXattr:
			m[r.File] = append(m[r.File], touch{seq: r.Seq, meta: true})
		}
	}
	return m
}

// valid reports whether pf still holds the master's bytes of its range for
// a batch whose records that change its file are ts: none after pf was
// asked for writes into the range.
func (pf *prefetch) valid(ts []touch) bool {
	for _, t := range ts {
		if t.seq > pf.after && !t.meta && (t.all || t.sp.off < pf.sp.end && pf.sp.off < t.sp.end) {
			return false
		}
	}
	return true
}

// attrValid reports whether pf's attributes and xattrs are still the
// master's: no record in ts after pf was asked for changed the file.
func (pf *prefetch) attrValid(ts []touch) bool {
	if !pf.attr {
		return false
	}
	for _, t := range ts {
		if t.seq > pf.after {
			return false
		}
	}
	return true
}

// Prefetch implements Prefetcher: it asks for the ranges that recs' writes
// without data name (merged by file, in pieces) while the budget lasts.
func (a *FSApplier) Prefetch(ctx context.Context, recs []Record, f Fetcher) {
	if len(recs) == 0 {
		return
	}
	after := recs[len(recs)-1].Seq
	ranges := make(map[fileid.Stamp][]span)
	var order []Record
	for _, r := range recs {
		if r.Op != OpWrite || r.Flags&FlagInline != 0 {
			continue
		}
		sp, ok := writeSpan(r)
		if !ok {
			continue
		}
		if _, seen := ranges[r.File]; !seen {
			order = append(order, r)
		}
		ranges[r.File] = append(ranges[r.File], sp)
	}
	p := &a.pre
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f != f {
		// A new session: what the old one asked for is forgotten.
		p.f, p.files, p.bytes = f, make(map[fileid.Stamp][]*prefetch), 0
	}
	if p.sem == nil {
		p.sem = make(chan struct{}, prefetchWorkers)
	}
	for _, r := range order {
		sps := mergeSpans(ranges[r.File])
		if len(sps) > maxRanges {
			continue // the batch fetches the whole file by delta
		}
		for i, pc := range pieces(sps) {
			if p.bytes+(pc.end-pc.off) > prefetchBytes {
				return
			}
			pf := &prefetch{f: f, file: r.File, after: after, sp: pc, attr: i == 0, done: make(chan struct{})}
			p.bytes += pc.end - pc.off
			p.files[r.File] = append(p.files[r.File], pf)
			go a.runPrefetch(ctx, pf, r.Share)
		}
	}
}

// runPrefetch fetches pf's range.
func (a *FSApplier) runPrefetch(ctx context.Context, pf *prefetch, share uint64) {
	defer close(pf.done)
	select {
	case a.pre.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-a.pre.sem }()
	q := &FetchRequest{Share: share, File: pf.file, What: FetchData, Off: pf.sp.off, Len: pf.sp.end - pf.sp.off}
	if pf.attr {
		q.What |= FetchAttr | FetchXattrs
	}
	if rep, err := a.fetch(ctx, pf.f, q); err == nil {
		pf.rep = rep
	}
}

// prefetched returns the ranges of file asked for ahead over f, in the
// order asked.
func (a *FSApplier) prefetched(f Fetcher, file fileid.Stamp) []*prefetch {
	a.pre.mu.Lock()
	defer a.pre.mu.Unlock()
	if a.pre.f != f {
		return nil
	}
	return slices.Clone(a.pre.files[file])
}

// release gives the buffer of pf's reply back once it has come: pf is
// forgotten, and the batch that used it has written what it took (a
// patch's data among it) and set the attributes.
func (pf *prefetch) release() {
	give := func() {
		<-pf.done
		if pf.rep != nil && pf.rep.release != nil {
			pf.rep.release()
		}
	}
	select {
	case <-pf.done:
		give()
	default:
		go give() // still in flight
	}
}

// forgetPrefetched drops the prefetches asked for by seq or before: their
// records are applied (and flushed: nothing holds their data).
func (a *FSApplier) forgetPrefetched(seq uint64) {
	p := &a.pre
	p.mu.Lock()
	defer p.mu.Unlock()
	for file, pfs := range p.files {
		kept := pfs[:0]
		for _, pf := range pfs {
			if pf.after > seq {
				kept = append(kept, pf)
				continue
			}
			p.bytes -= pf.sp.end - pf.sp.off
			pf.release()
		}
		if len(kept) == 0 {
			delete(p.files, file)
		} else {
			p.files[file] = kept
		}
	}
}

// usePrefetched writes into work what the valid prefetches of p's file
// hold within want (p's ranges), waiting for those still in flight, and
// returns the parts of want still to fetch and, if one of those
// prefetches brought attributes still valid, its reply.
func (a *FSApplier) usePrefetched(ctx context.Context, f Fetcher, p *pendingFile, work sink, want []span) ([]span, *FetchReply, error) {
	var attr *FetchReply
	pfs := a.prefetched(f, p.file)
	for i := len(pfs) - 1; i >= 0; i-- { // the latest first
		pf := pfs[i]
		if !pf.valid(p.touches) || !overlaps(pf.sp, want) {
			continue
		}
		select {
		case <-pf.done:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		if pf.rep == nil {
			continue
		}
		if attr == nil && pf.attrValid(p.touches) {
			attr = pf.rep
		}
		for _, b := range pf.rep.Blocks {
			got := span{b.Off, b.Off + uint64(len(b.Data))}
			for _, sp := range intersect(got, want) {
				if err := work.writeAt(b.Data[sp.off-b.Off:sp.end-b.Off], sp.off); err != nil {
					return nil, nil, err
				}
				a.count(func(s *FSApplyStats) { s.Prefetched += sp.end - sp.off })
			}
			want = subtract(want, got)
		}
	}
	return want, attr, nil
}

// overlaps reports whether sp overlaps any of sps.
func overlaps(sp span, sps []span) bool {
	return len(intersect(sp, sps)) > 0
}

// intersect returns the parts of sps (sorted, apart) within sp.
func intersect(sp span, sps []span) []span {
	var out []span
	for _, x := range sps {
		if lo, hi := max(x.off, sp.off), min(x.end, sp.end); lo < hi {
			out = append(out, span{lo, hi})
		}
	}
	return out
}

// subtract returns sps (sorted, apart) without sp.
func subtract(sps []span, sp span) []span {
	var out []span
	for _, x := range sps {
		if x.end <= sp.off || x.off >= sp.end {
			out = append(out, x)
			continue
		}
		if x.off < sp.off {
			out = append(out, span{x.off, sp.off})
		}
		if x.end > sp.end {
			out = append(out, span{sp.end, x.end})
		}
	}
	return out
}
