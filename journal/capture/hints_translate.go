package capture

import (
	"ftnas/appliance/fileid"
	"ftnas/journal"
	"ftnas/kernel/changelog"
)

// The translator's side of the write hints (see hints.go): which process
// changed each dirty file's contents, and what flush emits for a file with
// hints.

// Where a dirty file's content changes of the batch came from.
const (
	srcNasd      uint8 = 1 << iota // content events of the hinting process only
	srcOther                       // another process, or one not told
	srcPulled                      // hints ready without an event in the batch
	srcAttrNasd                    // attribute events of the hinting process
	srcAttrOther                   // attribute events of another process
)

// hintState is what the translator keeps for the hints.
type hintState struct {
	reg *WriteHints
	// own reports whether a change's pid (a thread ID) is the hinting
	// process's (the answers are kept until the batch ends).
	own     func(pid int) bool
	ownSeen map[int]bool

	src     map[*node]uint8
	created map[fileid.Stamp]bool // files this batch made new to the standby
	removed map[fileid.Stamp]bool // names this batch removed on the standby
	// shipped is each file's ctime when its hints were last shipped with
	// all of its metadata: the event of a change shipped so, read after
	// it, needs no record.
	shipped      map[*node]int64
	shippedSwept int
	// rescans is TranslateStats.Rescans when the last batch ended: a
	// batch that rescanned ships no hints (the rescan marks files whose
	// contents changed unseen).
	rescans   uint64
	rescanned bool
	// fidlessAttr: an attribute event of the batch named no handle (its
	// file's source is unknown).
	fidlessAttr bool
}

func newHintState(reg *WriteHints, own func(pid int) bool) *hintState {
	return &hintState{
		reg: reg, own: own, ownSeen: map[int]bool{},
		src: map[*node]uint8{}, created: map[fileid.Stamp]bool{}, removed: map[fileid.Stamp]bool{},
		shipped: map[*node]int64{},
	}
}

// maxInlineFile is the largest file whose written bytes go in the records
// (inline writes): the standby applies each into a new copy of the file,
// made durable before it replaces it. Larger files get write records with
// the ranges written and no data: the standby fetches just those ranges at
// the end of its batch (one round trip for all of a file's writes, no
// whole-file checksums).
const maxInlineFile = 1 << 20

// timesVolume is a Volume that also reads a file's times, for the explicit
// setattr that follows a file's hints.
type timesVolume interface {
	InodeTimes(fid string) (o Obj, atime, mtime int64, ok bool, err error)
}

func (h *hintState) ownPid(pid int) bool {
	if pid <= 0 {
		return false
	}
	own, ok := h.ownSeen[pid]
	if !ok {
		own = h.own(pid)
		h.ownSeen[pid] = own
	}
	return own
}

// hintChange notes, after change() translated a content or attribute
// change, which process made it.
func (t *translator) hintChange(c changelog.Change) {
	h := t.hints
	n := t.byFID(c.FID)
	if c.Op == changelog.OpAttrib {
		switch {
		case n == nil:
			h.fidlessAttr = h.fidlessAttr || c.FID == ""
		case t.dirtyKind[n]&dirtyAttr == 0:
		case h.ownPid(c.Pid):
			// nasd changes mode, owner and times (NFS SETATTR) and its
			// own Stamp xattr: an explicit setattr carries them all.
			h.src[n] |= srcAttrNasd
		default:
			h.src[n] |= srcAttrOther
		}
		return
	}
	if n == nil || t.dirtyKind[n]&dirtyContent == 0 {
		return // not found by handle: its file is fetched (src stays 0)
	}
	if h.ownPid(c.Pid) {
		h.src[n] |= srcNasd
	} else {
		h.src[n] |= srcOther
	}
}

// hintNode is the model's regular file st, or nil.
func (t *translator) hintNode(st fileid.Stamp) *node {
	n := t.m.byID[st.ID]
	if n == nil || n.st != st || !n.isReg() || !t.inModel(n) {
		return nil
	}
	return n
}

// hintsBegin starts flush: notes the files the batch's records made new or
// removed, and marks dirty the files whose hints are ready without an
// event (it came in an earlier batch, or was lost with an overflow).
func (t *translator) hintsBegin() {
	h := t.hints
	h.rescanned = t.stats.Rescans != h.rescans
	for _, r := range t.out {
		switch r.Op {
		case journal.OpCreate:
			h.created[r.File] = true
		case journal.OpRemove:
			h.removed[r.File] = true
		}
	}
	for st := range h.removed {
		// Gone, or made anew (moved out of the shares and back): what
		// was known of its contents is void.
		if h.created[st] || t.hintNode(st) == nil {
			h.reg.forget(st)
		}
	}
	for _, st := range h.reg.ready(func(st fileid.Stamp) bool { return t.hintNode(st) != nil }) {
		n := t.hintNode(st)
		t.markDirty(n, dirtyContent)
		h.src[n] |= srcPulled
	}
}

// hintsEnd ends flush.
func (t *translator) hintsEnd() {
	h := t.hints
	clear(h.src)
	clear(h.created)
	clear(h.removed)
	clear(h.ownSeen)
	h.rescans = t.stats.Rescans
	h.fidlessAttr = false
	h.reg.sweep(func(st fileid.Stamp) bool { return t.hintNode(st) != nil })
	if len(h.shipped) > 2*h.shippedSwept+1024 {
		for n := range h.shipped {
			if !t.inModel(n) {
				delete(h.shipped, n)
			}
		}
		h.shippedSwept = len(h.shipped)
	}
}

// shipHints emits the records of a dirty file with hints and reports
// whether it did (or found none needed); false: flush emits what it does
// without hints (a fetch).
func (t *translator) shipHints(n *node, k dirtyKind) bool {
	if !n.isReg() {
		return false
	}
	h := t.hints
	src := h.src[n]
	if k&dirtyContent == 0 {
		return t.bornAttrs(n, src)
	}
	if src&srcOther != 0 || src&(srcNasd|srcPulled) == 0 || h.rescanned {
		h.reg.fetched(n.st)
		delete(h.shipped, n)
		return false
	}
	// Read before the hints are taken: every change it shows has either
	// ended before the take (and is shipped now) or is still in flight
	// then (and keeps the file's state from counting as shipped).
	var o Obj
	var atime, mtime int64
	var alive, times bool
	var err error
	if tv, ok := t.vol.(timesVolume); ok {
		o, atime, mtime, alive, err = tv.InodeTimes(n.fid)
		times = true
	} else {
		o, alive, err = t.vol.Inode(n.fid)
	}
	if err != nil || !alive || o.Mode&journal.ModeType != journal.ModeReg {
		h.reg.fetched(n.st)
		delete(h.shipped, n)
		return false // flush reads it again and decides
	}
	created := h.created[n.st]
	tk, ok := h.reg.take(n.st, created)
	if ok && !tk.lost && len(tk.hints) == 0 && !tk.pending && !created {
		ok = false // nothing told since it was shipped
	}
	if !ok {
		if c, seen := h.shipped[n]; seen && c == o.Ctime {
			return true // the event of a change already shipped
		}
		delete(h.shipped, n)
		return false
	}
	if tk.lost {
		h.reg.fetched(n.st)
		delete(h.shipped, n)
		return false
	}
	at := t.dirtyTime[n]
	if !inlineFits(o.Size, tk.hints) {
		if t.emitRanges(n, tk.hints) {
			// The fetch of the ranges brings the metadata.
			if tk.pending {
				delete(h.shipped, n)
			} else {
				h.shipped[n] = o.Ctime
			}
			return true
		}
	} else {
		t.emitHints(n, tk.hints)
	}
	// Attributes changed by another process, or for reasons not known
	// (xattrs may have changed): fetch them all. A new file (its
	// attributes are the create's) or one whose attributes nasd changed:
	// the values read here.
	fetchAll := !times || h.fidlessAttr || src&srcAttrOther != 0 ||
		!created && k&dirtyAttr != 0 && src&srcAttrNasd == 0
	switch {
	case fetchAll:
		t.emit(journal.Record{Op: journal.OpSetAttr, File: n.st, Time: at})
	case !tk.pending:
		t.emit(journal.Record{
			Op: journal.OpSetAttr, File: n.st, Time: at,
			AttrMask: journal.AttrMode | journal.AttrUID | journal.AttrGID | journal.AttrAtime | journal.AttrMtime,
			Mode:     o.Mode & journal.ModePerm, UID: o.UID, GID: o.GID, Atime: atime, Mtime: mtime,
		})
	}
	if tk.pending {
		// The rest once it has ended (the registry wakes the capture).
		delete(h.shipped, n)
	} else {
		h.shipped[n] = o.Ctime
	}
	return true
}

// inlineFits reports whether a file of size size, written as hs, is small
// enough to take its writes inline, and their data is held.
func inlineFits(size int64, hs []hint) bool {
	if size > maxInlineFile {
		return false
	}
	for _, x := range hs {
		if !x.trunc && (x.data == nil || x.off+x.n > maxInlineFile) {
			return false
		}
	}
	return true
}

// bornAttrs emits the attributes of a file new to the standby that nasd
// made empty (its contents, if any yet, follow with their hints) as
// values, and reports whether it did: nothing else can have set its
// attributes or xattrs unless an attribute event says so.
func (t *translator) bornAttrs(n *node, src uint8) bool {
	h := t.hints
	if !h.created[n.st] || h.rescanned || h.fidlessAttr || src&srcAttrOther != 0 || !h.reg.isBorn(n.st) {
		return false
	}
	tv, ok := t.vol.(timesVolume)
	if !ok {
		return false
	}
	o, atime, mtime, alive, err := tv.InodeTimes(n.fid)
	if err != nil || !alive || o.Mode&journal.ModeType != journal.ModeReg {
		return false
	}
	t.emit(journal.Record{
		Op: journal.OpSetAttr, File: n.st, Time: t.dirtyTime[n],
		AttrMask: journal.AttrMode | journal.AttrUID | journal.AttrGID | journal.AttrAtime | journal.AttrMtime,
		Mode:     o.Mode & journal.ModePerm, UID: o.UID, GID: o.GID, Atime: atime, Mtime: mtime,
	})
	return true
}

// emitRanges emits a file's truncates with their sizes and its writes as
// ranges to fetch (merged where they touch), and reports whether there
// was a write. Truncates are applied at once, ranges at the end of the
// standby's batch with the master's bytes then: every byte not written is
// as the truncates, in order, left it on both nodes.
func (t *translator) emitRanges(n *node, hs []hint) bool {
	at := t.dirtyTime[n]
	var spans [][2]int64
	for _, x := range hs {
		if x.trunc {
			t.emit(journal.Record{Op: journal.OpTruncate, File: n.st, Size: uint64(x.size), Time: at})
			continue
		}
		sp := [2]int64{x.off, x.off + x.n}
		if k := len(spans) - 1; k >= 0 && sp[0] <= spans[k][1] && sp[1] >= spans[k][0] {
			spans[k] = [2]int64{min(spans[k][0], sp[0]), max(spans[k][1], sp[1])}
			continue
		}
		spans = append(spans, sp)
	}
	for _, sp := range spans {
		t.emit(journal.Record{Op: journal.OpWrite, File: n.st, Off: uint64(sp[0]), Len: uint64(sp[1] - sp[0]), Time: at})
	}
	return len(spans) > 0
}

// emitHints emits a file's changes in order; writes that follow each other
// on the file go in one record.
func (t *translator) emitHints(n *node, hs []hint) {
	at := t.dirtyTime[n]
	for i := 0; i < len(hs); {
		x := hs[i]
		if x.trunc {
			t.emit(journal.Record{Op: journal.OpTruncate, File: n.st, Size: uint64(x.size), Time: at})
			i++
			continue
		}
		data, j := x.data, i+1
		for j < len(hs) && !hs[j].trunc && hs[j].off == x.off+int64(len(data)) && len(data)+len(hs[j].data) <= journal.MaxInline {
			data = append(data[:len(data):len(data)], hs[j].data...)
			j++
		}
		t.emit(journal.Record{Op: journal.OpWrite, Flags: journal.FlagInline, File: n.st,
			Off: uint64(x.off), Len: uint64(len(data)), Data: data, Time: at})
		i = j
	}
}
