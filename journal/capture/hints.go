package capture

import (
	"sync"

	"ftnas/appliance/fileid"
)

// Write hints: the master's own file server (nasd's NFS server) tells the
// capture what it writes, so a content change it made is shipped with its
// data instead of being fetched by the standby at the end of its batch.
//
// The server calls BeginChange before each syscall that changes a file's
// contents and one of the End calls after it, with the file's Stamp. The
// capture ships a file's hints (inline writes and truncates, in the order
// they were made, then an explicit setattr; for a large file, or a write
// whose data was not kept, the ranges written, which the standby fetches
// alone) only when it can prove they are all that changed its contents
// since the standby last had them:
//
//   - every content event of the file in the batch came from nasd (another
//     process's change, a rescan, a change without a handle: fetched);
//   - the file was not new to the model in the batch, or nasd made it
//     empty (Born): a file new to the standby is empty there;
//   - no hint was lost (too many for one file, a failed or partial
//     syscall, a change the server could not describe, two changes of one
//     file in flight at once, whose order is unknown). A write larger than
//     DefaultMaxHintWrite, or beyond DefaultMaxHintBytes held in all, keeps
//     only its range.
//
// Otherwise the file is fetched as without hints, and its hints are
// dropped. A fetch reads the master's file when the standby applies it, so
// it may already hold bytes of a change still in flight: such a change's
// hint is never shipped after it (the file is marked lost, and fetched
// again once the change has ended).
//
// Hints whose change is still in flight wait: the ones before them are
// shipped, the rest once it has ended (End wakes the capture).
//
// A file's state shipped by hints is not taken as shipped in full by a
// rescan (the model's ctime stays the last fetch's): after lost events,
// such files are fetched again. Only the event of a change already shipped,
// read while the file's ctime is still the one read before its hints were
// taken, gives no record.
//
// Every content change nasd makes to a replicated file goes through
// BeginChange: a change of nasd's that is not told would be taken for one
// already shipped.

// Bounds of WriteHints.
const (
	// DefaultMaxHintWrite is the largest write shipped with its data.
	DefaultMaxHintWrite = 64 << 10
	// DefaultMaxHintBytes bounds the data held for all files.
	DefaultMaxHintBytes = 8 << 20
	// maxHintsPerFile bounds the hints held for one file.
	maxHintsPerFile = 1024
	// maxHintAbsent is how many batch ends the hints of a file the model
	// does not have are kept: the capture may not have seen its creation
	// yet. A file dropped this way is fetched when the model gets it.
	maxHintAbsent = 64
)

// HintStats count what WriteHints saw and what became of it.
type HintStats struct {
	Writes    uint64 // writes told
	Truncates uint64 // truncates told
	Unknown   uint64 // changes told without a description (fetched)
	RangeOnly uint64 // writes kept without their data (large, or no room): their ranges are fetched
	Lost      uint64 // times a file's hints were dropped for a fetch (over a bound, unknown, overlapping)
	Shipped   uint64 // hints shipped inline
	Fetched   uint64 // files fetched although they had hints (another writer, a rescan, a lost hint)
	Expired   uint64 // files dropped unseen by the capture
	Files     int    // files with hints now
	Bytes     int    // data held now
}

// WriteHints holds what the master's own file server wrote, until the
// capture ships it. Safe for concurrent use. While no capture is attached
// (New with it in Config.Hints, until Close) it records nothing: a capture
// starts from an empty model and reads everything anyway.
type WriteHints struct {
	maxWrite, maxBytes int

	mu       sync.Mutex
	attached bool
	gen      uint64 // attachments so far
	wake     func()
	files    map[fileid.Stamp]*hintFile
	bytes    int
	next     uint64
	stats    HintStats
}

// hint is one content change of a file.
type hint struct {
	id    uint64
	done  bool
	trunc bool
	off   int64  // write: where
	n     int64  // write: how many bytes
	size  int64  // truncate: the new size
	data  []byte // write: the bytes, if held (else only the range is known)
}

// hintFile is what is known of one file's changes since they were last
// shipped.
type hintFile struct {
	hints   []hint // in the order made; only while not lost
	pending int    // changes begun, not ended
	lost    bool   // fetch it (hints dropped)
	born    bool   // nasd made it empty: all its contents are in hints
	absent  int    // batch ends seen while the model lacked it
	waited  bool   // the capture waits for its pending changes to end
	gone    bool   // the model lost it: dropped once nothing is in flight
}

// NewWriteHints returns an empty registry with the default bounds.
func NewWriteHints() *WriteHints {
	return &WriteHints{maxWrite: DefaultMaxHintWrite, maxBytes: DefaultMaxHintBytes, files: map[fileid.Stamp]*hintFile{}}
}

// attach starts recording for a capture; wake is called (without locks
// held) when a change the capture waits for has ended. It returns the
// attachment for detach.
func (h *WriteHints) attach(wake func()) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	h.attached, h.wake = true, wake
	clear(h.files)
	h.bytes = 0
	return h.gen
}

// detach stops recording and drops everything held, unless another
// capture attached since gen.
func (h *WriteHints) detach(gen uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen != h.gen {
		return
	}
	h.attached, h.wake = false, nil
	clear(h.files)
	h.bytes = 0
}

// Stats returns the counters.
func (h *WriteHints) Stats() HintStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.stats
	s.Files, s.Bytes = len(h.files), h.bytes
	return s
}

// BeginChange is called before a syscall that changes the contents of the
// file st; it returns the change's id for the End call that must follow.
func (h *WriteHints) BeginChange(st fileid.Stamp) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.attached || st.IsZero() {
		return 0
	}
	h.next++
	e := h.files[st]
	if e == nil {
		e = &hintFile{}
		h.files[st] = e
	}
	e.absent = 0
	if !e.lost && (e.pending > 0 || len(e.hints) >= maxHintsPerFile) {
		// Two changes in flight at once: their order is unknown.
		h.loseLocked(e)
	}
	e.pending++
	if !e.lost {
		e.hints = append(e.hints, hint{id: h.next})
	}
	return h.next
}

// EndWrite tells that the change id wrote data (all of it) at off. data is
// copied if it is small enough and there is room; else only its range is
// kept (the standby fetches that range).
func (h *WriteHints) EndWrite(st fileid.Stamp, id uint64, off int64, data []byte) {
	h.end(st, id, func(e *hintFile, x *hint) bool {
		h.stats.Writes++
		if len(data) == 0 || off < 0 || off+int64(len(data)) < off {
			return false
		}
		x.off, x.n = off, int64(len(data))
		if len(data) <= h.maxWrite && h.bytes+len(data) <= h.maxBytes {
			x.data = append([]byte(nil), data...)
			h.bytes += len(data)
		} else {
			h.stats.RangeOnly++
		}
		return true
	})
}

// EndTruncate tells that the change id set the file's size.
func (h *WriteHints) EndTruncate(st fileid.Stamp, id uint64, size int64) {
	h.end(st, id, func(e *hintFile, x *hint) bool {
		h.stats.Truncates++
		if size < 0 {
			return false
		}
		x.trunc, x.size = true, size
		return true
	})
}

// EndUnknown tells that the change id failed, was partial, or cannot be
// described: the file is fetched.
func (h *WriteHints) EndUnknown(st fileid.Stamp, id uint64) {
	h.end(st, id, func(*hintFile, *hint) bool {
		h.stats.Unknown++
		return false
	})
}

// Born tells that nasd created the file st empty: a capture that finds it
// new holds all its contents in hints.
func (h *WriteHints) Born(st fileid.Stamp) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.attached || st.IsZero() {
		return
	}
	e := h.files[st]
	if e == nil {
		e = &hintFile{}
		h.files[st] = e
	}
	e.born = true
}

// end completes the change id of st with fill (false: lose the file's
// hints).
func (h *WriteHints) end(st fileid.Stamp, id uint64, fill func(e *hintFile, x *hint) bool) {
	h.mu.Lock()
	e := h.files[st]
	if e == nil || id == 0 || e.pending == 0 {
		h.mu.Unlock()
		return // not recording when it began, or dropped meanwhile
	}
	e.pending--
	if !e.lost {
		i := len(e.hints) - 1
		for i >= 0 && e.hints[i].id != id {
			i--
		}
		switch {
		case i < 0:
			h.loseLocked(e)
		case fill(e, &e.hints[i]):
			e.hints[i].done = true
		default:
			h.loseLocked(e)
		}
	} else {
		fill(e, &hint{})
	}
	if e.gone && e.pending == 0 {
		h.dropLocked(st, e)
	}
	var wake func()
	if e.waited && e.pending == 0 {
		e.waited, wake = false, h.wake
	}
	h.mu.Unlock()
	if wake != nil {
		wake()
	}
}

// loseLocked drops e's hints: the file is to be fetched.
func (h *WriteHints) loseLocked(e *hintFile) {
	if e.lost {
		return
	}
	h.stats.Lost++
	for _, x := range e.hints {
		h.bytes -= len(x.data)
	}
	e.hints, e.lost, e.born = nil, true, false
}

// dropLocked forgets st (no change of it in flight).
func (h *WriteHints) dropLocked(st fileid.Stamp, e *hintFile) {
	for _, x := range e.hints {
		h.bytes -= len(x.data)
	}
	delete(h.files, st)
}

// hintTake is what take found of a file.
type hintTake struct {
	hints   []hint // the changes shipped now, in order
	pending bool   // changes are still in flight (after those)
	lost    bool   // fetch it
	born    bool
}

// take removes and returns the leading ended hints of st. A lost file is
// not taken (fetched calls for it), nor one new to the standby (needBorn)
// that nasd did not make empty.
func (h *WriteHints) take(st fileid.Stamp, needBorn bool) (hintTake, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.files[st]
	if e == nil {
		return hintTake{}, false
	}
	r := hintTake{lost: e.lost || needBorn && !e.born, born: e.born}
	if r.lost {
		return r, true
	}
	i := 0
	for i < len(e.hints) && e.hints[i].done {
		i++
	}
	r.hints = e.hints[:i:i]
	for _, x := range r.hints {
		h.bytes -= len(x.data)
	}
	h.stats.Shipped += uint64(i)
	e.hints = append([]hint(nil), e.hints[i:]...)
	r.pending = e.pending > 0
	if len(e.hints) == 0 && e.pending == 0 {
		delete(h.files, st)
	} else {
		e.waited = true
	}
	return r, true
}

// isBorn reports whether nasd made st empty, with nothing lost since.
func (h *WriteHints) isBorn(st fileid.Stamp) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.files[st]
	return e != nil && e.born && !e.lost
}

// fetched tells that st is fetched now: its hints are superseded. Changes
// still in flight may not be shipped after the fetch (it may have read
// their bytes already, and later ones): the file stays lost, to be fetched
// again once they have ended.
func (h *WriteHints) fetched(st fileid.Stamp) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.files[st]
	if e == nil {
		return
	}
	h.stats.Fetched++
	if e.pending == 0 {
		h.dropLocked(st, e)
		return
	}
	if !e.lost {
		h.loseLocked(e)
		h.stats.Lost-- // not a hint lost: superseded
	}
	e.waited = true
}

// forget drops st, gone from the model.
func (h *WriteHints) forget(st fileid.Stamp) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.files[st]; e != nil {
		if e.pending == 0 {
			h.dropLocked(st, e)
		} else {
			h.loseLocked(e)
			e.gone = true
		}
	}
}

// ready lists the files whose hints can be shipped or which must be
// fetched now (nothing in flight), of those inModel knows.
func (h *WriteHints) ready(inModel func(fileid.Stamp) bool) []fileid.Stamp {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []fileid.Stamp
	for st, e := range h.files {
		if e.pending == 0 && (e.lost || len(e.hints) > 0) && inModel(st) {
			out = append(out, st)
		}
	}
	return out
}

// sweep ends a batch: files inModel knows that hold nothing any more are
// dropped (Born matters only in the batch that finds a file new), those it
// does not know age.
func (h *WriteHints) sweep(inModel func(fileid.Stamp) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for st, e := range h.files {
		if e.pending > 0 {
			continue
		}
		if inModel(st) {
			e.absent = 0
			if !e.lost && len(e.hints) == 0 {
				h.dropLocked(st, e)
			}
			continue
		}
		e.absent++
		if e.absent > maxHintAbsent {
			h.stats.Expired++
			h.dropLocked(st, e)
		}
	}
}
