package journal

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// countingFetcher counts fetches and answers that the file is gone.
type countingFetcher struct{ n atomic.Int64 }

func (c *countingFetcher) Fetch(ctx context.Context, q *FetchRequest) (*FetchReply, error) {
	c.n.Add(1)
	return nil, ErrNotFound
}

func pruneRec(dir fileid.Stamp, from, to string, names ...string) Record {
	data := []byte{}
	for _, n := range names {
		data = AppendPruneName(data, n)
	}
	return Record{Op: OpPrune, Share: 1, File: dir, Flags: FlagInline, Name: from, NewName: to, Data: data}
}

func dirNames(t *testing.T, p string) []string {
	t.Helper()
	es, err := os.ReadDir(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func TestFSApplierPrune(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: trusted.* xattrs")
	}
	ctx := context.Background()
	s := openVolume(t, t.TempDir(), 1000, fileid.Stamp{})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel, data string) {
		t.Helper()
		must(os.MkdirAll(filepath.Dir(s.path(rel)), 0o755))
		must(os.WriteFile(s.path(rel), []byte(data), 0o644))
	}
	// Outside the volume: what a symlink in a pruned tree points to.
	outside := t.TempDir()
	must(os.WriteFile(filepath.Join(outside, "precious"), []byte("keep me"), 0o644))

	must(os.Mkdir(s.path("share"), 0o755))
	share := s.stampAt(t, "share")
	write("share/keep1", "one")
	write("share/keep2", "two")
	must(os.Mkdir(s.path("share/keepdir"), 0o755))
	write("share/keepdir/inner", "inner")
	keep1, keep2 := s.stampAt(t, "share/keep1"), s.stampAt(t, "share/keep2")
	write("share/extra", "gone")
	write("share/.hidden", "gone")
	write("share/old/sub/f", "deep")
	write("share/old/g", "g")
	must(os.Symlink(outside, s.path("share/old/sub/out")))
	must(os.Symlink(filepath.Join(outside, "precious"), s.path("share/lnout")))
	must(os.Link(s.path("share/keep2"), s.path("share/hardextra"))) // another name of a kept file
	s.stampAt(t, "share/extra")
	s.stampAt(t, "share/old")
	write("share/"+tempPrefix+"7", "left") // a dead applier's
	var before1, before2, dirBefore unix.Stat_t
	must(unix.Lstat(s.path("share/keep1"), &before1))
	must(unix.Lstat(s.path("share/keep2"), &before2))
	must(unix.Lstat(s.path("share"), &dirBefore))

	app, err := NewFSApplier(FSApplierConfig{Tree: s.tree, Position: NewPositionFile(filepath.Join(t.TempDir(), "pos")), Logger: quietLogger()})
	must(err)
	defer app.Close()
	f := &countingFetcher{}

	must(app.Apply(ctx, pruneRec(share, "", "", "keep1", "keep2", "keepdir"), f))
	if got, want := dirNames(t, s.path("share")), []string{"keep1", "keep2", "keepdir"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after prune: %q, want %q", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "precious")); err != nil || string(b) != "keep me" {
		t.Fatalf("the symlinks' target: %q, %v", b, err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatalf("the directory a pruned symlink pointed to: %v", err)
	}
	if b, err := os.ReadFile(s.path("share/keepdir/inner")); err != nil || string(b) != "inner" {
		t.Fatalf("kept directory's file: %q, %v", b, err)
	}
	for _, k := range []struct {
		rel    string
		data   string
		st     fileid.Stamp
		before unix.Stat_t
	}{{"share/keep1", "one", keep1, before1}, {"share/keep2", "two", keep2, before2}} {
		b, err := os.ReadFile(s.path(k.rel))
		must(err)
		var sb unix.Stat_t
		must(unix.Lstat(s.path(k.rel), &sb))
		fd, err := s.tree.OpenDir("share", unix.O_PATH)
		must(err)
		st, err := fileid.ReadStamp(fd, filepath.Base(k.rel))
		unix.Close(fd)
		must(err)
		if string(b) != k.data || st != k.st || sb.Ino != k.before.Ino || sb.Mtim != k.before.Mtim {
			t.Errorf("%s changed: %q, stamp %v (was %v), ino %d (was %d), mtime %v (was %v)",
				k.rel, b, st, k.st, sb.Ino, k.before.Ino, sb.Mtim, k.before.Mtim)
		}
	}
	var dirAfter unix.Stat_t
	must(unix.Lstat(s.path("share"), &dirAfter))
	if dirAfter.Mtim != dirBefore.Mtim {
		t.Errorf("pruning moved the directory's mtime from %v to %v", dirBefore.Mtim, dirAfter.Mtim)
	}
	// extra, .hidden, lnout, hardextra, old, old/g, old/sub, old/sub/f,
	// old/sub/out, the dead applier's name.
	if st := app.Stats(); st.Pruned != 10 || st.Records != 1 {
		t.Errorf("stats %+v, want 10 pruned in 1 record", st)
	}
	// Applied again: nothing more to do.
	must(app.Apply(ctx, pruneRec(share, "", "", "keep1", "keep2", "keepdir"), f))
	if st := app.Stats(); st.Pruned != 10 {
		t.Errorf("a repeated prune pruned more: %+v", st)
	}

	t.Run("ranges", func(t *testing.T) {
		must(os.Mkdir(s.path("big"), 0o755))
		big := s.stampAt(t, "big")
		for _, n := range []string{"a", "b", "c", "g", "h", "i", "z"} {
			write("big/"+n, n)
		}
		// The second half alone leaves the first half be.
		must(app.Apply(ctx, pruneRec(big, "h", "", "h", "z"), f))
		if got, want := dirNames(t, s.path("big")), []string{"a", "b", "c", "g", "h", "z"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("after [h, end): %q, want %q", got, want)
		}
		// [start, c), [c, h): "b" and "g" go, "h" (the end, excluded) stays.
		_, err := app.ApplyBatch(ctx, []Record{pruneRec(big, "", "c", "a"), pruneRec(big, "c", "h", "c")}, f)
		must(err)
		if got, want := dirNames(t, s.path("big")), []string{"a", "c", "h", "z"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("after the split prune: %q, want %q", got, want)
		}
	})

	t.Run("missing directory", func(t *testing.T) {
		before := app.Stats()
		must(app.Apply(ctx, pruneRec(fileid.Stamp{ID: 999_999, Gen: 1}, "", ""), f))
		if st := app.Stats(); st.Vanished != before.Vanished+1 || st.Pruned != before.Pruned {
			t.Errorf("stats %+v after a prune of a missing directory (before %+v)", st, before)
		}
	})

	t.Run("volume root", func(t *testing.T) {
		write("rootfile", "x")
		must(app.Apply(ctx, pruneRec(s.tree.Root(), "", ""), f))
		if _, err := os.Stat(s.path("rootfile")); err != nil {
			t.Errorf("a prune of the volume root removed its entries: %v", err)
		}
	})

	t.Run("deferred fetches first", func(t *testing.T) {
		must(os.Mkdir(s.path("b"), 0o755))
		dir := s.stampAt(t, "b")
		write("b/old", "old")
		old := s.stampAt(t, "b/old")
		neu := fileid.Stamp{ID: 1 << 50, Gen: 1}
		f := &countingFetcher{}
		before := app.Stats()
		_, err := app.ApplyBatch(ctx, []Record{
			{Op: OpWrite, Share: 1, File: old}, // deferred; its file is the prune's
			{Op: OpCreate, Share: 1, File: neu, Parent: dir, Name: "new", Mode: ModeReg | 0o600},
			pruneRec(dir, "", "", "new"),
			{Op: OpWrite, Share: 1, File: neu}, // deferred past the prune: its file stays
		}, f)
		must(err)
		if got, want := dirNames(t, s.path("b")), []string{"new"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("after the batch: %q, want %q", got, want)
		}
		// Both fetched (and found gone on the master): the one before
		// the prune while its file was still there, not after a scan
		// for it.
		if n := f.n.Load(); n != 2 {
			t.Errorf("%d fetches, want 2", n)
		}
		if st := app.Stats(); st.Pruned != before.Pruned+1 || st.Records != before.Records+4 {
			t.Errorf("stats %+v (before %+v)", st, before)
		}
	})

	t.Run("no temporary name kept by create", func(t *testing.T) {
		for _, n := range dirNames(t, s.path("share")) {
			if strings.HasPrefix(n, tempPrefix) {
				t.Errorf("left a temporary entry %q", n)
			}
		}
	})
}

// A new log's entries take names where the standby kept something else
// from an older log: a directory (with contents), or an entry of another
// type, is cleared out of the way, parked if it has a stamp (a file is
// replaced by a rename over it, as always); a copy of a hard-linked file
// becomes a link again. What a record's source lies in is never removed.
func TestFSApplierClearsWay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: trusted.* xattrs")
	}
	ctx := context.Background()
	s := openVolume(t, t.TempDir(), 1000, fileid.Stamp{})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel, data string) {
		t.Helper()
		must(os.MkdirAll(filepath.Dir(s.path(rel)), 0o755))
		must(os.WriteFile(s.path(rel), []byte(data), 0o644))
	}
	must(os.Mkdir(s.path("d"), 0o755))
	d := s.stampAt(t, "d")
	write("d/q/deep/f", "old directory")
	write("d/r", "old file")
	write("d/l", "old file")
	write("d/src", "linked")
	src := s.stampAt(t, "d/src")
	write("d/copy", "copy of src")
	must(unix.Setxattr(s.path("d/copy"), fileid.XattrName, src.MarshalBinary(), 0))
	write("d/mv", "moved")
	mv := s.stampAt(t, "d/mv")
	write("d/v/full", "a directory where mv goes")
	write("d/v/inner/x", "x")

	app, err := NewFSApplier(FSApplierConfig{Tree: s.tree, Position: NewPositionFile(filepath.Join(t.TempDir(), "pos")), Logger: quietLogger()})
	must(err)
	defer app.Close()
	f := &countingFetcher{}
	st := func(n uint64) fileid.Stamp { return fileid.Stamp{ID: 1 << 50, Gen: uint32(n)} }
	for _, r := range []Record{
		{Op: OpCreate, Share: 1, File: st(1), Parent: d, Name: "q", Mode: ModeReg | 0o644},    // file over a directory
		{Op: OpMkdir, Share: 1, File: st(2), Parent: d, Name: "r", Mode: 0o755},               // directory over a file
		{Op: OpLink, Share: 1, File: src, Parent: d, Name: "l"},                               // link over another file
		{Op: OpLink, Share: 1, File: src, Parent: d, Name: "copy"},                            // link over a copy
		{Op: OpRename, Share: 1, File: mv, Parent: d, Name: "mv", NewParent: d, NewName: "v"}, // file over a directory
	} {
		must(app.Apply(ctx, r, f))
	}
	for rel, want := range map[string]uint32{"d/q": unix.S_IFREG, "d/r": unix.S_IFDIR, "d/v": unix.S_IFREG} {
		var sb unix.Stat_t
		must(unix.Lstat(s.path(rel), &sb))
		if sb.Mode&unix.S_IFMT != want {
			t.Errorf("%s: mode %o, want type %o", rel, sb.Mode, want)
		}
	}
	var a, b, c unix.Stat_t
	must(unix.Lstat(s.path("d/src"), &a))
	must(unix.Lstat(s.path("d/l"), &b))
	must(unix.Lstat(s.path("d/copy"), &c))
	if a.Ino != b.Ino || a.Ino != c.Ino {
		t.Errorf("src, l, copy are inodes %d, %d, %d: want one file", a.Ino, b.Ino, c.Ino)
	}
	// q (deep, f), r, l, v (full, inner, inner/x).
	if got := app.Stats().Pruned; got != 9 {
		t.Errorf("%d entries cleared, want 9", got)
	}

	// A stamped entry in the way is parked beside it, where the index
	// finds it: the record's source may lie in it, and a record further
	// on may move what it holds. The prune of its directory removes what
	// is still parked.
	write("d/w/sub/y", "y")
	write("d/w/later", "needed further on")
	s.stampAt(t, "d/w")
	sub := s.stampAt(t, "d/w/sub")
	y := s.stampAt(t, "d/w/sub/y")
	later := s.stampAt(t, "d/w/later")
	must(app.Apply(ctx, Record{Op: OpRename, Share: 1, File: y, Parent: sub, Name: "y", NewParent: d, NewName: "w"}, f))
	must(app.Apply(ctx, Record{Op: OpCreate, Share: 1, File: later, Parent: d, Name: "later", Mode: ModeReg | 0o644}, f))
	for rel, want := range map[string]string{"d/w": "y", "d/later": "needed further on"} {
		if b, err := os.ReadFile(s.path(rel)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", rel, b, err, want)
		}
	}
	if st := app.Stats(); st.Parked != 1 || st.Pruned != 9 || st.Moved != 1 {
		t.Errorf("stats %+v, want 1 parked, 9 cleared, 1 moved", st)
	}
	var kept []string
	for _, n := range dirNames(t, s.path("d")) {
		if !strings.HasPrefix(n, tempPrefix) {
			kept = append(kept, n)
		}
	}
	if len(kept) == len(dirNames(t, s.path("d"))) {
		t.Fatalf("nothing parked in d: %q", kept)
	}
	must(app.Apply(ctx, pruneRec(d, "", "", kept...), f))
	if got := dirNames(t, s.path("d")); !reflect.DeepEqual(got, kept) {
		t.Errorf("after the prune d holds %q, want %q", got, kept)
	}
	if st := app.Stats(); st.Pruned != 9+2 {
		t.Errorf("%d entries pruned and cleared, want 11 (the parked w and its sub)", st.Pruned)
	}

	// An entry in the way with no stamp (nothing could look it up) is
	// removed, never when a record's source lies in it.
	write("d/u/sub/z", "z")
	s.stampAt(t, "d/u")
	usub := s.stampAt(t, "d/u/sub")
	z := s.stampAt(t, "d/u/sub/z")
	must(unix.Removexattr(s.path("d/u"), fileid.XattrName))
	err = app.Apply(ctx, Record{Op: OpRename, Share: 1, File: z, Parent: usub, Name: "z", NewParent: d, NewName: "u"}, f)
	if err == nil || !strings.Contains(err.Error(), "holds the record's source") {
		t.Errorf("rename into the unstamped directory holding its source: %v", err)
	}
	if b, err := os.ReadFile(s.path("d/u/sub/z")); err != nil || string(b) != "z" {
		t.Errorf("the source: %q, %v", b, err)
	}
}
