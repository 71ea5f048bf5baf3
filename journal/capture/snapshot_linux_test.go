package capture

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"ftnas/appliance/fileid"
	"ftnas/appliance/fileid/fileidtest"
	"ftnas/journal"
	"ftnas/kernel/btrfs"
	"ftnas/kernel/btrfs/btrfstest"
	"ftnas/kernel/changelog"

	"golang.org/x/sys/unix"
)

// testTree opens the volume's fileid tree, its index in a bbolt file
// outside the volume.
func testTree(t *testing.T, vol string) *fileid.Tree {
	return fileidtest.OpenTree(t, vol, 1000, quiet())
}

// newTestCapture makes a capture of the share root share (volume-relative,
// "" for the volume) of vol, with a journal of its own, closed when the
// test ends.
func newTestCapture(t *testing.T, vol string, tree *fileid.Tree, share string, noSnap bool) (*Capture, *journal.Log) {
	t.Helper()
	jl, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), journal.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jl.Close() })
	c, err := New(Config{
		Volume: vol, Tree: tree, Shares: []changelog.Share{{FSID: 1, Root: filepath.Join(vol, share)}},
		Log: jl, NoSnapshot: noSnap, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, jl
}

// describeRun is one capture term on vol: it makes a capture of the
// share root (volume-relative), runs it until a Sync after its
// description (so every change made before, also during the
// description, is in the log), and returns the log's records and the
// capture's stats.
func describeRun(t *testing.T, vol string, tree *fileid.Tree, share string, noSnap bool, hook func(*Capture)) ([]journal.Record, Stats) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify filesystem marks")
	}
	c, jl := newTestCapture(t, vol, tree, share, noSnap)
	defer c.Close()
	if hook != nil {
		c.afterSnapshot = func() { hook(c) }
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	// The first Sync returns after the description landed (it is a
	// batch of its own, before any marker's); the second one after every
	// change made until then, the snapshot's removal among them.
	for range 2 {
		if err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("capture run: %v", err)
	}
	recs, err := jl.Read(jl.First(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return recs, c.Stats()
}

// shareVolume is a btrfs volume with a share "s" filled by makeTree, and
// its fileid tree.
func shareVolume(t *testing.T) (vol, share string, tree *fileid.Tree) {
	t.Helper()
	vol = btrfstest.Volume(t)
	share = filepath.Join(vol, "s")
	if err := os.Mkdir(share, 0o755); err != nil {
		t.Fatal(err)
	}
	makeTree(t, share)
	return vol, share, testTree(t, vol)
}

// makeTree fills dir with one of everything.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{"a", "a/b", "a/b/c", "e"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, f := range []string{"f1", "a/f2", "a/b/f3", "a/b/c/f4", "e/f5", "empty"} {
		data := strings.Repeat("x", i*100)
		if err := os.WriteFile(filepath.Join(dir, f), []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a/f2", filepath.Join(dir, "sl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "f1"), filepath.Join(dir, "a", "hard")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(dir, "a", "f2"), "user.k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
}

// comparable strips what differs between two runs of the same
// description (sequence, epoch, capture time).
func comparable(recs []journal.Record) []journal.Record {
	out := make([]journal.Record, len(recs))
	for i, r := range recs {
		r.Seq, r.Epoch, r.Time = 0, 0, 0
		if r.Data == nil {
			r.Data = []byte{}
		}
		out[i] = r
	}
	return out
}

func snapshotsIn(t *testing.T, vol string) []string {
	t.Helper()
	ents, err := os.ReadDir(vol)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), SnapPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// On a quiet tree, the description from a snapshot is the walk's, record
// for record; the share is the volume root, so the snapshot's own entry
// (made and removed there) would show if its events gave records.
func TestDescribeSnapshotEqualsWalk(t *testing.T) {
	vol := btrfstest.Volume(t)
	makeTree(t, vol)
	// A nested subvolume, which the snapshot shows empty: read live.
	nested := false
	if _, err := exec.LookPath("btrfs"); err == nil {
		if out, err := exec.Command("btrfs", "subvolume", "create", filepath.Join(vol, "a", "nested")).CombinedOutput(); err != nil {
			t.Fatalf("btrfs subvolume create: %v: %s", err, out)
		}
		makeTree(t, filepath.Join(vol, "a", "nested"))
		nested = true
	}
	tree := testTree(t, vol)
	// A first term stamps every file; the two compared find them stamped.
	describeRun(t, vol, tree, ".", true, nil)
	walk, ws := describeRun(t, vol, tree, ".", true, nil)
	snap, ss := describeRun(t, vol, tree, ".", false, nil)
	if ws.Description != DescribedWalk || ss.Description != DescribedSnapshot {
		t.Fatalf("descriptions made by %q and %q", ws.Description, ss.Description)
	}
	if nested && strings.Count(describe(snap), "create f4") != 2 {
		t.Errorf("the nested subvolume's files are not described: %s", describe(snap))
	}
	if len(walk) < 15 {
		t.Fatalf("the walk gave only %d records: %s", len(walk), describe(walk))
	}
	if !reflect.DeepEqual(comparable(walk), comparable(snap)) {
		t.Fatalf("records differ\nwalk:     %s\nsnapshot: %s", describeFull(walk), describeFull(snap))
	}
	for _, r := range snap {
		if strings.HasPrefix(r.Name, SnapPrefix) || strings.HasPrefix(r.NewName, SnapPrefix) {
			t.Fatalf("a record names the snapshot: %s %s", r.Op, r.Name)
		}
	}
	if s := snapshotsIn(t, vol); len(s) != 0 {
		t.Fatalf("snapshots left: %v", s)
	}
}

// standbyOf applies recs to a strict fake standby of a volume whose root
// has Stamp root (contents are not modelled: writes and setattrs only
// need their file there).
func standbyOf(t *testing.T, root fileid.Stamp, share string, recs []journal.Record) *fakeStandby {
	t.Helper()
	sb := newFakeStandby(&fakeFS{root: &fnode{st: root}, byStamp: map[fileid.Stamp]*fnode{}, share: share})
	for _, r := range recs {
		if err := sb.apply(r); err != nil {
			t.Fatalf("apply %s %s: %v\nrecords:\n%s", r.Op, r.Name, err, describeFull(recs))
		}
	}
	return sb
}

// diffLive returns the first difference between the live directory p and
// the standby's sn (names, types, Stamps), or "".
func diffLive(t *testing.T, p string, sn *snode) string {
	st, err := fileid.ReadStamp(unix.AT_FDCWD, p)
	if err != nil {
		return fmt.Sprintf("%s: %v", p, err)
	}
	if st != sn.st {
		return fmt.Sprintf("%s: stamp %v live, %v on the standby", p, st, sn.st)
	}
	var sb unix.Stat_t
	if err := unix.Lstat(p, &sb); err != nil {
		return err.Error()
	}
	if sb.Mode&unix.S_IFMT != sn.mode&journal.ModeType {
		return fmt.Sprintf("%s: type %o live, %o on the standby", p, sb.Mode&unix.S_IFMT, sn.mode&journal.ModeType)
	}
	if sb.Mode&unix.S_IFMT == unix.S_IFLNK {
		if target, _ := os.Readlink(p); target != sn.target {
			return fmt.Sprintf("%s: target %q live, %q on the standby", p, target, sn.target)
		}
	}
	if sn.kids == nil {
		return ""
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return err.Error()
	}
	live := map[string]bool{}
	for _, e := range ents {
		live[e.Name()] = true
		k := sn.kids[e.Name()]
		if k == nil {
			return fmt.Sprintf("%s/%s: missing on the standby", p, e.Name())
		}
		if d := diffLive(t, filepath.Join(p, e.Name()), k); d != "" {
			return d
		}
	}
	for k := range sn.kids {
		if !live[k] {
			return fmt.Sprintf("%s/%s: only on the standby", p, k)
		}
	}
	return ""
}

// Changes made between the snapshot and its reading (so the live volume
// and the snapshot differ all through the description) come after the
// description in the log, and the standby converges: moves of stamped and
// of unstamped files and of a directory, a creation, removals, a write.
func TestDescribeSnapshotChangedDuring(t *testing.T) {
	vol, share, tree := shareVolume(t)
	describeRun(t, vol, tree, "s", true, nil) // stamps what is there now
	// Unstamped files: the description stamps them on the live volume,
	// or finds them moved or gone there.
	for _, f := range []string{"u1", "a/u2", "a/b/u3"} {
		if err := os.WriteFile(filepath.Join(share, f), []byte("u"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in := func(p string) string { return filepath.Join(share, p) }
	// A copy that kept another file's Stamp: re-issued, as by a walk.
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(in("a/f2"), fileid.XattrName, buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in("dup"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(in("dup"), fileid.XattrName, buf[:n], 0); err != nil {
		t.Fatal(err)
	}
	hooked := false
	recs, st := describeRun(t, vol, tree, "s", false, func(c *Capture) {
		hooked = true
		for _, op := range []func() error{
			func() error { return os.Rename(in("a/b/f3"), in("e/f3")) }, // stamped file moved
			func() error { return os.Rename(in("a/u2"), in("e/u2")) },   // unstamped file moved
			func() error { return os.Remove(in("a/b/u3")) },             // unstamped file gone
			func() error { return os.Rename(in("a/b/c"), in("c")) },     // directory moved up
			func() error { return os.Rename(in("e"), in("a/b/c2")) },    // and one moved down
			func() error { return os.Remove(in("f1")) },                 // a name of a hard link
			func() error { return os.WriteFile(in("new"), nil, 0o600) }, // a new file
			func() error { return os.WriteFile(in("u1"), []byte("more"), 0o644) },
		} {
			if err := op(); err != nil {
				t.Error(err)
			}
		}
		if s := snapshotsIn(t, vol); len(s) != 1 {
			t.Errorf("snapshots during the description: %v", s)
		}
	})
	if !hooked || st.Description != DescribedSnapshot {
		t.Fatalf("description made by %q (hook ran: %v)", st.Description, hooked)
	}
	idx := func(op journal.Op, name string) []int {
		var at []int
		for i, r := range recs {
			if r.Op == op && r.Name == name {
				at = append(at, i)
			}
		}
		return at
	}
	// f3 is described where the snapshot has it, then moved; u2, moved
	// before the description stamped it, is made where it went; u3 never.
	if c, m := idx(journal.OpCreate, "f3"), idx(journal.OpRename, "f3"); len(c) != 1 || len(m) != 1 || c[0] > m[0] {
		t.Errorf("f3: creates at %v, renames at %v", c, m)
	}
	if c := idx(journal.OpCreate, "u2"); len(c) != 1 {
		t.Errorf("u2: creates at %v", c)
	}
	if c := idx(journal.OpCreate, "u3"); len(c) != 0 {
		t.Errorf("u3: creates at %v", c)
	}
	sb := standbyOf(t, tree.Root(), "s", recs)
	if sn := sb.root.kids["s"]; sn == nil {
		t.Fatal("share missing on the standby")
	} else if d := diffLive(t, share, sn); d != "" {
		t.Fatalf("%s\nrecords:\n%s", d, describeFull(recs))
	}
	if s := snapshotsIn(t, vol); len(s) != 0 {
		t.Fatalf("snapshots left: %v", s)
	}
}

// A description that fails (its records cannot be appended) still removes
// its snapshot.
func TestDescribeSnapshotRemovedOnError(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify filesystem marks")
	}
	vol := btrfstest.Volume(t)
	makeTree(t, vol)
	c, jl := newTestCapture(t, vol, testTree(t, vol), "", false)
	defer c.Close()
	var during []string
	c.afterSnapshot = func() {
		during = snapshotsIn(t, vol)
		jl.Close()
	}
	if err := c.Run(context.Background()); err == nil {
		t.Fatal("Run on a closed log succeeded")
	}
	if len(during) != 1 {
		t.Fatalf("snapshots during the description: %v", during)
	}
	if s := snapshotsIn(t, vol); len(s) != 0 {
		t.Fatalf("snapshots left after the error: %v", s)
	}
}

// A snapshot a crash left is removed when the next capture starts; an
// entry with its prefix that is no subvolume is not touched.
func TestLeftoverSnapshotRemoved(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify filesystem marks")
	}
	vol := btrfstest.Volume(t)
	makeTree(t, vol)
	fd, err := unix.Open(vol, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := btrfs.Snapshot(fd, fd, SnapPrefix+"7"); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(vol, SnapPrefix+"plain")
	if err := os.Mkdir(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	c, _ := newTestCapture(t, vol, testTree(t, vol), "", false)
	c.Close()
	if s := snapshotsIn(t, vol); !reflect.DeepEqual(s, []string{SnapPrefix + "plain"}) {
		t.Fatalf("after New: %v, want only the plain directory", s)
	}
}

// A volume that is not btrfs is described by the walk; so is a btrfs
// volume mounted below its subvolume's root.
func TestDescribeWalkWithoutSnapshot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts, fanotify filesystem marks")
	}
	// A tmpfs of its own: a filesystem mark must not cover the host's.
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	makeTree(t, dir)
	recs, st := describeRun(t, dir, testTree(t, dir), ".", false, func(*Capture) {
		t.Error("a snapshot was made")
	})
	if st.Description != DescribedWalk || len(recs) < 15 {
		t.Fatalf("description made by %q, %d records", st.Description, len(recs))
	}

	vol := btrfstest.Volume(t)
	sub := filepath.Join(vol, "sub")
	makeTree(t, vol)
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	makeTree(t, sub)
	recs, st = describeRun(t, sub, testTree(t, sub), ".", false, func(*Capture) {
		t.Error("a snapshot was made")
	})
	if st.Description != DescribedWalk || len(recs) < 15 {
		t.Fatalf("description made by %q, %d records", st.Description, len(recs))
	}
}
