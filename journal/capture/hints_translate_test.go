package capture

import (
	"strings"
	"testing"

	"ftnas/appliance/fileid"
	"ftnas/journal"
	"ftnas/kernel/changelog"
)

// nasdPid is the hinting server's process in these tests.
const nasdPid = 4242

// InodeTimes makes the fake volume a timesVolume (its times are its ctime).
func (f *fakeFS) InodeTimes(fid string) (Obj, int64, int64, bool, error) {
	o, ok, err := f.Inode(fid)
	return o, o.Ctime, o.Ctime, ok, err
}

// hpipe is a pipe whose translator has write hints, and whose standby
// applies records as the real one does: inline writes, truncates and
// explicit setattrs at once, fetches (writes without data) at the end of
// the batch, with the master's contents then.
type hpipe struct {
	*pipe
	reg     *WriteHints
	wakes   int
	fetches int
	// meanwhile, if set, changes the master after the batch's records
	// are applied and before its fetches (once).
	meanwhile func()
}

func newHPipe(t *testing.T) *hpipe {
	h := &hpipe{pipe: newPipe(t), reg: NewWriteHints()}
	h.reg.attach(func() { h.wakes++ })
	h.tr.hints = newHintState(h.reg, func(pid int) bool { return pid == nasdPid })
	h.tr.hints.rescans = h.tr.stats.Rescans // the initial rescan is done
	return h
}

func (h *hpipe) drain() []journal.Record {
	h.t.Helper()
	recs := h.translate()
	h.apply(recs)
	return recs
}

// translate translates every change noted so far, as one batch.
func (h *hpipe) translate() []journal.Record {
	c := h.fs.changes
	h.fs.changes = nil
	return h.tr.batch(c)
}

// apply applies records as one batch of the standby.
func (h *hpipe) apply(recs []journal.Record) {
	h.t.Helper()
	var fetch []fileid.Stamp
	for _, r := range recs {
		if err := r.Validate(); err != nil {
			h.t.Fatalf("invalid record: %v", err)
		}
		sn := h.sb.byID[r.File.ID]
		switch {
		case r.Op == journal.OpWrite && r.Flags&journal.FlagInline != 0:
			sn.content = patch(sn.content, int(r.Off), string(r.Data))
		case r.Op == journal.OpWrite:
			fetch = append(fetch, r.File)
		case r.Op == journal.OpTruncate:
			sn.content = resize(sn.content, int(r.Size))
		case r.Op == journal.OpSetAttr && r.AttrMask != 0:
			sn.mode, sn.uid = sn.mode&journal.ModeType|r.Mode, r.UID
		default:
			if err := h.sb.apply(r); err != nil {
				h.t.Fatalf("apply %s: %v\nrecords: %s", r.Op, err, describe(recs))
			}
		}
	}
	if h.meanwhile != nil {
		h.meanwhile()
		h.meanwhile = nil
	}
	for _, st := range fetch {
		h.fetches++
		if m, sn := h.fs.byStamp[st], h.sb.byID[st.ID]; m != nil && sn != nil {
			sn.content, sn.mode, sn.uid = m.content, m.mode, m.uid
		}
	}
}

func patch(s string, off int, data string) string {
	if len(s) < off {
		s += strings.Repeat("\x00", off-len(s))
	}
	end := off + len(data)
	if end >= len(s) {
		return s[:off] + data
	}
	return s[:off] + data + s[end:]
}

func resize(s string, n int) string {
	if n <= len(s) {
		return s[:n]
	}
	return s + strings.Repeat("\x00", n-len(s))
}

// nfsCreate creates p as the NFS server does: stamped at once, Born.
func (h *hpipe) nfsCreate(p string) *fnode {
	n := h.fs.create(p)
	h.fs.nextID++
	n.st = fileid.Stamp{ID: h.fs.nextID, Gen: 7}
	h.fs.byStamp[n.st] = n
	h.fs.changes[len(h.fs.changes)-1].Pid = nasdPid
	h.reg.Born(n.st)
	return n
}

// pwrite writes data at off into p on the master, as process pid.
func (h *hpipe) pwrite(p string, off int, data string, pid int) {
	n := h.fs.walk(p)
	n.content = patch(n.content, off, data)
	n.size = int64(len(n.content))
	h.fs.clock++
	n.ctime = h.fs.clock
	h.fs.note(changelog.OpModify, p, "", n)
	h.fs.changes[len(h.fs.changes)-1].Pid = pid
}

// begin and end bracket an NFS write: begin tells the registry, writes
// and notes the event; end tells what was written.
func (h *hpipe) begin(p string, off int, data string) func() {
	n := h.fs.walk(p)
	st := n.st
	id := h.reg.BeginChange(st)
	h.pwrite(p, off, data, nasdPid)
	return func() { h.reg.EndWrite(st, id, int64(off), []byte(data)) }
}

func (h *hpipe) nfsWrite(p string, off int, data string) { h.begin(p, off, data)() }

func (h *hpipe) nfsTruncate(p string, size int) {
	n := h.fs.walk(p)
	id := h.reg.BeginChange(n.st)
	n.content = resize(n.content, size)
	n.size = int64(size)
	h.fs.clock++
	n.ctime = h.fs.clock
	h.fs.note(changelog.OpModify, p, "", n)
	h.fs.changes[len(h.fs.changes)-1].Pid = nasdPid
	h.reg.EndTruncate(n.st, id, int64(size))
}

func (h *hpipe) check() {
	h.t.Helper()
	h.pipe.check()
}

func ops(recs []journal.Record) string {
	var parts []string
	for _, r := range recs {
		s := r.Op.String()
		switch {
		case r.Op == journal.OpWrite && r.Flags&journal.FlagInline != 0:
			s = "inline " + string(r.Data)
		case r.Op == journal.OpWrite:
			s = "fetch"
		case r.Op == journal.OpTruncate:
			s = "truncate"
		case r.Op == journal.OpSetAttr && r.AttrMask != 0:
			s = "attrs"
		case r.Op == journal.OpCreate:
			s += " " + r.Name
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// existing makes a file the standby has, with contents, fetched once.
func existing(t *testing.T, h *hpipe, name, content string) {
	t.Helper()
	h.fs.create(name)
	h.fs.write(name, content)
	h.drain()
	h.check()
	h.fetches = 0
}

func TestHintsShipWrites(t *testing.T) {
	h := newHPipe(t)
	existing(t, h, "a", "0123456789")
	h.nfsWrite("a", 2, "ab")
	h.nfsWrite("a", 4, "cd") // follows the first: one record
	h.nfsWrite("a", 12, "x")
	recs := h.drain()
	if got, want := ops(recs), "inline abcd, inline x, attrs"; got != want {
		t.Errorf("records %q, want %q", got, want)
	}
	h.check()
	if h.fetches != 0 {
		t.Errorf("%d fetches, want 0", h.fetches)
	}
	// A change of nasd's whose hint was shipped: its late event (here a
	// close) needs no record.
	h.fs.note(changelog.OpCloseWrite, "a", "", h.fs.walk("a"))
	h.fs.changes[0].Pid = nasdPid
	if recs := h.drain(); len(recs) != 0 {
		t.Errorf("late event of a shipped write: records %q, want none", ops(recs))
	}
	// The same event after the file changed unseen by the hints: fetched.
	h.fs.walk("a").content = "changed"
	h.fs.clock++
	h.fs.walk("a").ctime = h.fs.clock
	h.fs.note(changelog.OpModify, "a", "", h.fs.walk("a"))
	h.fs.changes[0].Pid = nasdPid
	if got := ops(h.drain()); got != "fetch" {
		t.Errorf("nasd event without hint, ctime moved: records %q, want a fetch", got)
	}
	h.check()
}

func TestHintsTruncate(t *testing.T) {
	h := newHPipe(t)
	existing(t, h, "a", "0123456789")
	h.nfsTruncate("a", 3)
	h.nfsWrite("a", 3, "xyz")
	h.nfsTruncate("a", 8)
	if got, want := ops(h.drain()), "truncate, inline xyz, truncate, attrs"; got != want {
		t.Errorf("records %q, want %q", got, want)
	}
	h.check()
	if h.fetches != 0 {
		t.Errorf("%d fetches, want 0", h.fetches)
	}
}

// The write's event may come before its End: what ended is shipped, the
// rest once it has ended (the registry wakes the capture).
func TestHintsPending(t *testing.T) {
	h := newHPipe(t)
	existing(t, h, "a", "0123456789")
	h.nfsWrite("a", 0, "A")
	end := h.begin("a", 1, "B")
	if got, want := ops(h.drain()), "inline A"; got != want {
		t.Errorf("with a write in flight: records %q, want %q", got, want)
	}
	end()
	if h.wakes != 1 {
		t.Errorf("%d wakes, want 1", h.wakes)
	}
	if got, want := ops(h.drain()), "inline B, attrs"; got != want {
		t.Errorf("after it ended: records %q, want %q", got, want)
	}
	h.check()
	if h.fetches != 0 {
		t.Errorf("%d fetches, want 0", h.fetches)
	}
}

// End before the event: the hint goes with the next batch, and its event,
// later, gives no record.
func TestHintsEndBeforeEvent(t *testing.T) {
	h := newHPipe(t)
	existing(t, h, "a", "0123456789")
	h.nfsWrite("a", 0, "A")
	ev := h.fs.changes
	h.fs.changes = nil
	if got, want := ops(h.drain()), "inline A, attrs"; got != want {
		t.Errorf("records %q, want %q", got, want)
	}
	h.fs.changes = ev
	if recs := h.drain(); len(recs) != 0 {
		t.Errorf("the event after its hint shipped: records %q, want none", ops(recs))
	}
	h.check()
}

func TestHintsOtherWriter(t *testing.T) {
	h := newHPipe(t)
	existing(t, h, "a", "0123456789")
	h.nfsWrite("a", 0, "A")
	h.pwrite("a", 5, "S", 999) // Samba
	if got := ops(h.drain()); got != "fetch" {
		t.Errorf("records %q, want a fetch", got)
	}
	h.check()
	if s := h.reg.Stats(); s.Files != 0 || s.Fetched != 1 {
		t.Errorf("registry %+v: want the hints dropped", s)
	}
	// An event without a pid is not nasd's.
	h.nfsWrite("a", 0, "B")
	h.fs.changes[0].Pid = 0
	if got := ops(h.drain()); got != "fetch" {
		t.Errorf("records %q, want a fetch", got)
	}
	h.check()
}

// A fetch reads the master when the standby applies it: a write in flight
// when it was decided must not be shipped after it (its bytes may be older
// than what the fetch read). The file is fetched again instead.
func TestHintsFetchThenLateHint(t *testing.T) {
	h := newHPipe(t)
	existing(t, h, "a", "0123456789")
	end := h.begin("a", 0, "N") // NFS write, in flight
	h.pwrite("a", 0, "S", 999)  // then another writer, over it
	if got := ops(h.drain()); got != "fetch" {
		t.Errorf("records %q, want a fetch", got)
	}
	end()
	recs := h.drain()
	for _, r := range recs {
		if r.Flags&journal.FlagInline != 0 {
			t.Fatalf("the write in flight was shipped after the fetch: %q", ops(recs))
		}
	}
	h.check()
	if got := h.fs.walk("a").content; got[0] != 'S' {
		t.Fatalf("master %q", got)
	}
}

// An inline write and a fetch of the same file in one batch: the fetch,
// applied at the batch end, leaves the master's bytes.
func TestHintsInlineThenFetchSameBatch(t *testing.T) {
	h := newHPipe(t)
	existing(t, h, "a", "0123456789")
	h.nfsWrite("a", 0, "N")
	h.drain()
	h.nfsWrite("a", 1, "M")
	h.pwrite("a", 1, "S", 999)
	h.meanwhile = func() { h.nfsWrite("a", 2, "L") } // before the fetch reads
	if got := ops(h.drain()); got != "fetch" {
		t.Errorf("records %q, want a fetch", got)
	}
	h.check()
	h.drain() // L's event
	h.check()
}

func TestHintsNewFile(t *testing.T) {
	h := newHPipe(t)
	h.nfsCreate("n")
	h.nfsWrite("n", 0, "hello")
	if got, want := ops(h.drain()), "create n, setattr, inline hello, attrs"; got != want {
		t.Errorf("born file: records %q, want %q", got, want)
	}
	h.check()
	if h.fetches != 0 {
		t.Errorf("%d content fetches, want 0", h.fetches)
	}
	// Not made by nasd (no Born): its contents are fetched.
	n := h.fs.create("m")
	h.fs.nextID++
	n.st = fileid.Stamp{ID: h.fs.nextID, Gen: 7}
	h.fs.byStamp[n.st] = n
	h.fs.write("m", "old")
	h.fs.changes = h.fs.changes[:1] // the writer's events were in an earlier batch the capture lost
	h.nfsWrite("m", 3, "new")
	if got := ops(h.drain()); !strings.Contains(got, "fetch") || strings.Contains(got, "inline") {
		t.Errorf("file new to the standby, not born: records %q, want a fetch", got)
	}
	h.check()
}

// A batch that rescans (events lost) ships no hints: what the rescan finds
// changed is fetched.
func TestHintsRescan(t *testing.T) {
	h := newHPipe(t)
	existing(t, h, "a", "0123456789")
	h.nfsWrite("a", 0, "A")
	h.fs.walk("a").content = "lost change"
	h.fs.clock++
	h.fs.walk("a").ctime = h.fs.clock
	h.fs.changes = append(h.fs.changes, changelog.Change{Op: changelog.OpOverflow, Share: 1})
	recs := h.drain()
	if got := ops(recs); !strings.Contains(got, "fetch") || strings.Contains(got, "inline") {
		t.Errorf("records %q, want a fetch", got)
	}
	h.check()
	if s := h.reg.Stats(); s.Files != 0 {
		t.Errorf("registry %+v: want nothing held", s)
	}
}

// Hints of a removed file are dropped; a file that comes back is fetched.
func TestHintsRemoved(t *testing.T) {
	h := newHPipe(t)
	existing(t, h, "a", "0123456789")
	end := h.begin("a", 0, "A")
	h.fs.unlink("a")
	h.drain()
	end()
	h.drain()
	if s := h.reg.Stats(); s.Files != 0 {
		t.Errorf("registry %+v: want nothing held", s)
	}
	h.check()
}

// A large file's writes go as ranges to fetch (no data, no whole-file
// delta), its truncates with their sizes.
func TestHintsLargeFileRanges(t *testing.T) {
	h := newHPipe(t)
	existing(t, h, "big", strings.Repeat("b", maxInlineFile+10))
	h.nfsWrite("big", 5, "xy")
	h.nfsWrite("big", 7, "z") // touches the first: one range
	h.nfsTruncate("big", maxInlineFile+5)
	h.nfsWrite("big", 200, "far")
	recs := h.drain()
	if got, want := ops(recs), "truncate, fetch, fetch"; got != want {
		t.Fatalf("records %q, want %q", got, want)
	}
	if r := recs[1]; r.Off != 5 || r.Len != 3 {
		t.Errorf("first range %d+%d, want 5+3", r.Off, r.Len)
	}
	if r := recs[2]; r.Off != 200 || r.Len != 3 {
		t.Errorf("second range %d+%d, want 200+3", r.Off, r.Len)
	}
	h.check()
	// Now small: inline.
	h.nfsTruncate("big", 100)
	h.drain()
	h.nfsWrite("big", 0, "s")
	if got, want := ops(h.drain()), "inline s, attrs"; got != want {
		t.Errorf("records %q, want %q", got, want)
	}
	h.check()
}

// The standby merges the records of several master batches into one of
// its own: an inline write, then a fetch of the same file, leave the
// master's bytes (the fetch is applied at the end, with the bytes then).
func TestHintsInlineAndFetchInOneStandbyBatch(t *testing.T) {
	h := newHPipe(t)
	existing(t, h, "a", "0123456789")
	h.nfsWrite("a", 0, "N")
	r1 := h.translate()
	h.pwrite("a", 0, "S", 999)
	r2 := h.translate()
	if got := ops(r1) + " / " + ops(r2); got != "inline N, attrs / fetch" {
		t.Fatalf("records %q", got)
	}
	h.apply(append(r1, r2...))
	h.check()
}

// A write too large to hold goes as its range, also in a small file.
func TestHintsLargeWriteRange(t *testing.T) {
	h := newHPipe(t)
	existing(t, h, "a", "0123456789")
	big := strings.Repeat("w", DefaultMaxHintWrite+1)
	h.nfsWrite("a", 3, big)
	recs := h.drain()
	if got := ops(recs); got != "fetch" || recs[0].Off != 3 || recs[0].Len != uint64(len(big)) {
		t.Fatalf("records %q (%d+%d), want a fetch of 3+%d", got, recs[0].Off, recs[0].Len, len(big))
	}
	h.check()
}

// Attribute changes of nasd (NFS SETATTR, its stamping) go as values; of
// another process (which may set xattrs), all attributes are fetched.
func TestHintsAttributes(t *testing.T) {
	h := newHPipe(t)
	existing(t, h, "a", "0123456789")
	h.nfsWrite("a", 0, "A")
	h.fs.chmod("a", 0o600)
	h.fs.changes[len(h.fs.changes)-1].Pid = nasdPid
	if got, want := ops(h.drain()), "inline A, attrs"; got != want {
		t.Errorf("nasd's chmod: records %q, want %q", got, want)
	}
	h.check()
	h.nfsWrite("a", 0, "B")
	h.fs.chmod("a", 0o640) // another process
	if got, want := ops(h.drain()), "inline B, setattr"; got != want {
		t.Errorf("another process's chmod: records %q, want %q", got, want)
	}
	h.check()
	h.nfsCreate("n")
	h.nfsWrite("n", 0, "x")
	h.fs.chmod("n", 0o600)
	if got, want := ops(h.drain()), "create n, setattr, inline x, setattr"; got != want {
		t.Errorf("new file, another process's chmod: records %q, want %q", got, want)
	}
	h.check()
}

// A file nasd made empty gets its attributes as values, not fetched.
func TestHintsBornEmpty(t *testing.T) {
	h := newHPipe(t)
	h.nfsCreate("n")
	if got, want := ops(h.drain()), "create n, setattr, attrs"; got != want {
		t.Errorf("records %q, want %q", got, want)
	}
	h.check()
	h.fs.create("m") // not nasd's
	if got, want := ops(h.drain()), "create m, setattr, setattr"; got != want {
		t.Errorf("records %q, want %q", got, want)
	}
	h.check()
}
