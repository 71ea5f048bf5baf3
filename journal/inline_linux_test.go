package journal

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// inlineRig is a master and a standby volume and an applier, with the
// master's changes made by hand and told as records.
type inlineRig struct {
	t    *testing.T
	m, s *volume
	app  *FSApplier
	recs []Record
	seq  uint64
}

func newInlineRig(t *testing.T) *inlineRig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: trusted.* xattrs (the stamps)")
	}
	m := openVolume(t, t.TempDir(), 1000, fileid.Stamp{})
	s := openVolume(t, t.TempDir(), 1<<40, m.tree.Root())
	app, err := NewFSApplier(FSApplierConfig{Tree: s.tree, Position: NewPositionFile(filepath.Join(t.TempDir(), "position")), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return &inlineRig{t: t, m: m, s: s, app: app}
}

func (r *inlineRig) add(rec Record) {
	r.seq++
	rec.Seq, rec.Epoch, rec.Share = r.seq, 1, 1
	r.recs = append(r.recs, rec)
}

// create makes an empty file on the master and records it.
func (r *inlineRig) create(name string) fileid.Stamp {
	r.t.Helper()
	if err := os.WriteFile(r.m.path(name), nil, 0o644); err != nil {
		r.t.Fatal(err)
	}
	st := r.m.stampAt(r.t, name)
	r.add(Record{Op: OpCreate, File: st, Parent: r.m.tree.Root(), Name: name, Mode: ModeReg | 0o644})
	r.attrs(name, st)
	return st
}

// writeMaster writes b at off in the master's name.
func (r *inlineRig) writeMaster(name string, off int64, b []byte) {
	r.t.Helper()
	f, err := os.OpenFile(r.m.path(name), os.O_WRONLY, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		r.t.Fatal(err)
	}
}

// write writes b at off on the master and records it with its data.
func (r *inlineRig) write(name string, st fileid.Stamp, off int64, b []byte) {
	r.t.Helper()
	r.writeMaster(name, off, b)
	r.add(Record{Op: OpWrite, File: st, Flags: FlagInline, Off: uint64(off), Len: uint64(len(b)), Data: bytes.Clone(b)})
	r.attrs(name, st)
}

// attrs records name's attributes as values, as the capture follows a
// file's writes with them.
func (r *inlineRig) attrs(name string, st fileid.Stamp) {
	r.t.Helper()
	var sb unix.Stat_t
	if err := unix.Lstat(r.m.path(name), &sb); err != nil {
		r.t.Fatal(err)
	}
	r.add(Record{Op: OpSetAttr, File: st, AttrMask: AttrMode | AttrUID | AttrGID | AttrAtime | AttrMtime,
		Mode: sb.Mode & ModePerm, UID: sb.Uid, GID: sb.Gid, Atime: sb.Atim.Nano(), Mtime: sb.Mtim.Nano()})
}

// apply applies the records told so far as one batch and checks the
// standby then holds the master's tree, with no working copy left.
func (r *inlineRig) apply() FSApplyStats {
	r.t.Helper()
	before := r.app.Stats()
	n, err := r.app.ApplyBatch(context.Background(), r.recs, directFetcher{NewFSSource(r.m.tree)})
	if err != nil || n != len(r.recs) {
		r.t.Fatalf("ApplyBatch of %d records: %d, %v", len(r.recs), n, err)
	}
	r.recs = nil
	compareTrees(r.t, r.m.dir, r.s.dir)
	ents, err := os.ReadDir(r.s.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			r.t.Errorf("working copy %s left in the standby's volume", e.Name())
		}
	}
	if r.app.inline != nil && len(r.app.inline.order) > 0 {
		r.t.Errorf("%d inline copies still open after the batch", len(r.app.inline.order))
	}
	after := r.app.Stats()
	after.InlineCopies -= before.InlineCopies
	return after
}

// TestInlineWritesShareOneCopy: a stream of inline writes to one file in a
// batch goes into one working copy (one sync), not one copy per write.
func TestInlineWritesShareOneCopy(t *testing.T) {
	r := newInlineRig(t)
	st := r.create("big")
	r.apply()
	for i := range 16 {
		r.write("big", st, int64(i)*4096, bytes.Repeat([]byte{byte('a' + i)}, 4096))
	}
	if got := r.apply(); got.InlineCopies != 1 {
		t.Errorf("16 inline writes to one file made %d working copies, want 1", got.InlineCopies)
	}
}

// TestInlineWritesKeepOrder: records after inline writes to a file see
// them: a truncate, a rename, a rename over it, a hard link, a remove and
// a deferred fetch of ranges, each in the same batch as the writes.
func TestInlineWritesKeepOrder(t *testing.T) {
	r := newInlineRig(t)
	root := r.m.tree.Root()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	a, b, c, d, e := r.create("a"), r.create("b"), r.create("c"), r.create("d"), r.create("e")
	r.apply()

	// a: written, truncated, written again, renamed to a2.
	r.write("a", a, 0, []byte("0123456789"))
	must(os.Truncate(r.m.path("a"), 4))
	r.add(Record{Op: OpTruncate, File: a, Size: 4})
	r.write("a", a, 8, []byte("xy"))
	must(os.Rename(r.m.path("a"), r.m.path("a2")))
	r.m.tree.Moved(a, root, "a2")
	r.add(Record{Op: OpRename, File: a, Parent: root, Name: "a", NewParent: root, NewName: "a2"})
	r.write("a2", a, 0, []byte("A"))

	// b: written, then c (written too) renamed over it.
	r.write("b", b, 0, []byte("bbbb"))
	r.write("c", c, 0, []byte("cccc"))
	must(os.Rename(r.m.path("c"), r.m.path("b")))
	r.m.tree.Removed(b)
	r.m.tree.Moved(c, root, "b")
	r.add(Record{Op: OpRename, File: c, Parent: root, Name: "c", NewParent: root, NewName: "b"})

	// d: written, linked (patched in place from then on), written.
	r.write("d", d, 0, []byte("dddd"))
	must(os.Link(r.m.path("d"), r.m.path("d-link")))
	r.add(Record{Op: OpLink, File: d, Parent: root, Name: "d-link"})
	r.write("d", d, 2, []byte("DD"))

	// e: written, then a write without data (a deferred fetch of its range).
	r.write("e", e, 0, []byte("eeeeeeee"))
	f, err := os.OpenFile(r.m.path("e"), os.O_WRONLY, 0)
	must(err)
	_, err = f.WriteAt([]byte("FF"), 4)
	must(err)
	must(f.Close())
	r.add(Record{Op: OpWrite, File: e, Off: 4, Len: 2})

	// gone: created, written, removed.
	g := r.create("gone")
	r.write("gone", g, 0, []byte("gone"))
	must(os.Remove(r.m.path("gone")))
	r.m.tree.Removed(g)
	r.add(Record{Op: OpRemove, File: g, Parent: root, Name: "gone"})

	r.apply()
	for name, want := range map[string]string{"a2": "A123\x00\x00\x00\x00xy", "b": "cccc", "d": "ddDD", "e": "eeeeFFee"} {
		got, err := os.ReadFile(r.s.path(name))
		if err != nil || string(got) != want {
			t.Errorf("standby %s: %q, %v; want %q", name, got, err, want)
		}
	}
}

// TestInlineCopiesBounded: a batch of more new files than it keeps copies
// open for publishes them as it goes, and loses none.
func TestInlineCopiesBounded(t *testing.T) {
	r := newInlineRig(t)
	n := maxInlineCopies + 10
	for i := range n {
		name := fmt.Sprintf("f%04d", i)
		st := r.create(name)
		r.write(name, st, 0, []byte(name))
	}
	if got := r.apply(); got.InlineCopies != uint64(n) {
		t.Errorf("%d new files written made %d working copies, want %d", n, got.InlineCopies, n)
	}
}
