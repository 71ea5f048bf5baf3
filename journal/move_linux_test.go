package journal

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// moveEnv is a standby volume with an applier and no master (fetches find
// the master's file gone).
type moveEnv struct {
	t   *testing.T
	s   *volume
	app *FSApplier
	f   *countingFetcher
}

func newMoveEnv(t *testing.T) *moveEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: trusted.* xattrs, chown")
	}
	s := openVolume(t, t.TempDir(), 1000, fileid.Stamp{})
	app, err := NewFSApplier(FSApplierConfig{Tree: s.tree, Position: NewPositionFile(filepath.Join(t.TempDir(), "pos")), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return &moveEnv{t: t, s: s, app: app, f: &countingFetcher{}}
}

func (e *moveEnv) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// write makes rel with data and returns its Stamp.
func (e *moveEnv) write(rel, data string) fileid.Stamp {
	e.t.Helper()
	e.must(os.MkdirAll(filepath.Dir(e.s.path(rel)), 0o755))
	e.must(os.WriteFile(e.s.path(rel), []byte(data), 0o644))
	return e.stamp(rel)
}

func (e *moveEnv) mkdir(rel string) fileid.Stamp {
	e.t.Helper()
	e.must(os.MkdirAll(e.s.path(rel), 0o755))
	return e.stamp(rel)
}

// stamp stamps rel and the directories above it.
func (e *moveEnv) stamp(rel string) fileid.Stamp {
	e.t.Helper()
	if dir := filepath.Dir(rel); dir != "." {
		e.stamp(dir)
	}
	return e.s.stampAt(e.t, rel)
}

func (e *moveEnv) apply(recs ...Record) {
	e.t.Helper()
	for i := range recs {
		recs[i].Share = 1
	}
	if _, err := e.app.ApplyBatch(context.Background(), recs, e.f); err != nil {
		e.t.Fatal(err)
	}
}

// carriers lists the entries of the volume carrying st.
func (e *moveEnv) carriers(st fileid.Stamp) []string {
	e.t.Helper()
	var out []string
	err := filepath.WalkDir(e.s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		v, err := pathXattrs(p).value(fileid.XattrName)
		if err != nil {
			return nil
		}
		if got, err := fileid.ParseStamp(v); err == nil && got == st {
			rel, _ := filepath.Rel(e.s.dir, p)
			out = append(out, rel)
		}
		return nil
	})
	e.must(err)
	sort.Strings(out)
	return out
}

// wantOnly checks st is carried by rel alone, which the index resolves.
func (e *moveEnv) wantOnly(st fileid.Stamp, rel string) {
	e.t.Helper()
	if got := e.carriers(st); !reflect.DeepEqual(got, []string{rel}) {
		e.t.Errorf("stamp %v carried by %q, want %q alone", st, got, rel)
	}
	ref, err := e.s.tree.Lookup(st)
	if err != nil {
		e.t.Errorf("the index does not lead to %v (%s): %v", st, rel, err)
		return
	}
	defer ref.Close()
	if ref.Rel != rel {
		e.t.Errorf("the index leads %v to %s, want %s", st, ref.Rel, rel)
	}
}

func (e *moveEnv) wantData(rel, data string) {
	e.t.Helper()
	if b, err := os.ReadFile(e.s.path(rel)); err != nil || string(b) != data {
		e.t.Errorf("%s: %q, %v; want %q", rel, b, err, data)
	}
}

func (e *moveEnv) wantGone(rel string) {
	e.t.Helper()
	if _, err := os.Lstat(e.s.path(rel)); !errors.Is(err, os.ErrNotExist) {
		e.t.Errorf("%s: %v, want it gone", rel, err)
	}
}

func (e *moveEnv) lstat(rel string) unix.Stat_t {
	e.t.Helper()
	var sb unix.Stat_t
	e.must(unix.Lstat(e.s.path(rel), &sb))
	return sb
}

// Chaos seed 89: the standby holds the file at A; the master renamed it to
// B and its new log describes B (a create record), then the prune of the
// directory that does not list A. The create moves A to B: the contents
// stay, though the fetch of them finds the master gone.
func TestFSApplierCreateMovesHeldFile(t *testing.T) {
	e := newMoveEnv(t)
	d := e.mkdir("d")
	s := e.write("d/A", "the only copy")
	before := e.lstat("d/A")
	e.apply(
		Record{Op: OpCreate, File: s, Parent: d, Name: "B", Mode: ModeReg | 0o640, UID: 1234, GID: 5678},
		Record{Op: OpWrite, File: s}, // deferred; the master is gone
		pruneRec(d, "", "", "B"),
	)
	e.wantData("d/B", "the only copy")
	e.wantGone("d/A")
	e.wantOnly(s, "d/B")
	sb := e.lstat("d/B")
	if sb.Ino != before.Ino || sb.Mode != unix.S_IFREG|0o640 || sb.Uid != 1234 || sb.Gid != 5678 {
		t.Errorf("d/B: inode %d (was %d), mode %o, owner %d:%d; want the same inode, 100640, 1234:5678", sb.Ino, before.Ino, sb.Mode, sb.Uid, sb.Gid)
	}
	if st := e.app.Stats(); st.Moved != 1 || st.Pruned != 0 || st.Records != 3 {
		t.Errorf("stats %+v, want 1 moved, nothing pruned, 3 records", st)
	}

	{ // into another directory
		e2 := e.mkdir("e2")
		e.apply(Record{Op: OpCreate, File: s, Parent: e2, Name: "C", Mode: ModeReg | 0o600})
		e.wantData("e2/C", "the only copy")
		e.wantGone("d/B")
		e.wantOnly(s, "e2/C")
	}

	{ // over a file of another stamp: that one is parked until the prune
		x := e.write("d/X", "moved")
		v := e.write("d/V", "replaced")
		before := e.app.Stats()
		e.apply(Record{Op: OpCreate, File: x, Parent: d, Name: "V", Mode: ModeReg | 0o644})
		e.wantData("d/V", "moved")
		e.wantGone("d/X")
		e.wantOnly(x, "d/V")
		if ref, err := e.s.tree.Lookup(v); err != nil {
			t.Errorf("the index does not lead to the parked file: %v", err)
		} else {
			if b, err := os.ReadFile(e.s.path(ref.Rel)); err != nil || string(b) != "replaced" {
				t.Errorf("the parked file %s: %q, %v", ref.Rel, b, err)
			}
			ref.Close()
		}
		if st := e.app.Stats(); st.Moved != before.Moved+1 || st.Parked != before.Parked+1 || st.Pruned != before.Pruned {
			t.Errorf("stats %+v (before %+v)", st, before)
		}
		e.pruneParked(d, "d")
		if got := e.carriers(v); len(got) != 0 {
			t.Errorf("the replaced file's stamp is still on %q after the prune", got)
		}
		if _, err := e.s.tree.Lookup(v); !errors.Is(err, fileid.ErrStale) {
			t.Errorf("the index still leads to the replaced file after the prune: %v", err)
		}
	}

	{ // out of the directory in the way
		// The master removed directory W and moved the file inside it to
		// W's name: the file goes out of W before W is cleared.
		f := e.write("d/W/inner/f", "from inside")
		e.write("d/W/other", "gone")
		before := e.app.Stats()
		e.apply(Record{Op: OpCreate, File: f, Parent: d, Name: "W", Mode: ModeReg | 0o644})
		e.wantData("d/W", "from inside")
		e.wantOnly(f, "d/W")
		if st := e.app.Stats(); st.Moved != before.Moved+1 || st.Parked != before.Parked+1 || st.Pruned != before.Pruned {
			t.Errorf("stats %+v (before %+v), want 1 moved, 1 parked", st, before)
		}
		// The prune of d: W (parked), inner, other.
		e.pruneParked(d, "d")
		if st := e.app.Stats(); st.Pruned != before.Pruned+3 {
			t.Errorf("stats %+v (before %+v), want 3 pruned", st, before)
		}
	}

	{ // symlink and fifo
		e.must(os.Symlink("target", e.s.path("d/ln")))
		ln := e.s.stampAt(t, "d/ln")
		e.must(unix.Mkfifo(e.s.path("d/fifo"), 0o600))
		fifo := e.s.stampAt(t, "d/fifo")
		e.apply(
			Record{Op: OpSymlink, File: ln, Parent: d, Name: "ln2", Target: "target", UID: 7, GID: 8},
			Record{Op: OpCreate, File: fifo, Parent: d, Name: "fifo2", Mode: ModeFIFO | 0o620},
		)
		e.wantOnly(ln, "d/ln2")
		e.wantOnly(fifo, "d/fifo2")
		if sb := e.lstat("d/ln2"); sb.Uid != 7 || sb.Gid != 8 {
			t.Errorf("moved symlink owned by %d:%d, want 7:8", sb.Uid, sb.Gid)
		}
		if sb := e.lstat("d/fifo2"); sb.Mode != unix.S_IFIFO|0o620 {
			t.Errorf("moved fifo mode %o, want 10620", sb.Mode)
		}
	}
}

// A mkdir record of a directory the standby holds under another name moves
// it with everything below it; a directory is never moved below itself.
func TestFSApplierMkdirMovesHeldDirectory(t *testing.T) {
	e := newMoveEnv(t)
	p := e.mkdir("p")
	x := e.mkdir("x")
	f := e.write("x/f", "f")
	g := e.write("x/sub/g", "g")
	sub := e.s.stampAt(t, "x/sub")
	e.apply(Record{Op: OpMkdir, File: x, Parent: p, Name: "y", Mode: 0o750, UID: 42, GID: 43})
	e.wantGone("x")
	e.wantOnly(x, "p/y")
	e.wantOnly(f, "p/y/f")
	e.wantOnly(g, "p/y/sub/g")
	e.wantData("p/y/f", "f")
	e.wantData("p/y/sub/g", "g")
	if sb := e.lstat("p/y"); sb.Mode != unix.S_IFDIR|0o750 || sb.Uid != 42 || sb.Gid != 43 {
		t.Errorf("p/y: mode %o, owner %d:%d; want 40750, 42:43", sb.Mode, sb.Uid, sb.Gid)
	}
	if st := e.app.Stats(); st.Moved != 1 {
		t.Errorf("stats %+v, want 1 moved", st)
	}

	// Below itself: the rename cannot (EINVAL); a new directory is made,
	// as before, and the old one keeps its children.
	e.apply(Record{Op: OpMkdir, File: x, Parent: sub, Name: "z", Mode: 0o755})
	if got, want := e.carriers(x), []string{"p/y", "p/y/sub/z"}; !reflect.DeepEqual(got, want) {
		t.Errorf("x carried by %q, want %q (a new directory as before)", got, want)
	}
	if got := dirNames(t, e.s.path("p/y/sub/z")); len(got) != 0 {
		t.Errorf("the new directory holds %q", got)
	}
	e.wantData("p/y/f", "f")
	e.wantData("p/y/sub/g", "g")
	if st := e.app.Stats(); st.Moved != 1 {
		t.Errorf("stats %+v, want still 1 moved", st)
	}

	// Up over the directory that holds it (the master removed q and moved
	// q/inner to its name): inner goes out of q before q is cleared.
	inner := e.mkdir("q/inner")
	k := e.write("q/inner/k", "k")
	e.write("q/other", "gone")
	e.apply(Record{Op: OpMkdir, File: inner, Parent: e.s.tree.Root(), Name: "q", Mode: 0o755})
	e.wantOnly(inner, "q")
	e.wantOnly(k, "q/k")
	e.wantData("q/k", "k")
	e.wantGone("q/other")
	if st := e.app.Stats(); st.Moved != 2 || st.Pruned != 2 {
		t.Errorf("stats %+v, want 2 moved, 2 cleared (q, q/other)", st)
	}
}

// A standby that crashed before its commit applies records again: a create
// record whose file a later rename (applied) moved on moves it back, and the
// rename applied again moves it on; one entry carries the stamp throughout
// and its contents stay.
func TestFSApplierCreateReplayMoves(t *testing.T) {
	e := newMoveEnv(t)
	d := e.mkdir("d")
	s := fileid.Stamp{ID: 1 << 50, Gen: 3}
	create := Record{Op: OpCreate, File: s, Parent: d, Name: "A", Mode: ModeReg | 0o644}
	rename := Record{Op: OpRename, File: s, Parent: d, Name: "A", NewParent: d, NewName: "B"}
	e.apply(create)
	e.must(os.WriteFile(e.s.path("d/A"), []byte("fetched contents"), 0o644)) // as a fetch leaves it
	e.apply(rename)
	e.wantOnly(s, "d/B")
	if st := e.app.Stats(); st.Moved != 0 {
		t.Fatalf("stats %+v: moved before any replay", st)
	}

	e.apply(create) // replayed
	e.wantOnly(s, "d/A")
	e.wantData("d/A", "fetched contents")
	e.wantGone("d/B")
	e.apply(rename) // replayed
	e.wantOnly(s, "d/B")
	e.wantData("d/B", "fetched contents")
	e.wantGone("d/A")
	// Both again in one batch.
	e.apply(create, rename)
	e.wantOnly(s, "d/B")
	e.wantData("d/B", "fetched contents")
	if st := e.app.Stats(); st.Moved != 2 {
		t.Errorf("stats %+v, want 2 moved", st)
	}
}

// What the record does not make as it is (another type, a symlink to
// another target, a device of another number, a hard-linked file) is not
// moved: the record makes a new entry, as it did before moves, and the old
// one is left to the prune.
func TestFSApplierCreateMakesNewWhenHeldDiffers(t *testing.T) {
	e := newMoveEnv(t)
	d := e.mkdir("d")

	// A regular file where the record makes a directory.
	f := e.write("d/f1", "file data")
	e.apply(Record{Op: OpMkdir, File: f, Parent: d, Name: "g1", Mode: 0o755})
	if got, want := e.carriers(f), []string{"d/f1", "d/g1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("type mismatch: stamp on %q, want %q", got, want)
	}
	if sb := e.lstat("d/g1"); sb.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("d/g1 mode %o, want a directory", sb.Mode)
	}
	e.wantData("d/f1", "file data")

	// A symlink with another target.
	e.must(os.Symlink("old", e.s.path("d/l1")))
	l := e.s.stampAt(t, "d/l1")
	e.apply(Record{Op: OpSymlink, File: l, Parent: d, Name: "l2", Target: "new"})
	if got, want := e.carriers(l), []string{"d/l1", "d/l2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("symlink target: stamp on %q, want %q", got, want)
	}
	if got, _ := os.Readlink(e.s.path("d/l2")); got != "new" {
		t.Errorf("d/l2 -> %q, want new", got)
	}

	// A device of another number.
	e.must(unix.Mknod(e.s.path("d/n1"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	n := e.s.stampAt(t, "d/n1")
	e.apply(Record{Op: OpCreate, File: n, Parent: d, Name: "n2", Mode: ModeChar | 0o666, Rdev: unix.Mkdev(1, 5)})
	if got, want := e.carriers(n), []string{"d/n1", "d/n2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("device number: stamp on %q, want %q", got, want)
	}
	if sb := e.lstat("d/n2"); sb.Rdev != unix.Mkdev(1, 5) {
		t.Errorf("d/n2 rdev %#x, want %#x", sb.Rdev, unix.Mkdev(1, 5))
	}

	// Not in the index (a file nasd did not see): made anew, no scan.
	u := fileid.Stamp{ID: 1 << 51, Gen: 1}
	e.write("d/u1", "unindexed")
	e.must(unix.Lsetxattr(e.s.path("d/u1"), fileid.XattrName, u.MarshalBinary(), 0))
	e.apply(Record{Op: OpCreate, File: u, Parent: d, Name: "u2", Mode: ModeReg | 0o644})
	if got, want := e.carriers(u), []string{"d/u1", "d/u2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("unindexed: stamp on %q, want %q", got, want)
	}

	if st := e.app.Stats(); st.Moved != 0 {
		t.Errorf("stats %+v, want nothing moved", st)
	}
}

// A create record of a hard-linked file the standby holds under other names
// links it at the record's name: the contents are there at once (made anew,
// the file was empty until a fetch, for good with the master gone), and
// the description's prune then removes the names the master no longer has.
func TestFSApplierCreateLinksHeldHardLinkedFile(t *testing.T) {
	e := newMoveEnv(t)
	d := e.mkdir("d")
	h := e.write("d/h1", "linked data")
	e.must(os.Link(e.s.path("d/h1"), e.s.path("d/h2")))
	old := e.lstat("d/h1")
	e.apply(
		Record{Op: OpCreate, File: h, Parent: d, Name: "h3", Mode: ModeReg | 0o640, UID: 1234, GID: 5678},
		Record{Op: OpWrite, File: h}, // deferred; the master is gone
	)
	e.wantData("d/h3", "linked data")
	sb := e.lstat("d/h3")
	if sb.Ino != old.Ino || sb.Nlink != 3 || sb.Mode != unix.S_IFREG|0o640 || sb.Uid != 1234 || sb.Gid != 5678 {
		t.Errorf("d/h3: inode %d with %d links, mode %o, owner %d:%d; want inode %d with 3, 100640, 1234:5678",
			sb.Ino, sb.Nlink, sb.Mode, sb.Uid, sb.Gid, old.Ino)
	}
	ref, err := e.s.tree.Lookup(h)
	if err != nil || ref.Rel != "d/h3" {
		t.Fatalf("the index leads %v to %v (%v), want d/h3", h, ref, err)
	}
	ref.Close()
	if st := e.app.Stats(); st.Linked != 1 || st.Moved != 0 {
		t.Errorf("stats %+v, want 1 linked, none moved", st)
	}

	// A link record of a name the description keeps, then the prune:
	// h1 stays, h2 goes, the data with them.
	e.apply(
		Record{Op: OpLink, File: h, Parent: d, Name: "h1"},
		pruneRec(d, "", "", "h1", "h3"),
	)
	e.wantGone("d/h2")
	e.wantData("d/h1", "linked data")
	e.wantData("d/h3", "linked data")
	if sb := e.lstat("d/h3"); sb.Ino != old.Ino || sb.Nlink != 2 {
		t.Errorf("after the prune d/h3 is inode %d with %d links, want %d with 2", sb.Ino, sb.Nlink, old.Ino)
	}

	// Over an entry in the way that holds one of its names: the directory
	// in the way is parked, then pruned; the file keeps its other names
	// and its data.
	w := e.write("d/W/inner", "inside and out")
	e.must(os.Link(e.s.path("d/W/inner"), e.s.path("d/out")))
	e.apply(Record{Op: OpCreate, File: w, Parent: d, Name: "W", Mode: ModeReg | 0o644})
	e.pruneParked(d, "d")
	e.wantData("d/W", "inside and out")
	e.wantData("d/out", "inside and out")
	if sb := e.lstat("d/W"); sb.Nlink != 2 {
		t.Errorf("d/W has %d links, want 2 (W and out)", sb.Nlink)
	}
}

// pruneParked applies the prune of the directory dir (at rel) that keeps
// every name but the applier's temporary ones, and checks none is left.
func (e *moveEnv) pruneParked(dir fileid.Stamp, rel string) {
	e.t.Helper()
	var keep []string
	for _, n := range dirNames(e.t, e.s.path(rel)) {
		if !strings.HasPrefix(n, tempPrefix) {
			keep = append(keep, n)
		}
	}
	e.apply(pruneRec(dir, "", "", keep...))
	if got := dirNames(e.t, e.s.path(rel)); !reflect.DeepEqual(got, keep) {
		e.t.Errorf("after the prune %s holds %q, want %q", rel, got, keep)
	}
}

// A standby that crashed before its commit applies a create of a
// hard-linked file again after the rename that moved it on: the create
// links it back at its old name, and the rename applied again removes
// that name (rename(2) of one link over another would keep both).
func TestFSApplierCreateReplayLinks(t *testing.T) {
	e := newMoveEnv(t)
	d := e.mkdir("d")
	s := fileid.Stamp{ID: 1 << 50, Gen: 5}
	create := Record{Op: OpCreate, File: s, Parent: d, Name: "A", Mode: ModeReg | 0o644}
	link := Record{Op: OpLink, File: s, Parent: d, Name: "L"}
	rename := Record{Op: OpRename, File: s, Parent: d, Name: "A", NewParent: d, NewName: "B"}
	e.apply(create)
	e.must(os.WriteFile(e.s.path("d/A"), []byte("fetched contents"), 0o644)) // as a fetch leaves it
	e.apply(link, rename)

	e.apply(create, link, rename) // replayed
	e.wantGone("d/A")
	e.wantData("d/B", "fetched contents")
	e.wantData("d/L", "fetched contents")
	if got, want := e.carriers(s), []string{"d/B", "d/L"}; !reflect.DeepEqual(got, want) {
		t.Errorf("stamp on %q, want %q", got, want)
	}
	if sb, sl := e.lstat("d/B"), e.lstat("d/L"); sb.Ino != sl.Ino || sb.Nlink != 2 {
		t.Errorf("d/B inode %d with %d links, d/L inode %d; want one file with 2 links", sb.Ino, sb.Nlink, sl.Ino)
	}
	if st := e.app.Stats(); st.Linked != 1 {
		t.Errorf("stats %+v, want 1 linked", st)
	}
}

// Temporary names left by an applier that died between making one and
// renaming it into place (a power cut on the standby) are not in the way
// of the next applier's: its names are its own, so its records apply.
func TestFSApplierTempNamesOfADeadApplier(t *testing.T) {
	e := newMoveEnv(t)
	d := e.mkdir("d")
	for i := 1; i <= 64; i++ { // what a dead applier's counter gave
		e.must(os.WriteFile(e.s.path("d/"+tempPrefix+strconv.FormatUint(uint64(i), 36)), nil, 0o600))
	}
	held := e.write("d/H", "held")
	e.must(os.Link(e.s.path("d/H"), e.s.path("d/H2")))
	e.apply(
		Record{Op: OpCreate, File: fileid.Stamp{ID: 1 << 50, Gen: 9}, Parent: d, Name: "new", Mode: ModeReg | 0o644},
		Record{Op: OpMkdir, File: fileid.Stamp{ID: 1 << 50, Gen: 10}, Parent: d, Name: "sub", Mode: 0o755},
		Record{Op: OpCreate, File: held, Parent: d, Name: "H3", Mode: ModeReg | 0o644},
	)
	e.wantData("d/new", "")
	e.wantData("d/H3", "held")
	if sb := e.lstat("d/sub"); sb.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("d/sub mode %o, want a directory", sb.Mode)
	}
}

// Chaos seed 89's class with a type change: while the standby was away the
// master renamed directory D to E and made a file at D's name; the new
// log describes the file D before the directory E. The directory in the
// way is parked, not removed, and E's mkdir moves it out of its parking,
// contents and all, though the master is gone before any fetch.
func TestFSApplierParkedEntryMovedLater(t *testing.T) {
	e := newMoveEnv(t)
	p := e.mkdir("p")
	dst := e.mkdir("p/D")
	f := e.write("p/D/f", "only on the standby")
	file := fileid.Stamp{ID: 1 << 50, Gen: 11}
	e.apply(
		Record{Op: OpCreate, File: file, Parent: p, Name: "D", Mode: ModeReg | 0o644},
		Record{Op: OpWrite, File: file}, // deferred; the master is gone
		Record{Op: OpMkdir, File: dst, Parent: p, Name: "E", Mode: 0o755},
		Record{Op: OpWrite, File: f}, // deferred; the master is gone
	)
	e.pruneParked(p, "p")
	e.wantOnly(dst, "p/E")
	e.wantOnly(f, "p/E/f")
	e.wantData("p/E/f", "only on the standby")
	e.wantData("p/D", "")
	if st := e.app.Stats(); st.Parked != 1 || st.Moved != 1 || st.Pruned != 0 {
		t.Errorf("stats %+v, want 1 parked, 1 moved, none pruned", st)
	}
}

// An editor's save while the standby was away: the master renamed f to f~
// and wrote a new f. The new log describes the new f first: the old f it
// replaces is parked, not removed, and the create of f~ further on moves
// it there, contents and all, though the master is gone before any fetch.
// A rename over a stamped file parks it the same way.
func TestFSApplierReplacedFileParked(t *testing.T) {
	e := newMoveEnv(t)
	d := e.mkdir("d")
	old := e.write("d/f", "the old version")
	neu := fileid.Stamp{ID: 1 << 50, Gen: 21}
	e.apply(
		Record{Op: OpCreate, File: neu, Parent: d, Name: "f", Mode: ModeReg | 0o644},
		Record{Op: OpWrite, File: neu}, // deferred; the master is gone
		Record{Op: OpCreate, File: old, Parent: d, Name: "f~", Mode: ModeReg | 0o644},
		Record{Op: OpWrite, File: old}, // deferred; the master is gone
	)
	e.pruneParked(d, "d")
	e.wantOnly(old, "d/f~")
	e.wantData("d/f~", "the old version")
	e.wantOnly(neu, "d/f")
	if st := e.app.Stats(); st.Parked != 1 || st.Moved != 1 || st.Pruned != 0 {
		t.Errorf("stats %+v, want 1 parked, 1 moved, none pruned", st)
	}

	// A rename over a stamped file: parked, then moved by a create.
	a := e.write("d/a", "a")
	b := e.write("d/b", "b")
	e.apply(
		Record{Op: OpRename, File: a, Parent: d, Name: "a", NewParent: d, NewName: "b"},
		Record{Op: OpCreate, File: b, Parent: d, Name: "b2", Mode: ModeReg | 0o644},
	)
	e.pruneParked(d, "d")
	e.wantData("d/b", "a")
	e.wantData("d/b2", "b")
	e.wantOnly(b, "d/b2")
	if st := e.app.Stats(); st.Parked != 2 || st.Moved != 2 {
		t.Errorf("stats %+v, want 2 parked, 2 moved", st)
	}
}
