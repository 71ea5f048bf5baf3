package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// Batches. Records that only say "fetch this file's current state" (a write
// without data, a setattr without values) are not applied where they stand:
// the batch notes the file and applies the namespace records after them at
// once. When the batch's records are done, every noted file is fetched once
// (its attributes, xattrs and first contents in one round trip), by several
// workers at once; new contents go into anonymous working copies, which one
// syncfs makes durable before they are renamed over their files. Commit's
// syncfs then makes the renames and the position durable.
//
// Fetching later than the record stood changes nothing the standby ends
// with: a fetch always brings the master's current state, which is at least
// as new as any record of the batch, and records after it in the batch
// touched the old copy, which the fetched one replaces whole.
const (
	// flushWorkers bounds the fetches a batch has in flight.
	flushWorkers = 16
	// flushChunk bounds the files prepared before one syncfs (and so the
	// descriptors held).
	flushChunk = 512
	// maxRanges bounds the separate write ranges noted for a file (ranges
	// that touch or overlap are merged); beyond it the whole file is
	// fetched by delta, which reads and checksums all of it on both nodes.
	maxRanges = 64
	// holdBytes and maxHold: a batch whose whole-file deltas covered
	// holdBytes or more asks the receiver to let records gather for twice
	// as long as it took, up to maxHold, before the next batch (Hold).
	holdBytes = 16 << 20
	maxHold   = time.Second
)

// holdFor is how long records should gather after a batch whose
// whole-file deltas covered delta bytes and took took: a delta reads and
// checksums the whole file on both nodes, however little was written, so
// rewrites of a large file that come in a stream are coalesced (one delta
// for all the writes of the hold) instead of each costing a whole read.
// Busy with large deltas at most a third of the time, the applier leaves
// the CPU to the writers; small files never wait.
func holdFor(delta uint64, took time.Duration) time.Duration {
	if delta < holdBytes || took <= 0 {
		return 0
	}
	return min(2*took, maxHold)
}

// Hold tells the receiver how long to let records gather before the next
// batch (see holdFor): what is left of the hold the last batch asked for.
func (a *FSApplier) Hold() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return max(time.Until(a.holdUntil), 0)
}

// span is a range of a file, [off, end).
type span struct{ off, end uint64 }

// writeSpan returns the range a write record names, and false for a write
// without a known range (the whole file).
func writeSpan(rec Record) (span, bool) {
	if rec.Len == 0 || rec.Off+rec.Len < rec.Off {
		return span{}, false
	}
	return span{rec.Off, rec.Off + rec.Len}, true
}

// pendingFile is a file a batch fetches at its end.
type pendingFile struct {
	share   uint64
	file    fileid.Stamp
	seq     uint64 // the first record that deferred it (for errors)
	op      Op
	content bool    // contents changed (write): fetch them with the metadata
	whole   bool    // a write without a range: the whole file, by delta
	ranges  []span  // else the ranges written
	meta    bool    // attributes or xattrs changed (setattr without values)
	dropped bool    // removed later in the batch
	delta   uint64  // bytes covered by the whole-file delta (set by the fetch)
	touches []touch // the batch's records that change the file (set by flush, for prefetches)
}

// pending is the deferred part of a batch.
type pending struct {
	files   map[fileid.Stamp]*pendingFile
	order   []*pendingFile
	touches map[fileid.Stamp][]touch // the batch's records that change a file, by file
}

// defers reports whether note defers rec: it only asks for the file's
// current state.
func (b *pending) defers(rec Record) bool {
	return rec.Op == OpWrite && rec.Flags&FlagInline == 0 || rec.Op == OpSetAttr && rec.AttrMask == 0
}

// note defers rec if it only asks for the file's current state, and reports
// whether it did.
func (b *pending) note(rec Record) bool {
	if !b.defers(rec) {
		return false
	}
	meta := rec.Op == OpSetAttr
	p := b.files[rec.File]
	if p == nil {
		p = &pendingFile{share: rec.Share, file: rec.File, seq: rec.Seq, op: rec.Op}
		b.files[rec.File] = p
		b.order = append(b.order, p)
	}
	if meta {
		p.meta = true
		return true
	}
	p.content = true
	if p.whole {
		return true
	}
	sp, ok := writeSpan(rec)
	if !ok {
		p.whole, p.ranges = true, nil
		return true
	}
	// Kept merged: a stream of writes that follow each other (a large
	// file written through NFS) stays one range however long.
	p.ranges = mergeSpans(append(p.ranges, sp))
	if len(p.ranges) > maxRanges {
		p.whole, p.ranges = true, nil
	}
	return true
}

// drop forgets a file removed on the standby later in the batch.
func (b *pending) drop(st fileid.Stamp) bool {
	p := b.files[st]
	if p == nil || p.dropped {
		return false
	}
	p.dropped = true
	delete(b.files, st)
	return true
}

// removed tells the index and the running batch that st is gone.
func (a *FSApplier) removed(st fileid.Stamp) {
	a.cfg.Tree.Removed(st)
	if c := a.inline.get(st); c != nil {
		a.inline.forget([]*inlineCopy{c}) // its writes went with it
	}
	if a.cur != nil && a.cur.drop(st) {
		a.count(func(s *FSApplyStats) { s.Vanished++ })
	}
}

// ApplyBatch implements BatchApplier.
func (a *FSApplier) ApplyBatch(ctx context.Context, recs []Record, f Fetcher) (int, error) {
	b := &pending{files: make(map[fileid.Stamp]*pendingFile), touches: touches(recs)}
	a.cur = b
	defer func() { a.cur = nil }()
	n := 0
	var applyErr error
	if a.log.Enabled(ctx, slog.LevelDebug) {
		for _, r := range recs {
			a.log.Debug("journal apply: record", "seq", r.Seq, "op", r.Op, "file", r.File, "parent", r.Parent, "name", r.Name,
				"newparent", r.NewParent, "newname", r.NewName, "flags", r.Flags, "off", r.Off, "len", r.Len, "data", len(r.Data), "mask", r.AttrMask)
		}
	}
	defer func() { a.inline.closeAll() }() // what a failed batch left unpublished
	for _, rec := range recs {
		if done, err := a.setAttrInline(rec); done {
			if err != nil {
				applyErr = err
				break
			}
			n++
			continue
		}
		inlineWrite := rec.Op == OpWrite && rec.Flags&FlagInline != 0
		if !inlineWrite && !b.defers(rec) {
			// A record must not overtake the inline writes before it.
			if err := a.publishInline(a.inline.touched(rec)); err != nil {
				return 0, err
			}
		}
		if rec.Op == OpPrune && len(b.order) > 0 {
			// The fetches deferred so far are done before a prune:
			// each belongs to a record before it, and its file may be
			// the prune's to remove (it is then found gone) or lie in
			// a directory the prune removes. Rescans, which prune,
			// emit their fetches after all their namespace records, so
			// this is rare.
			if err := a.flush(ctx, b, f); err != nil {
				return 0, err
			}
			// The prune, and the records after it, change files in
			// place: a replay of the patches must not undo them.
			if err := a.settlePatches(); err != nil {
				return 0, err
			}
			b = &pending{files: make(map[fileid.Stamp]*pendingFile), touches: b.touches}
			a.cur = b
		}
		if !b.note(rec) {
			if err := a.applyNow(ctx, rec, f); err != nil {
				applyErr = err
				break
			}
		}
		n++
	}
	// The inline copies first: a deferred fetch of ranges patches the
	// file as the batch's inline writes left it.
	if err := a.publishInline(a.inline.all()); err != nil {
		return 0, err
	}
	if err := a.flush(ctx, b, f); err != nil {
		// Nothing of the batch counts as applied: it is applied again.
		return 0, err
	}
	if n > 0 {
		a.forgetPrefetched(recs[n-1].Seq)
	}
	a.count(func(s *FSApplyStats) { s.Records += uint64(n) })
	return n, applyErr
}

// prepared is a pending file made ready to publish.
type prepared struct {
	ref   *fileid.Ref
	work  int    // the new copy to rename over ref, or -1
	patch *patch // or the patch to write into it (patch_linux.go)
	err   error
}

func (p *prepared) close() {
	if p.work >= 0 {
		unix.Close(p.work)
	}
	if p.ref != nil {
		p.ref.Close()
	}
}

// flush fetches and applies the deferred files of b, in chunks.
func (a *FSApplier) flush(ctx context.Context, b *pending, f Fetcher) error {
	files := slices.DeleteFunc(slices.Clone(b.order), func(p *pendingFile) bool { return p.dropped })
	for _, p := range files {
		p.touches = b.touches[p.file]
	}
	start := time.Now()
	for rest := files; len(rest) > 0; {
		chunk := rest[:min(len(rest), flushChunk)]
		rest = rest[len(chunk):]
		if err := a.flushChunk(ctx, chunk, f); err != nil {
			return err
		}
	}
	var delta uint64
	for _, p := range files {
		delta += p.delta
	}
	if hold := holdFor(delta, time.Since(start)); hold > 0 {
		a.mu.Lock()
		a.holdUntil = time.Now().Add(hold)
		a.mu.Unlock()
	}
	return nil
}

func (a *FSApplier) flushChunk(ctx context.Context, files []*pendingFile, f Fetcher) error {
	res := make([]prepared, len(files))
	for i := range res {
		res[i].work = -1
	}
	defer func() {
		for i := range res {
			res[i].close()
		}
	}()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start, before := time.Now(), a.Stats() // for the debug log below
	a.patchHeld.Store(0)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(flushWorkers, len(files)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(files) || wctx.Err() != nil {
					return
				}
				res[i] = a.prepare(wctx, files[i], f)
				if res[i].err != nil {
					cancel()
				}
			}
		})
	}
	wg.Wait()
	copies, patches := false, false
	var firstErr error
	for i := range res {
		err := res[i].err
		if err != nil && (firstErr == nil || errors.Is(firstErr, context.Canceled) && !errors.Is(err, context.Canceled)) {
			firstErr = err // the cause, not a fetch it cut short
		}
		copies = copies || res[i].work >= 0
		patches = patches || res[i].patch != nil
	}
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !copies && !patches {
		return nil
	}
	// The patches are in the redo log, and the new copies are durable,
	// before any file is patched or any copy renamed over its file.
	fetched := time.Now()
	if err := a.writePatches(res); err != nil {
		return err
	}
	if copies {
		if err := unix.Syncfs(a.syncFD); err != nil {
			return fmt.Errorf("journal: fs applier: syncfs: %w", err)
		}
	}
	if a.log.Enabled(ctx, slog.LevelDebug) {
		// Where a batch's apply time goes (scripts/bench replicate --debug).
		// bytes: fetched meanwhile, prefetches included; prefetched: of
		// those the batch wrote, the bytes prefetches brought.
		now := a.Stats()
		a.log.Debug("journal apply: files fetched", "files", len(files), "bytes", now.BytesFetched-before.BytesFetched, "prefetched", now.Prefetched-before.Prefetched,
			"fetch_ms", fetched.Sub(start).Milliseconds(), "syncfs_ms", time.Since(fetched).Milliseconds())
	}
	for i, p := range files {
		r := &res[i]
		var err error
		switch {
		case r.patch != nil:
			err = a.applyPatch(r)
		case r.work >= 0:
			err = a.publish(r.ref.Dir, r.work, r.ref.Name)
		}
		if err != nil {
			return fmt.Errorf("journal: apply %s of %s (record %d): %s: %w", p.op, p.file, p.seq, r.ref.Rel, err)
		}
	}
	return nil
}

// prepare fetches one pending file and applies it: metadata in place,
// contents into a working copy (returned to be published) or, for a file
// with several links, in place.
func (a *FSApplier) prepare(ctx context.Context, p *pendingFile, f Fetcher) prepared {
	r, err := a.prepareFile(ctx, p, f)
	if errors.Is(err, ErrNotFound) || errors.Is(err, fileid.ErrStale) {
		// The master's file is gone (a later record removes it here), or
		// this batch's records already removed or replaced it here (a
		// rename over it removes it without a record of its own).
		a.count(func(s *FSApplyStats) { s.Vanished++ })
		a.log.Debug("journal apply: file gone on the master", "seq", p.seq, "op", p.op, "file", p.file)
		r.close()
		return prepared{work: -1}
	}
	if err != nil {
		r.close()
		return prepared{work: -1, err: fmt.Errorf("journal: apply %s of %s (record %d): %w", p.op, p.file, p.seq, err)}
	}
	a.log.Debug("journal apply: fetched", "seq", p.seq, "file", p.file, "whole", p.whole, "ranges", len(p.ranges), "meta", p.meta, "new_copy", r.work >= 0)
	return r
}

func (a *FSApplier) prepareFile(ctx context.Context, p *pendingFile, f Fetcher) (prepared, error) {
	r := prepared{work: -1}
	if !p.content {
		return r, a.setAttr(ctx, Record{Op: OpSetAttr, Share: p.share, File: p.file}, f)
	}
	ref, err := a.cfg.Tree.Resolve(p.file)
	if err != nil {
		return r, err
	}
	r.ref = ref
	src, err := unix.Openat(ref.Dir, ref.Name, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return r, fmt.Errorf("open %s: %w", ref.Rel, err)
	}
	defer unix.Close(src)
	var sb unix.Stat_t
	if err := unix.Fstat(src, &sb); err != nil {
		return r, fmt.Errorf("stat %s: %w", ref.Rel, err)
	}
	if sb.Mode&unix.S_IFMT != unix.S_IFREG {
		return r, fmt.Errorf("write to %s: not a regular file", ref.Rel)
	}
	if n := spanBytes(p.ranges); !p.whole && n <= patchMax && !appendsOnly(p.ranges, sb.Size) && a.patchHeld.Add(int64(n)) <= patchChunkMax {
		// A few ranges: patched in place once every fetch is in, through
		// the redo log (patch_linux.go), rather than in a copy.
		pt := &patch{file: p.file}
		if err := a.fetchContents(ctx, f, p, pt, src); err != nil {
			return r, fmt.Errorf("%s: %w", ref.Rel, err)
		}
		r.patch = pt
		return r, nil
	}
	if sb.Nlink > 1 {
		// Other links: patched in place (a rename would split them).
		if err := a.fetchContents(ctx, f, p, fdSink(src), src); err != nil {
			return r, fmt.Errorf("%s: %w", ref.Rel, err)
		}
		return r, nil
	}
	work, err := a.workingCopy(ref.Dir, src, ref.Rel, sb.Size)
	if err != nil {
		return r, err
	}
	r.work = work
	if err := a.fetchContents(ctx, f, p, fdSink(work), src); err != nil {
		return r, fmt.Errorf("%s: %w", ref.Rel, err)
	}
	if err := unix.Fsetxattr(work, fileid.XattrName, p.file.MarshalBinary(), 0); err != nil {
		return r, fmt.Errorf("stamp the new copy of %s: %w", ref.Rel, err)
	}
	return r, nil
}

// fetchContents patches work to the master's contents and metadata: the
// ranges written if all of the file's writes had one, else the whole file
// by delta. One fetch brings the attributes and xattrs with a piece of
// contents, so a file up to MaxFetchData takes one round trip. The ranges
// are fetched fetchAhead pieces at a time from the start (a 16 MiB file
// written through NFS is four pieces in flight at once); a delta's first
// piece tells the size that bounds the rest. The checksums are read from
// base, which holds what work held before (the file itself, whose pages
// are more likely cached than a new clone's).
func (a *FSApplier) fetchContents(ctx context.Context, f Fetcher, p *pendingFile, work sink, base int) error {
	var rep *FetchReply
	if p.whole {
		// By delta: the size the first piece tells bounds the rest.
		first := span{0, uint64(MaxFetchData)}
		var err error
		if rep, err = a.fetchPiece(ctx, f, p, work, base, first, true, true); err != nil {
			return err
		}
		if err := checkAttr(rep); err != nil {
			return err
		}
		p.delta = rep.Attr.Size
		if err := a.fetchPieces(ctx, f, p, work, base, pieces([]span{{first.end, rep.Attr.Size}}), true, nil); err != nil {
			return err
		}
	} else {
		// The ranges written (kept merged by note) are known: what was
		// prefetched is taken (prefetch_linux.go), every piece of the
		// rest is fetched at once, the first with the attributes and
		// xattrs; the master leaves out what lies beyond its file's end.
		rest, pre, err := a.usePrefetched(ctx, f, p, work, p.ranges)
		switch {
		case err != nil:
		case len(rest) > 0:
			err = a.fetchPieces(ctx, f, p, work, base, pieces(rest), false, &rep)
		case pre != nil:
			rep = pre
		default:
			rep, err = a.fetch(ctx, f, &FetchRequest{Share: p.share, File: p.file, What: FetchAttr | FetchXattrs})
		}
		if err != nil {
			return err
		}
		if err := checkAttr(rep); err != nil {
			return err
		}
	}
	return work.finish(rep.Attr, rep.Xattrs)
}

// appendsOnly reports whether ranges (merged, sorted) all lie at or beyond
// size, the standby file's: the batch only appends to it. Such a file is
// copied, not patched: a clone shares all of it (a file grown by appends
// has few extents, so the clone is cheap) and a patch would write the
// appended bytes twice, into the redo log and the file (perf, the
// replicate benchmark's new 16 MiB files: the redo log took 6 % of the
// standby's CPU, the clones 0.5 %).
func appendsOnly(ranges []span, size int64) bool {
	return len(ranges) > 0 && ranges[0].off >= uint64(size)
}

// spanBytes is the bytes spans cover.
func spanBytes(spans []span) uint64 {
	var n uint64
	for _, sp := range spans {
		n += sp.end - sp.off
	}
	return n
}

// checkAttr checks the reply that was to bring a regular file's attributes.
func checkAttr(rep *FetchReply) error {
	if rep == nil || rep.What&FetchAttr == 0 {
		return errors.New("the master's reply has no attributes")
	}
	if rep.Attr.Mode&ModeType != ModeReg {
		return fmt.Errorf("not a regular file on the master (mode %#o)", rep.Attr.Mode)
	}
	return nil
}

// pieces splits spans into pieces of at most MaxFetchData.
func pieces(spans []span) []span {
	var out []span
	for _, sp := range spans {
		for off := sp.off; off < sp.end; off += min(uint64(MaxFetchData), sp.end-off) {
			out = append(out, span{off, off + min(uint64(MaxFetchData), sp.end-off)})
		}
	}
	return out
}

// fetchAhead bounds the pieces of one file fetched at once.
const fetchAhead = 4

// fetchPieces fetches pcs, fetchAhead at a time; the first error stops
// the others. With attr set, the first piece also brings the attributes
// and xattrs, and *attr is its reply.
func (a *FSApplier) fetchPieces(ctx context.Context, f Fetcher, p *pendingFile, work sink, base int, pcs []span, delta bool, attr **FetchReply) error {
	if len(pcs) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range min(fetchAhead, len(pcs)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(pcs) || ctx.Err() != nil {
					return
				}
				withAttr := attr != nil && i == 0
				rep, err := a.fetchPiece(ctx, f, p, work, base, pcs[i], delta, withAttr)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				if withAttr {
					*attr = rep
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// fetchPiece fetches the piece pc of p's file (with its attributes and
// xattrs if withAttr) and writes what it brings into work.
func (a *FSApplier) fetchPiece(ctx context.Context, f Fetcher, p *pendingFile, work sink, base int, pc span, delta, withAttr bool) (*FetchReply, error) {
	n := pc.end - pc.off
	q := &FetchRequest{Share: p.share, File: p.file, What: FetchData, Off: pc.off, Len: n}
	if withAttr {
		q.What |= FetchAttr | FetchXattrs
	}
	if delta {
		bs := a.cfg.BlockSize
		summer, err := NewSummer(a.key)
		if err != nil {
			return nil, err
		}
		q.BlockSize, q.Key = bs, a.key
		if q.Sums, err = summer.BlockSums(fdReaderAt(base), pc.off, n, bs, make([]byte, bs)); err != nil {
			return nil, err
		}
	}
	rep, err := a.fetch(ctx, f, q)
	if err != nil {
		return nil, err
	}
	for _, b := range rep.Blocks {
		if err := work.writeAt(b.Data, b.Off); err != nil {
			return nil, err
		}
	}
	if !withAttr && !work.keeps() && rep.release != nil {
		// Written: nothing refers to the reply's buffer any more.
		rep.release()
		return nil, nil
	}
	return rep, nil
}

// writeAt writes data at off in fd.
func writeAt(fd int, data []byte, off uint64) error {
	if _, err := unix.Pwrite(fd, data, int64(off)); err != nil {
		return fmt.Errorf("write %d bytes at %d: %w", len(data), off, err)
	}
	return nil
}

// mergeSpans sorts spans and merges those that overlap or touch.
func mergeSpans(in []span) []span {
	s := slices.Clone(in)
	slices.SortFunc(s, func(x, y span) int {
		switch {
		case x.off < y.off:
			return -1
		case x.off > y.off:
			return 1
		}
		return 0
	})
	var out []span
	for _, sp := range s {
		if n := len(out); n > 0 && sp.off <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, sp.end)
			continue
		}
		out = append(out, sp)
	}
	return out
}
