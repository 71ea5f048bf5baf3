package fileid

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// counter is a Reserve backed by memory, shared across reopen in a test.
type counter struct {
	mu   sync.Mutex
	next uint64
}

func (c *counter) reserve(n uint64) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next == 0 {
		c.next = 2
	}
	first := c.next
	c.next += n
	return first, nil
}

type env struct {
	t    *testing.T
	vol  string
	db   string
	ctr  *counter
	idx  *Index
	tree *Tree
	bdb  *bolt.DB
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: trusted.* extended attributes need CAP_SYS_ADMIN")
	}
}

func newEnv(t *testing.T) *env {
	needRoot(t)
	dir := t.TempDir()
	e := &env{t: t, vol: filepath.Join(dir, "vol"), db: filepath.Join(dir, "state.db"), ctr: &counter{}}
	if err := os.Mkdir(e.vol, 0o755); err != nil {
		t.Fatal(err)
	}
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *env) open() {
	var err error
	e.bdb, err = bolt.Open(e.db, 0o600, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.idx, err = OpenIndex(e.bdb, slog.Default())
	if err != nil {
		e.t.Fatal(err)
	}
	e.tree, err = OpenTree(e.vol, e.idx, NewAllocator(e.ctr.reserve), slog.Default())
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) close() {
	if e.tree == nil {
		return
	}
	e.tree.Close()
	if err := e.idx.Close(); err != nil {
		e.t.Error(err)
	}
	e.bdb.Close()
	e.tree = nil
}

// create makes a file through the Tree the way the NFS server does.
func (e *env) create(dirRel string, dir Stamp, name, data string) Stamp {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.vol, dirRel, name), []byte(data), 0o644); err != nil {
		e.t.Fatal(err)
	}
	fd := e.dirFD(dirRel)
	defer unix.Close(fd)
	st, err := e.tree.Stamp(fd, dir, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) mkdir(dirRel string, dir Stamp, name string) Stamp {
	e.t.Helper()
	if err := os.Mkdir(filepath.Join(e.vol, dirRel, name), 0o755); err != nil {
		e.t.Fatal(err)
	}
	fd := e.dirFD(dirRel)
	defer unix.Close(fd)
	st, err := e.tree.Stamp(fd, dir, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) dirFD(rel string) int {
	e.t.Helper()
	fd, err := e.tree.OpenDir(rel, unix.O_PATH)
	if err != nil {
		e.t.Fatalf("OpenDir(%q): %v", rel, err)
	}
	return fd
}

func (e *env) resolve(st Stamp) (string, error) {
	ref, err := e.tree.Resolve(st)
	if err != nil {
		return "", err
	}
	defer ref.Close()
	return ref.Rel, nil
}

func (e *env) mustResolve(st Stamp, want string) {
	e.t.Helper()
	got, err := e.resolve(st)
	if err != nil || got != want {
		e.t.Fatalf("Resolve(%v) = %q, %v; want %q", st, got, err, want)
	}
}

func TestResolveSurvivesRenameAndRestart(t *testing.T) {
	e := newEnv(t)
	root := e.tree.Root()
	a := e.mkdir(".", root, "a")
	b := e.mkdir("a", a, "b")
	f := e.create("a/b", b, "f.txt", "hello")
	e.mustResolve(f, "a/b/f.txt")

	// A rename of a parent directory through nasd updates one entry.
	if err := os.Rename(filepath.Join(e.vol, "a"), filepath.Join(e.vol, "z")); err != nil {
		t.Fatal(err)
	}
	e.tree.Moved(a, root, "z")
	e.mustResolve(f, "z/b/f.txt")

	// Restart: a new index and tree over the same files and state.
	e.close()
	e.open()
	if e.tree.Root() != root {
		t.Fatalf("root stamp changed across restart: %v -> %v", root, e.tree.Root())
	}
	e.mustResolve(f, "z/b/f.txt")
}

func TestResolveRepairsRenameMadeOutsideNasd(t *testing.T) {
	e := newEnv(t)
	root := e.tree.Root()
	d := e.mkdir(".", root, "d")
	f := e.create("d", d, "f", "x")
	// Samba or a shell renames it; the index does not know.
	if err := os.Rename(filepath.Join(e.vol, "d"), filepath.Join(e.vol, "e")); err != nil {
		t.Fatal(err)
	}
	e.mustResolve(f, "e/f")
	// The scan repaired the index: the next lookup needs no scan.
	rel, err := e.tree.indexPath(f.ID)
	if err != nil || rel != "e/f" {
		t.Fatalf("index after repair: %q, %v", rel, err)
	}
}

// Lookup finds what the index leads to and never scans: a file the index
// does not know (or knows elsewhere) is stale to it, and the index stays as
// it was.
func TestLookupDoesNotScan(t *testing.T) {
	e := newEnv(t)
	root := e.tree.Root()
	d := e.mkdir(".", root, "d")
	f := e.create("d", d, "f", "x")
	ref, err := e.tree.Lookup(f)
	if err != nil || ref.Rel != "d/f" {
		t.Fatalf("Lookup(%v) = %+v, %v; want d/f", f, ref, err)
	}
	ref.Close()
	if ref, err := e.tree.Lookup(root); err != nil || ref.Rel != "." {
		t.Fatalf("Lookup(root) = %+v, %v", ref, err)
	}
	// Renamed behind nasd's back: the index leads to nothing carrying f.
	if err := os.Rename(filepath.Join(e.vol, "d"), filepath.Join(e.vol, "e")); err != nil {
		t.Fatal(err)
	}
	if ref, err := e.tree.Lookup(f); !errors.Is(err, ErrStale) {
		t.Fatalf("Lookup after a rename outside nasd = %+v, %v; want ErrStale", ref, err)
	}
	if rel, err := e.tree.indexPath(f.ID); err != nil || rel != "d/f" {
		t.Fatalf("index after Lookup: %q, %v; want the old d/f (no scan)", rel, err)
	}
	// Never indexed at all.
	if _, err := e.tree.Lookup(Stamp{ID: 1 << 60, Gen: 1}); !errors.Is(err, ErrStale) {
		t.Fatalf("Lookup of an unknown stamp: %v; want ErrStale", err)
	}
	e.mustResolve(f, "e/f") // Resolve scans
}

func TestDeletedFileIsStaleNeverAnotherFile(t *testing.T) {
	e := newEnv(t)
	root := e.tree.Root()
	f := e.create(".", root, "f", "old")
	if err := os.Remove(filepath.Join(e.vol, "f")); err != nil {
		t.Fatal(err)
	}
	// A new file under the same name (likely the same inode number).
	g := e.create(".", root, "f", "new")
	if g == f {
		t.Fatal("a new file got the deleted file's stamp")
	}
	if _, err := e.resolve(f); !errors.Is(err, ErrStale) {
		t.Fatalf("Resolve(deleted) = %v, want ErrStale", err)
	}
	// Wrong generation with the right ID is stale too.
	if _, err := e.resolve(Stamp{ID: g.ID, Gen: g.Gen + 1}); !errors.Is(err, ErrStale) {
		t.Fatalf("Resolve(wrong gen) = %v, want ErrStale", err)
	}
}

func TestStampAtReissuesCopiesKeepsHardLinks(t *testing.T) {
	e := newEnv(t)
	root := e.tree.Root()
	f := e.create(".", root, "f", "data")
	fd := e.dirFD(".")
	defer unix.Close(fd)

	// A hard link shares the inode, so it shares the identity.
	if err := os.Link(filepath.Join(e.vol, "f"), filepath.Join(e.vol, "link")); err != nil {
		t.Fatal(err)
	}
	if st, err := e.tree.StampAt(fd, root, "link"); err != nil || st != f {
		t.Fatalf("StampAt(hard link) = %v, %v; want %v", st, err, f)
	}
	// A copy that preserved the xattr (cp -a as root) gets a new one.
	if err := os.WriteFile(filepath.Join(e.vol, "copy"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(e.vol, "copy"), XattrName, f.MarshalBinary(), 0); err != nil {
		t.Fatal(err)
	}
	c, err := e.tree.StampAt(fd, root, "copy")
	if err != nil || c == f || c.IsZero() {
		t.Fatalf("StampAt(copy) = %v, %v; want a new stamp", c, err)
	}
	e.mustResolve(f, "f")
	e.mustResolve(c, "copy")
	// A file made by someone else is stamped on first sight.
	if err := os.WriteFile(filepath.Join(e.vol, "new"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := e.tree.StampAt(fd, root, "new")
	if err != nil || n.IsZero() {
		t.Fatalf("StampAt(unstamped) = %v, %v", n, err)
	}
	e.mustResolve(n, "new")
}

func TestReconcile(t *testing.T) {
	e := newEnv(t)
	root := e.tree.Root()
	f := e.create(".", root, "f", "1")
	e.close()
	// While nasd is down: new files, a copy with the xattr, a deletion of
	// an indexed file, a rename.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(e.vol, "x/y"), 0o755))
	must(os.WriteFile(filepath.Join(e.vol, "x/y/new"), nil, 0o644))
	must(os.WriteFile(filepath.Join(e.vol, "dup"), nil, 0o644))
	must(unix.Setxattr(filepath.Join(e.vol, "dup"), XattrName, f.MarshalBinary(), 0))
	must(os.Rename(filepath.Join(e.vol, "f"), filepath.Join(e.vol, "x/f")))
	e.open()
	rs, err := e.tree.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rs.Files != 5 || rs.Stamped != 4 || rs.Reissued != 1 {
		t.Fatalf("Reconcile = %+v; want 5 files, 4 stamped (x, y, new and the re-issued copy), 1 re-issued", rs)
	}
	// Every file now has a distinct stamp the index resolves without a scan.
	seen := map[Stamp]string{}
	for _, rel := range []string{"x", "x/y", "x/y/new", "dup", "x/f"} {
		st, err := lreadStamp(filepath.Join(e.vol, rel))
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		if other, ok := seen[st]; ok {
			t.Fatalf("%s and %s share stamp %v", rel, other, st)
		}
		seen[st] = rel
		got, err := e.tree.indexPath(st.ID)
		if err != nil || got != rel {
			t.Fatalf("index of %s = %q, %v", rel, got, err)
		}
	}
}

func TestIndexGroupCommit(t *testing.T) {
	needRoot(t)
	db, err := bolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	idx, err := OpenIndex(db, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	const n = 3 * maxBatch
	for i := uint64(1); i <= n; i++ {
		idx.Put(i, Loc{Parent: i - 1, Name: "n"})
	}
	idx.Delete(5)
	if err := idx.Close(); err != nil {
		t.Fatal(err)
	}
	idx2, err := OpenIndex(db, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer idx2.Close()
	count := 0
	if err := idx2.All(func(id uint64, l Loc) error {
		count++
		if id == 5 || l.Parent != id-1 {
			t.Errorf("entry %d = %+v", id, l)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if count != n-1 {
		t.Fatalf("committed %d entries, want %d", count, n-1)
	}
}

// Two stampers race for a new file (the NFS server that made it and the
// change-log capture that saw it appear): the first Stamp wins and the
// second caller gets it too, never a second identity.
func TestStampFirstWins(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(filepath.Join(e.vol, "new"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fd := e.dirFD(".")
	defer unix.Close(fd)
	first, err := e.tree.StampAt(fd, e.tree.Root(), "new")
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.tree.Stamp(fd, e.tree.Root(), "new")
	if err != nil || second != first {
		t.Fatalf("second stamper got %v, %v; want the first's %v", second, err, first)
	}
	e.mustResolve(first, "new")
}

// StampAtFresh says when an identity was given or re-issued just now (it
// must then be synced before it is handed out); StampAtSync syncs those,
// whatever the file's type.
func TestStampAtFreshAndSync(t *testing.T) {
	e := newEnv(t)
	root := e.tree.Root()
	fd := e.dirFD(".")
	defer unix.Close(fd)
	if err := os.WriteFile(filepath.Join(e.vol, "made-by-samba"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, fresh, err := e.tree.StampAtFresh(fd, root, "made-by-samba")
	if err != nil || !fresh || st.IsZero() {
		t.Fatalf("first sight: %v fresh %v, %v; want a fresh stamp", st, fresh, err)
	}
	again, fresh, err := e.tree.StampAtFresh(fd, root, "made-by-samba")
	if err != nil || fresh || again != st {
		t.Fatalf("second sight: %v fresh %v, %v; want %v, not fresh", again, fresh, err, st)
	}
	// A copy carrying another file's stamp is re-issued: fresh.
	if err := os.WriteFile(filepath.Join(e.vol, "copy"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(e.vol, "copy"), XattrName, st.MarshalBinary(), 0); err != nil {
		t.Fatal(err)
	}
	if c, fresh, err := e.tree.StampAtFresh(fd, root, "copy"); err != nil || !fresh || c == st {
		t.Fatalf("copy: %v fresh %v, %v; want a fresh new stamp", c, fresh, err)
	}
	// Every type syncs: a file, a directory, a symlink (the file system),
	// a FIFO (never opened).
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(e.vol, "f"), nil, 0o644))
	must(os.Mkdir(filepath.Join(e.vol, "d"), 0o755))
	must(os.Symlink("f", filepath.Join(e.vol, "l")))
	must(unix.Mkfifo(filepath.Join(e.vol, "p"), 0o644))
	for _, name := range []string{"f", "d", "l", "p"} {
		s, err := e.tree.StampAtSync(fd, root, name)
		if err != nil || s.IsZero() {
			t.Errorf("StampAtSync(%s) = %v, %v", name, s, err)
		}
	}
}

// TestRemovedResolvesWithoutScan: a stamp nasd saw removed is stale at
// once; the volume is not scanned for it (here the file is still there, so
// a scan would find it), until Moved places it again.
func TestRemovedResolvesWithoutScan(t *testing.T) {
	e := newEnv(t)
	root := e.tree.Root()
	d := e.mkdir(".", root, "d")
	f := e.create("d", d, "f", "x")
	e.tree.Removed(f)
	if _, err := e.resolve(f); !errors.Is(err, ErrStale) {
		t.Fatalf("Resolve(removed) = %v, want ErrStale without a scan", err)
	}
	e.tree.Moved(f, d, "f")
	e.mustResolve(f, "d/f")
}

// TestScanSkipsSnapshots: a directory named like the capture's snapshot in
// the volume root, holding a copy of a file with its stamp, is never where
// a scan finds the file.
func TestScanSkipsSnapshots(t *testing.T) {
	e := newEnv(t)
	root := e.tree.Root()
	d := e.mkdir(".", root, "d")
	f := e.create("d", d, "f", "x")
	snap := filepath.Join(e.vol, SnapPrefix+"1", "d")
	if err := os.MkdirAll(snap, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(snap, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(snap, "f"), XattrName, f.MarshalBinary(), 0); err != nil {
		t.Fatal(err)
	}
	// Renamed outside nasd: the index is stale, so Resolve scans.
	if err := os.Rename(filepath.Join(e.vol, "d"), filepath.Join(e.vol, "zz")); err != nil {
		t.Fatal(err)
	}
	e.mustResolve(f, "zz/f")
}
