package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// patchRig is an inlineRig with a 4 MiB file "big" on both sides, written
// whole (a copy), whose applier keeps its position at pos.
func patchRig(t *testing.T) (*inlineRig, fileid.Stamp, string) {
	t.Helper()
	r := newInlineRig(t)
	big := r.create("big")
	r.writeRanged("big", big, 0, randomBytes(4<<20, 1))
	r.attrs("big", big)
	r.apply()
	return r, big, r.app.cfg.Position.path
}

// inode is the inode number of path.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var sb unix.Stat_t
	if err := unix.Stat(path, &sb); err != nil {
		t.Fatal(err)
	}
	return sb.Ino
}

// reopen closes r's applier and opens another on the same volume and
// position, as a standby restarted after a crash does.
func (r *inlineRig) reopen(pos string) {
	r.t.Helper()
	r.app.Close()
	app, err := NewFSApplier(FSApplierConfig{Tree: r.s.tree, Position: NewPositionFile(pos), Logger: quietLogger()})
	if err != nil {
		r.t.Fatalf("reopen the applier: %v", err)
	}
	r.app = app
	r.t.Cleanup(func() { app.Close() })
}

// scribble overwrites n bytes at off in the standby's name: the patch that
// had not reached the disk when the standby crashed.
func (r *inlineRig) scribble(name string, off int64, n int) {
	r.t.Helper()
	f, err := os.OpenFile(r.s.path(name), os.O_WRONLY, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xee}, n), off); err != nil {
		r.t.Fatal(err)
	}
}

func sameContents(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

// TestPatchInPlace: a few small ranges of a large file are written into
// the file itself (same inode, no copy), with its new size and metadata,
// through a segment of the redo log.
func TestPatchInPlace(t *testing.T) {
	r, big, pos := patchRig(t)
	ino := inode(t, r.s.path("big"))
	before := r.app.Stats()
	r.writeRanged("big", big, 1<<20, randomBytes(64<<10, 2))
	r.writeRanged("big", big, 4<<20, randomBytes(100, 3)) // grows it
	if err := os.Chmod(r.m.path("big"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.add(Record{Op: OpSetAttr, File: big}) // the capture's "fetch the attributes"
	st := r.apply()                         // compares the trees
	if st.Patched-before.Patched != 1 || st.Clones != before.Clones || st.Copies != before.Copies {
		t.Errorf("patched %d, clones %d, copies %d; want 1 file patched, no copy", st.Patched-before.Patched, st.Clones-before.Clones, st.Copies-before.Copies)
	}
	if got := inode(t, r.s.path("big")); got != ino {
		t.Errorf("the file was replaced (inode %d, was %d); want it patched in place", got, ino)
	}
	b, err := os.ReadFile(pos + ".redo")
	if err != nil {
		t.Fatal(err)
	}
	es := decodeRedo(b, Position{})
	if len(es) != 1 || es[0].file != big || len(es[0].rep.Blocks) != 2 || es[0].rep.Attr.Size != 4<<20+100 {
		t.Errorf("redo log holds %d patches %+v; want big's two ranges and its size", len(es), es)
	}

	// Appended only: a copy (a clone shares all of it, a patch would
	// write the bytes twice).
	r.writeRanged("big", big, 4<<20+100, randomBytes(4096, 12))
	if st := r.apply(); st.Patched-before.Patched != 1 || st.Clones+st.Copies == before.Clones+before.Copies {
		t.Errorf("an append: patched %d, clones+copies %d; want a copy", st.Patched-before.Patched, st.Clones+st.Copies)
	}

	// More than patchMax bytes of ranges: a copy again.
	r.writeRanged("big", big, 0, randomBytes(patchMax+1, 4))
	if st := r.apply(); st.Patched-before.Patched != 1 || st.Clones+st.Copies == before.Clones+before.Copies {
		t.Errorf("a write of %d bytes: patched %d, clones+copies %d; want a copy", patchMax+1, st.Patched-before.Patched, st.Clones+st.Copies)
	}
}

// TestPatchesBounded: the patches of one chunk of files hold at most
// patchChunkMax bytes in memory; the files beyond it are copied.
func TestPatchesBounded(t *testing.T) {
	r := newInlineRig(t)
	const n = patchChunkMax/patchMax + 2
	sts := make([]fileid.Stamp, n)
	for i := range sts {
		sts[i] = r.create(fmt.Sprintf("f%d", i))
		r.writeRanged(fmt.Sprintf("f%d", i), sts[i], 0, []byte("not empty: a copy of it is a clone"))
	}
	r.apply()
	for i, st := range sts {
		r.writeRanged(fmt.Sprintf("f%d", i), st, 0, randomBytes(patchMax, uint64(i)))
	}
	before := r.app.Stats()
	st := r.apply()
	patched, copied := st.Patched-before.Patched, st.Clones+st.Copies-before.Clones-before.Copies
	if patched != patchChunkMax/patchMax || copied != 2 {
		t.Errorf("%d files patched, %d copied; want %d patched (%d MiB) and the other 2 copied", patched, copied, patchChunkMax/patchMax, patchChunkMax>>20)
	}
}

// TestPatchReplay: a standby that crashed after the redo log's segment was
// durable but before its patches reached the file brings the file to its
// patched state when it starts again; a segment of a committed batch, or a
// torn one, is never replayed.
func TestPatchReplay(t *testing.T) {
	r, big, pos := patchRig(t)
	r.writeRanged("big", big, 2<<20, randomBytes(64<<10, 5))
	r.apply()
	r.scribble("big", 2<<20, 64<<10)
	r.reopen(pos)
	if !sameContents(t, r.m.path("big"), r.s.path("big")) {
		t.Fatal("after a restart the patched file differs from the master's: the redo log was not replayed")
	}
	if b, err := os.ReadFile(pos + ".redo"); err != nil || len(b) != 0 {
		t.Errorf("redo log after its replay: %d bytes, %v; want it empty", len(b), err)
	}

	// Committed: the segment follows an older position, and the files
	// may have changed since; it is not replayed.
	r.writeRanged("big", big, 3<<20, randomBytes(64<<10, 6))
	r.apply()
	if err := r.app.Commit(Position{LogID: 1, Seq: r.seq, Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	r.scribble("big", 3<<20, 10)
	r.reopen(pos)
	if sameContents(t, r.m.path("big"), r.s.path("big")) {
		t.Fatal("a committed batch's segment was replayed")
	}
	r.writeRanged("big", big, 3<<20, randomBytes(64<<10, 7)) // mended
	r.apply()

	// Torn: the segment's last bytes never reached the disk.
	r.writeRanged("big", big, 1<<20, randomBytes(64<<10, 8))
	r.apply()
	fi, err := os.Stat(pos + ".redo")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(pos+".redo", fi.Size()-3); err != nil {
		t.Fatal(err)
	}
	r.scribble("big", 1<<20, 10)
	r.reopen(pos)
	if sameContents(t, r.m.path("big"), r.s.path("big")) {
		t.Fatal("a torn segment was replayed")
	}
}

// failingFetcher fails every fetch of one file.
type failingFetcher struct {
	inner Fetcher
	fail  fileid.Stamp
}

func (f failingFetcher) Fetch(ctx context.Context, q *FetchRequest) (*FetchReply, error) {
	if q.File == f.fail {
		return nil, errors.New("the master went away")
	}
	return f.inner.Fetch(ctx, q)
}

// TestPatchNotHalfApplied: when a fetch of the batch fails, no file of it
// is patched, though the others' fetches came in.
func TestPatchNotHalfApplied(t *testing.T) {
	r, big, pos := patchRig(t)
	other := r.create("other")
	r.writeRanged("other", other, 0, randomBytes(8<<20, 9))
	r.apply()
	was, err := os.ReadFile(r.s.path("big"))
	if err != nil {
		t.Fatal(err)
	}
	r.writeRanged("big", big, 0, randomBytes(64<<10, 10))
	r.writeRanged("other", other, 0, randomBytes(64<<10, 11))
	f := failingFetcher{inner: directFetcher{NewFSSource(r.m.tree)}, fail: other}
	if _, err := r.app.ApplyBatch(context.Background(), r.recs, f); err == nil {
		t.Fatal("the batch applied though a fetch failed")
	}
	now, err := os.ReadFile(r.s.path("big"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(was, now) {
		t.Error("big was patched although the batch's fetch of another file failed")
	}
	if b, err := os.ReadFile(pos + ".redo"); err == nil && len(decodeRedo(b, Position{})) != 0 {
		t.Error("the failed batch left patches in the redo log")
	}
}

// TestRedoEncoding: segments round-trip; one following another position,
// damaged, or cut short ends what is read.
func TestRedoEncoding(t *testing.T) {
	at := Position{LogID: 7, Seq: 9, Epoch: 2}
	e1 := redoEntry{file: fileid.Stamp{ID: 3, Gen: 1}, rep: &FetchReply{ID: 1, What: FetchAttr | FetchXattrs | FetchData,
		Attr: Attr{Mode: ModeReg | 0o644, Size: 10}, Blocks: []Block{{Off: 2, Data: []byte("ab")}}}}
	e2 := redoEntry{file: fileid.Stamp{ID: 4}, rep: &FetchReply{ID: 1, What: FetchAttr | FetchXattrs | FetchData,
		Attr: Attr{Mode: ModeReg, Size: 0}, Xattrs: []Xattr{{Name: "user.a", Value: []byte("v")}}}}
	seg := func(after Position, es ...redoEntry) []byte {
		b, err := encodeRedo(after, es)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	s1, s2 := seg(at, e1), seg(at, e2)
	both := append(append([]byte(nil), s1...), s2...)
	if got := decodeRedo(both, at); len(got) != 2 || got[0].file != e1.file || got[0].rep.Attr != e1.rep.Attr ||
		!reflect.DeepEqual(got[0].rep.Blocks, e1.rep.Blocks) || got[1].file != e2.file || !reflect.DeepEqual(got[1].rep.Xattrs, e2.rep.Xattrs) {
		t.Fatalf("round trip: %+v", got)
	}
	stale := append(append([]byte(nil), s1...), seg(Position{LogID: 7, Seq: 8, Epoch: 2}, e2)...)
	if got := decodeRedo(stale, at); len(got) != 1 {
		t.Errorf("a segment following another position was read: %d patches", len(got))
	}
	if got := decodeRedo(both, Position{LogID: 7, Seq: 10, Epoch: 2}); len(got) != 0 {
		t.Errorf("segments of a committed batch were read: %d patches", len(got))
	}
	bad := append([]byte(nil), both...)
	bad[len(s1)+redoHeaderLen+3] ^= 1
	if got := decodeRedo(bad, at); len(got) != 1 {
		t.Errorf("a damaged segment was read: %d patches", len(got))
	}
	if got := decodeRedo(both[:len(both)-1], at); len(got) != 1 {
		t.Errorf("a torn segment was read: %d patches", len(got))
	}
}

// FuzzDecodeRedo: no redo log, however damaged, panics the replay's
// decoder, and what it reads encodes to the same bytes.
func FuzzDecodeRedo(f *testing.F) {
	at := Position{LogID: 1, Seq: 2, Epoch: 3}
	b, err := encodeRedo(at, []redoEntry{{file: fileid.Stamp{ID: 5}, rep: &FetchReply{ID: 1, What: FetchAttr | FetchXattrs | FetchData,
		Attr: Attr{Mode: ModeReg, Size: 4}, Blocks: []Block{{Off: 0, Data: []byte("abcd")}}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Fuzz(func(t *testing.T, b []byte) {
		es := decodeRedo(b, at)
		if len(es) == 0 {
			return
		}
		again, err := encodeRedo(at, es)
		if err != nil {
			t.Fatalf("decoded patches do not encode: %v", err)
		}
		if len(again) > len(b) {
			t.Fatalf("%d patches decoded from %d bytes encode to %d", len(es), len(b), len(again))
		}
	})
}
