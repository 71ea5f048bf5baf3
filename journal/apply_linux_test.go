package journal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"ftnas/appliance/fileid"
	"ftnas/appliance/fileid/fileidtest"

	"golang.org/x/sys/unix"
)

// volume is a directory with its fileid index, as nasd has one.
type volume struct {
	dir  string
	tree *fileid.Tree
}

func openVolume(t *testing.T, dir string, firstID uint64, root fileid.Stamp) *volume {
	t.Helper()
	if root.ID != 0 {
		if err := unix.Setxattr(dir, fileid.XattrName, root.MarshalBinary(), 0); err != nil {
			t.Fatal(err)
		}
	}
	tree := fileidtest.OpenTree(t, dir, firstID, quietLogger())
	return &volume{dir: dir, tree: tree}
}

// stampAt stamps (if needed) and returns the Stamp of rel.
func (v *volume) stampAt(t *testing.T, rel string) fileid.Stamp {
	t.Helper()
	dir, name := filepath.Split(rel)
	dir = filepath.Clean(dir)
	fd, err := v.tree.OpenDir(dir, unix.O_PATH)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	dirSt := v.tree.Root()
	if dir != "." {
		if dirSt, err = fileid.ReadStamp(fd, "."); err != nil {
			t.Fatal(err)
		}
	}
	st, err := v.tree.StampAt(fd, dirSt, name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (v *volume) path(rel string) string { return filepath.Join(v.dir, rel) }

// entry is what the comparison looks at.
type entry struct {
	mode     fs.FileMode
	uid, gid uint32
	size     int64
	mtime    int64 // regular files only
	sum      [32]byte
	target   string
	xattrs   string
	rdev     uint64
}

func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var sb unix.Stat_t
		if err := unix.Lstat(p, &sb); err != nil {
			return err
		}
		e := entry{uid: sb.Uid, gid: sb.Gid, mode: fs.FileMode(sb.Mode)}
		if e.mode&unix.S_IFMT != unix.S_IFDIR {
			e.size = sb.Size
		}
		switch sb.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.sum, e.mtime = sha256.Sum256(b), sb.Mtim.Nano()
		case unix.S_IFLNK:
			e.target, _ = os.Readlink(p)
		case unix.S_IFCHR, unix.S_IFBLK:
			e.rdev = sb.Rdev
		}
		xs, err := listXattrs(pathXattrs(p))
		if err != nil {
			return err
		}
		var b bytes.Buffer
		for _, x := range xs {
			b.WriteString(x.Name + "=" + string(x.Value) + ";")
		}
		if v, err := pathXattrs(p).value(fileid.XattrName); err == nil {
			st, err := fileid.ParseStamp(v)
			if err != nil {
				return err
			}
			b.WriteString("stamp=" + st.String())
		}
		e.xattrs = b.String()
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareTrees(t *testing.T, master, standby string) {
	t.Helper()
	m, s := snapshot(t, master), snapshot(t, standby)
	var names []string
	for k := range m {
		names = append(names, k)
	}
	for k := range s {
		if _, ok := m[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		me, mok := m[k]
		se, sok := s[k]
		switch {
		case !mok:
			t.Errorf("%s: only on the standby", k)
		case !sok:
			t.Errorf("%s: missing on the standby", k)
		case k == ".":
			// The roots are different directories with the same stamp.
			if me.xattrs != se.xattrs {
				t.Errorf("root xattrs %q vs %q", me.xattrs, se.xattrs)
			}
		case me != se:
			t.Errorf("%s differs:\n master  %+v\n standby %+v", k, me, se)
		}
	}
}

// gatedSource wraps a Source and, when armed, holds the first data fetch at
// or past an offset until released.
type gatedSource struct {
	inner   Source
	mu      sync.Mutex
	armAt   uint64
	reached chan struct{}
	release chan struct{}
}

func (g *gatedSource) Fetch(ctx context.Context, q *FetchRequest) (*FetchReply, error) {
	g.mu.Lock()
	hold := g.reached != nil && q.What&FetchData != 0 && q.Off >= g.armAt
	var reached, release chan struct{}
	if hold {
		reached, release = g.reached, g.release
		g.reached = nil
	}
	g.mu.Unlock()
	if hold {
		close(reached)
		<-release
	}
	return g.inner.Fetch(ctx, q)
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestFSApplier(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: trusted.* xattrs, chown, mknod")
	}
	ctx := context.Background()
	m := openVolume(t, t.TempDir(), 1000, fileid.Stamp{})
	s := openVolume(t, t.TempDir(), 1<<40, m.tree.Root())
	if s.tree.Root() != m.tree.Root() {
		t.Fatalf("standby root %v, master root %v", s.tree.Root(), m.tree.Root())
	}
	root := m.tree.Root()
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true})
	var recs []Record
	add := func(r Record) {
		r.Share = 1
		recs = append(recs, r)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// Phase 1: a bit of everything, all done on the master before any of it
	// is shipped (the standby sees final contents: eventual consistency).
	must(os.Mkdir(m.path("docs"), 0o755))
	docs := m.stampAt(t, "docs")
	add(Record{Op: OpMkdir, File: docs, Parent: root, Name: "docs", Mode: 0o755})

	must(os.WriteFile(m.path("docs/a.txt"), randomBytes(300_000, 1), 0o640))
	must(os.Chown(m.path("docs/a.txt"), 1234, 5678))
	must(os.Chmod(m.path("docs/a.txt"), 0o640))
	a := m.stampAt(t, "docs/a.txt")
	add(Record{Op: OpCreate, File: a, Parent: docs, Name: "a.txt", Mode: ModeReg | 0o640, UID: 1234, GID: 5678})
	add(Record{Op: OpWrite, File: a})
	must(unix.Lsetxattr(m.path("docs/a.txt"), "user.note", []byte("hi"), 0))
	add(Record{Op: OpSetXattr, File: a, Name: "user.note"})
	must(unix.Lsetxattr(m.path("docs/a.txt"), "user.keep", []byte("kept"), 0))
	add(Record{Op: OpSetXattr, File: a, Name: "user.keep", Flags: FlagInline, Data: []byte("kept")})

	big := randomBytes(9<<20+12345, 2)
	must(os.WriteFile(m.path("docs/big.bin"), big, 0o644))
	bigSt := m.stampAt(t, "docs/big.bin")
	add(Record{Op: OpCreate, File: bigSt, Parent: docs, Name: "big.bin", Mode: ModeReg | 0o644})
	add(Record{Op: OpWrite, File: bigSt})

	// Written in known ranges: prefetched as its records arrive, in a
	// pooled buffer given back once the batch is applied.
	must(os.WriteFile(m.path("docs/ranged.bin"), randomBytes(3<<20+777, 3), 0o644))
	ranged := m.stampAt(t, "docs/ranged.bin")
	add(Record{Op: OpCreate, File: ranged, Parent: docs, Name: "ranged.bin", Mode: ModeReg | 0o644})
	add(Record{Op: OpWrite, File: ranged, Off: 0, Len: 3<<20 + 777})

	must(os.Symlink("a.txt", m.path("docs/ln")))
	ln := m.stampAt(t, "docs/ln")
	add(Record{Op: OpSymlink, File: ln, Parent: docs, Name: "ln", Target: "a.txt"})

	must(os.WriteFile(m.path("h1"), []byte("first"), 0o600))
	h1 := m.stampAt(t, "h1")
	add(Record{Op: OpCreate, File: h1, Parent: root, Name: "h1", Mode: ModeReg | 0o600})
	must(os.Link(m.path("h1"), m.path("h2")))
	add(Record{Op: OpLink, File: h1, Parent: root, Name: "h2"})
	must(os.WriteFile(m.path("h1"), []byte("second, longer"), 0o600))
	add(Record{Op: OpWrite, File: h1})

	must(unix.Mkfifo(m.path("docs/fifo"), 0o620))
	must(os.Chmod(m.path("docs/fifo"), 0o620)) // past the umask
	fifo := m.stampAt(t, "docs/fifo")
	add(Record{Op: OpCreate, File: fifo, Parent: docs, Name: "fifo", Mode: ModeFIFO | 0o620})
	must(unix.Mknod(m.path("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(os.Chmod(m.path("null"), 0o666))
	null := m.stampAt(t, "null")
	add(Record{Op: OpCreate, File: null, Parent: root, Name: "null", Mode: ModeChar | 0o666, Rdev: unix.Mkdev(1, 3)})

	must(os.Rename(m.path("docs/a.txt"), m.path("b.txt")))
	m.tree.Moved(a, root, "b.txt")
	add(Record{Op: OpRename, File: a, Parent: docs, Name: "a.txt", NewParent: root, NewName: "b.txt"})

	f, err := os.OpenFile(m.path("b.txt"), os.O_WRONLY, 0)
	must(err)
	_, err = f.WriteAt([]byte("0123456789"), 100)
	must(err)
	add(Record{Op: OpWrite, File: a, Off: 100, Len: 10})
	_, err = f.WriteAt([]byte("INLINE"), 0)
	must(err)
	add(Record{Op: OpWrite, File: a, Flags: FlagInline, Off: 0, Len: 6, Data: []byte("INLINE")})
	must(f.Truncate(5000))
	add(Record{Op: OpTruncate, File: a, Size: 5000})
	must(f.Close())

	must(os.Chmod(m.path("docs/big.bin"), 0o600))
	add(Record{Op: OpSetAttr, File: bigSt, AttrMask: AttrMode, Mode: 0o600})
	at, mt := time.Unix(1_600_000_000, 123), time.Unix(1_700_000_000, 456_789)
	must(os.Chtimes(m.path("b.txt"), at, mt))
	add(Record{Op: OpSetAttr, File: a, AttrMask: AttrAtime | AttrMtime, Atime: at.UnixNano(), Mtime: mt.UnixNano()})
	must(os.Chown(m.path("docs"), 42, 43))
	add(Record{Op: OpSetAttr, File: docs}) // unknown attributes: fetched
	must(unix.Lremovexattr(m.path("b.txt"), "user.note"))
	add(Record{Op: OpRemoveXattr, File: a, Name: "user.note"})

	must(os.Mkdir(m.path("tmp"), 0o700))
	tmp := m.stampAt(t, "tmp")
	add(Record{Op: OpMkdir, File: tmp, Parent: root, Name: "tmp", Mode: 0o700})
	must(os.WriteFile(m.path("tmp/x"), nil, 0o600))
	x := m.stampAt(t, "tmp/x")
	add(Record{Op: OpCreate, File: x, Parent: tmp, Name: "x", Mode: ModeReg | 0o600})
	add(Record{Op: OpWrite, File: x}) // fetched after x is gone: skipped
	must(os.Remove(m.path("tmp/x")))
	m.tree.Removed(x)
	add(Record{Op: OpRemove, File: x, Parent: tmp, Name: "x"})
	must(os.Remove(m.path("tmp")))
	m.tree.Removed(tmp)
	add(Record{Op: OpRmdir, File: tmp, Parent: root, Name: "tmp"})

	last, err := l.Append(ctx, recs...)
	must(err)

	src := &gatedSource{inner: NewFSSource(m.tree)}
	pos := NewPositionFile(filepath.Join(t.TempDir(), "position"))
	app, err := NewFSApplier(FSApplierConfig{Tree: s.tree, Position: pos, Logger: quietLogger()})
	must(err)
	defer app.Close()
	waiter := &positionWaiter{Applier: app, changed: make(chan struct{})}
	shipper := newShipper(t, l, func(c *ShipperConfig) { c.Source = src })
	receiver := newReceiver(t, waiter, nil)
	// The applier gives large replies' buffers back for reuse: a reply
	// used after that would read the poison.
	receiver.bufs.poison = true
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pa, pb := net.Pipe()
	go func() {
		if err := shipper.Serve(sctx, pa); sctx.Err() == nil {
			t.Errorf("shipper: %v", err)
		}
	}()
	go func() {
		if err := receiver.Serve(sctx, pb); sctx.Err() == nil {
			t.Errorf("receiver: %v", err)
		}
	}()

	waiter.wait(t, last)
	compareTrees(t, m.dir, s.dir)
	st := app.Stats()
	if st.Records != uint64(len(recs)) || st.Vanished != 1 || st.Clones+st.Copies == 0 || st.Prefetched != 3<<20+777 {
		t.Errorf("stats %+v; want %d records, 1 vanished, working copies made, ranged.bin prefetched", st, len(recs))
	}
	if ref, err := s.tree.Resolve(bigSt); err != nil || ref.Rel != "docs/big.bin" {
		t.Fatalf("standby resolves the master's stamp of big.bin to %v, %v", ref, err)
	} else {
		ref.Close()
	}
	if got, err := pos.Load(); err != nil || got.Seq != last || got.LogID != l.ID() {
		t.Fatalf("saved position %+v, %v", got, err)
	}

	// Phase 2: the delta. Three bytes change in the middle of a 9 MiB file:
	// one 64 KiB block travels.
	before := app.Stats()
	patch := func(off int64, b []byte) {
		f, err := os.OpenFile(m.path("docs/big.bin"), os.O_WRONLY, 0)
		must(err)
		_, err = f.WriteAt(b, off)
		must(err)
		must(f.Close())
	}
	var dirBefore, dirAfter unix.Stat_t
	must(unix.Stat(s.path("docs"), &dirBefore))
	patch(5<<20+7, []byte("xyz"))
	last, err = l.Append(ctx, Record{Op: OpWrite, Share: 1, File: bigSt})
	must(err)
	waiter.wait(t, last)
	compareTrees(t, m.dir, s.dir)
	// Replacing the file by its new copy leaves the directory's times.
	must(unix.Stat(s.path("docs"), &dirAfter))
	if dirAfter.Mtim != dirBefore.Mtim {
		t.Errorf("the write moved the standby directory's mtime from %v to %v", dirBefore.Mtim, dirAfter.Mtim)
	}
	if got := app.Stats().BytesFetched - before.BytesFetched; got != DefaultBlockSize {
		t.Errorf("a 3-byte change fetched %d bytes, want one %d-byte block", got, DefaultBlockSize)
	}

	// Phase 3: nothing half-applied under the final name. Hold the fetch of
	// the second chunk; meanwhile big.bin must still be the old version.
	old, err := os.ReadFile(s.path("docs/big.bin"))
	must(err)
	oldNames := snapshot(t, s.dir)
	src.mu.Lock()
	src.armAt, src.reached, src.release = MaxFetchData, make(chan struct{}), make(chan struct{})
	reached, release := src.reached, src.release
	src.mu.Unlock()
	patch(10, []byte("first chunk"))
	patch(6<<20, []byte("second chunk"))
	last, err = l.Append(ctx, Record{Op: OpWrite, Share: 1, File: bigSt})
	must(err)
	select {
	case <-reached:
	case <-time.After(20 * time.Second):
		t.Fatal("second chunk never fetched")
	}
	now, err := os.ReadFile(s.path("docs/big.bin"))
	must(err)
	if !bytes.Equal(now, old) {
		t.Error("big.bin changed under its name before the update was complete")
	}
	mid := snapshot(t, s.dir)
	if len(mid) != len(oldNames) {
		t.Errorf("entries appeared mid-update: %d, were %d", len(mid), len(oldNames))
	}
	close(release)
	waiter.wait(t, last)
	compareTrees(t, m.dir, s.dir)

	// A range of an existing file rewritten: patched in place from its
	// prefetched reply, whose buffer goes back only once the patch is
	// written.
	before = app.Stats()
	rf, err := os.OpenFile(m.path("docs/ranged.bin"), os.O_WRONLY, 0)
	must(err)
	_, err = rf.WriteAt(randomBytes(600_000, 4), 1<<20)
	must(err)
	must(rf.Close())
	last, err = l.Append(ctx, Record{Op: OpWrite, Share: 1, File: ranged, Off: 1 << 20, Len: 600_000})
	must(err)
	waiter.wait(t, last)
	compareTrees(t, m.dir, s.dir)
	if st := app.Stats(); st.Patched == before.Patched || st.Prefetched-before.Prefetched != 600_000 {
		t.Errorf("the rewritten range was not prefetched and patched: %+v", st)
	}
	cancel()

	// A standby that crashed before its commit applies records again: the
	// replay of everything converges on the same tree.
	for _, r := range recs {
		if err := app.Apply(ctx, r, directFetcher{src}); err != nil {
			t.Fatalf("replay of %s %s: %v", r.Op, r.File, err)
		}
	}
	compareTrees(t, m.dir, s.dir)
}

// directFetcher fetches from a Source without a session.
type directFetcher struct{ s Source }

func (d directFetcher) Fetch(ctx context.Context, q *FetchRequest) (*FetchReply, error) {
	p, err := d.s.Fetch(ctx, q)
	if errors.Is(err, fileid.ErrStale) {
		return nil, ErrNotFound
	}
	return p, err
}

// positionWaiter is an Applier that signals each commit.
type positionWaiter struct {
	Applier
	mu      sync.Mutex
	seq     uint64
	changed chan struct{}
}

// ApplyBatch passes batches on (the FSApplier takes them whole).
func (w *positionWaiter) ApplyBatch(ctx context.Context, recs []Record, f Fetcher) (int, error) {
	return w.Applier.(BatchApplier).ApplyBatch(ctx, recs, f)
}

// Prefetch passes on to an applier that prefetches (the FSApplier).
func (w *positionWaiter) Prefetch(ctx context.Context, recs []Record, f Fetcher) {
	if pf, ok := w.Applier.(Prefetcher); ok {
		pf.Prefetch(ctx, recs, f)
	}
}

func (w *positionWaiter) Commit(pos Position) error {
	if err := w.Applier.Commit(pos); err != nil {
		return err
	}
	w.mu.Lock()
	w.seq = pos.Seq
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
	return nil
}

func (w *positionWaiter) wait(t *testing.T, seq uint64) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		w.mu.Lock()
		got, ch := w.seq, w.changed
		w.mu.Unlock()
		if got >= seq {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("applied up to %d, waiting for %d", got, seq)
		}
	}
}

// TestFSApplierSkipsChangesToUnknownFiles: a change to a file this standby
// does not have (its stamp resolves nowhere: fileid.ErrStale) is counted
// as vanished and skipped, as a deferred fetch of it is, not failed (the
// session would retry it forever: chaos seed 98).
func TestFSApplierSkipsChangesToUnknownFiles(t *testing.T) {
	m := openVolume(t, t.TempDir(), 1<<40, fileid.Stamp{})
	s := openVolume(t, t.TempDir(), 1<<40, m.tree.Root())
	app, err := NewFSApplier(FSApplierConfig{Tree: s.tree, Position: NewPositionFile(filepath.Join(t.TempDir(), "position")), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	ghost := fileid.Stamp{ID: 1 << 40, Gen: 7}
	for _, rec := range []Record{
		{Seq: 1, Epoch: 1, Op: OpWrite, Share: 1, File: ghost, Flags: FlagInline, Off: 0, Len: 3, Data: []byte("abc")},
		{Seq: 2, Epoch: 1, Op: OpTruncate, Share: 1, File: ghost, Size: 1},
		{Seq: 3, Epoch: 1, Op: OpSetAttr, Share: 1, File: ghost, AttrMask: AttrMode, Mode: 0o644},
	} {
		if err := app.Apply(context.Background(), rec, nil); err != nil {
			t.Fatalf("%s of a file the standby lacks: %v", rec.Op, err)
		}
	}
	if st := app.Stats(); st.Vanished != 3 {
		t.Fatalf("vanished %d, want 3", st.Vanished)
	}
}
