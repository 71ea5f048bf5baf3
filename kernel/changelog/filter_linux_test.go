package changelog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// collector receives a Filter's changes in a test.
type collector struct {
	t  *testing.T
	ch chan Change
}

// startFilter runs a Filter until the test ends. buffer is the capacity of
// the changes channel (0: Run blocks on every change until the test reads).
func startFilter(t *testing.T, o Options, buffer int) (*Filter, *collector) {
	t.Helper()
	f, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{t: t, ch: make(chan Change, buffer)}
	errc := make(chan error, 1)
	go func() { errc <- f.Run(ctx, c.ch) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f, c
}

// until reads changes until one satisfies pred and returns all it read.
func (c *collector) until(what string, pred func(Change) bool) []Change {
	c.t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	var got []Change
	for {
		select {
		case ch := <-c.ch:
			got = append(got, ch)
			if pred(ch) {
				return got
			}
		case <-deadline.C:
			c.t.Fatalf("timed out waiting for %s; got %d changes, last: %v", what, len(got), tail(got, 10))
		}
	}
}

// mark creates name in dir from a shell and returns every change up to its
// creation: events arrive in order, so everything made before it is in.
func (c *collector) mark(dir string, share uint64, name string) []Change {
	c.t.Helper()
	sh(c.t, dir, "touch "+name)
	return c.until("marker "+name, func(ch Change) bool {
		return ch.Op == OpCreate && ch.Share == share && ch.Path == name
	})
}

func tail(cs []Change, n int) []Change {
	if len(cs) > n {
		return cs[len(cs)-n:]
	}
	return cs
}

// want is an expected change; zero fields other than Op, Share and Path are
// compared too.
type want struct {
	Op      Op
	Share   uint64
	Path    string
	OldPath string
	IsDir   bool
	Moved   bool
}

func (w want) matches(c Change) bool {
	return c.Op == w.Op && c.Share == w.Share && c.Path == w.Path && c.OldPath == w.OldPath &&
		c.IsDir == w.IsDir && c.Moved == w.Moved
}

// expectInOrder checks that want appear in got in this order (other changes
// may come between) and returns the index of each in got.
func expectInOrder(t *testing.T, got []Change, wants []want) []int {
	t.Helper()
	idx := make([]int, len(wants))
	i := 0
	for wi, w := range wants {
		for i < len(got) && !w.matches(got[i]) {
			i++
		}
		if i == len(got) {
			var b strings.Builder
			for _, c := range got {
				fmt.Fprintf(&b, "\n  %v", c)
			}
			t.Fatalf("missing (in order) %+v; got:%s", w, b.String())
		}
		idx[wi] = i
		i++
	}
	return idx
}

func mkdirs(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFilterEveryOpExt4(t *testing.T) {
	vol := newVolume(t, "ext4")
	s1, s2 := filepath.Join(vol, "s1"), filepath.Join(vol, "s2")
	mkdirs(t, s1+"/pre/deep", s2, vol+"/out")
	_, c := startFilter(t, Options{Volume: vol, Shares: []Share{{1, s1}, {2, s2}}}, 1024)

	sh(t, vol, `
mkdir s1/d
echo x > s1/d/f
truncate -s 0 s1/d/f
chmod 600 s1/d/f
chown 1:1 s1/d/f
touch -m -d @1000000000 s1/d/f
touch -d @1000000000 s1/d/f
setfattr -n user.k -v v s1/d/f
setfattr -x user.k s1/d/f
mkdir s1/e
mv s1/d/f s1/e/g
mkdir s1/d/sub
mv s1/d/sub s1/e/sub2
echo y > s1/e/sub2/h
ln s1/e/g s1/e/link
ln -s g s1/e/sym
rm s1/e/link
rm s1/e/sub2/h
rmdir s1/e/sub2
echo z > s1/pre/deep/p
mv s1/pre s1/e/pre2
echo w > s1/e/pre2/deep/q
chmod 700 s1/e/pre2/deep
touch out/x
mv s1/e/g s2/g
mv out/x s1/x
mv s1/x out/y
mkdir out/od
mv out/od s2/od
`)
	got := c.mark(s1, 1, "mark1")
	idx := expectInOrder(t, got, []want{
		{Op: OpCreate, Share: 1, Path: "d", IsDir: true},
		{Op: OpCreate, Share: 1, Path: "d/f"},
		{Op: OpModify, Share: 1, Path: "d/f"},
		{Op: OpCloseWrite, Share: 1, Path: "d/f"},
		{Op: OpModify, Share: 1, Path: "d/f"}, // truncate
		{Op: OpAttrib, Share: 1, Path: "d/f"}, // chmod
		{Op: OpAttrib, Share: 1, Path: "d/f"}, // chown
		{Op: OpModify, Share: 1, Path: "d/f"}, // utimes, mtime only
		{Op: OpAttrib, Share: 1, Path: "d/f"}, // utimes, atime and mtime
		{Op: OpAttrib, Share: 1, Path: "d/f"}, // setxattr
		{Op: OpAttrib, Share: 1, Path: "d/f"}, // removexattr
		{Op: OpCreate, Share: 1, Path: "e", IsDir: true},
		{Op: OpRename, Share: 1, Path: "e/g", OldPath: "d/f"},
		{Op: OpCreate, Share: 1, Path: "d/sub", IsDir: true},
		{Op: OpRename, Share: 1, Path: "e/sub2", OldPath: "d/sub", IsDir: true},
		{Op: OpCreate, Share: 1, Path: "e/sub2/h"},
		{Op: OpCreate, Share: 1, Path: "e/link"},
		{Op: OpCreate, Share: 1, Path: "e/sym"},
		{Op: OpDelete, Share: 1, Path: "e/link"},
		{Op: OpDelete, Share: 1, Path: "e/sub2/h"},
		{Op: OpDelete, Share: 1, Path: "e/sub2", IsDir: true},
		{Op: OpCreate, Share: 1, Path: "pre/deep/p"},
		{Op: OpRename, Share: 1, Path: "e/pre2", OldPath: "pre", IsDir: true},
		{Op: OpCreate, Share: 1, Path: "e/pre2/deep/q"},
		{Op: OpAttrib, Share: 1, Path: "e/pre2/deep", IsDir: true},
		{Op: OpDelete, Share: 1, Path: "e/g", Moved: true},
		{Op: OpCreate, Share: 2, Path: "g", Moved: true},
		{Op: OpCreate, Share: 1, Path: "x", Moved: true},
		{Op: OpDelete, Share: 1, Path: "x", Moved: true},
		{Op: OpCreate, Share: 2, Path: "od", IsDir: true, Moved: true},
	})
	// A hard link is a create whose FID is the linked inode's.
	g, link := got[idx[12]], got[idx[16]]
	if g.FID == "" || g.FID != link.FID {
		t.Errorf("hard link FID %q, want the target's %q", link.FID, g.FID)
	}
	if sym := got[idx[17]]; sym.FID == g.FID {
		t.Errorf("symlink has the target's FID %q", sym.FID)
	}
	for _, ch := range got {
		if ch.Pid <= 0 || ch.Time.IsZero() {
			t.Errorf("change without pid or time: %+v", ch)
		}
		if strings.Contains(ch.Path, "out") || ch.Share != 1 && ch.Share != 2 {
			t.Errorf("change outside the shares: %v", ch)
		}
	}

	// Only changes outside the shares: nothing but the marker comes.
	sh(t, vol, "mkdir out/a; echo q > out/a/b; mv out/a/b out/c; rm out/c; chmod 700 out")
	for _, ch := range c.mark(s2, 2, "mark2") {
		if !strings.HasPrefix(ch.Path, "mark") {
			t.Errorf("change outside the shares reported: %v", ch)
		}
	}
}

func TestFilterIgnoresPid(t *testing.T) {
	vol := newVolume(t, "ext4")
	s1 := filepath.Join(vol, "s1")
	mkdirs(t, s1+"/sd")
	self := os.Getpid()
	_, c := startFilter(t, Options{Volume: vol, Shares: []Share{{7, s1}},
		Ignore: func(pid int) bool { return pid == self }}, 1024)

	// This process is "the applier": its changes are not logged, but the
	// directory it renames is known under its new name afterwards.
	if err := os.WriteFile(s1+"/sd/own", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(s1+"/sd", s1+"/sd2"); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(s1+"/sd2/own", "user.k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	sh(t, s1, "echo y > sd2/theirs")
	got := c.mark(s1, 7, "mark")
	for _, ch := range got {
		if ch.Pid == self || strings.Contains(ch.Path, "own") || ch.Op == OpRename {
			t.Errorf("change by the ignored process reported: %v", ch)
		}
	}
	expectInOrder(t, got, []want{{Op: OpCreate, Share: 7, Path: "sd2/theirs"}})
}

func TestFilterBtrfsSubvolumes(t *testing.T) {
	vol := newVolume(t, "btrfs")
	s1, s2 := filepath.Join(vol, "s1"), filepath.Join(vol, "s2")
	run(t, "btrfs", "subvolume", "create", s1)
	run(t, "btrfs", "subvolume", "create", s2)
	mkdirs(t, s1+"/pre/deep")
	_, c := startFilter(t, Options{Volume: vol, Shares: []Share{{1, s1}, {2, s2}}}, 1024)
	sh(t, vol, `
mkdir s1/d
echo x > s1/d/f
setfattr -n user.k -v v s1/d/f
mv s1/pre s1/d/pre2
echo y > s1/d/pre2/deep/p
mv s1/d/f s2/f
rm -r s1/d
`)
	got := c.mark(s2, 2, "mark")
	expectInOrder(t, got, []want{
		{Op: OpCreate, Share: 1, Path: "d", IsDir: true},
		{Op: OpCreate, Share: 1, Path: "d/f"},
		{Op: OpAttrib, Share: 1, Path: "d/f"},
		{Op: OpRename, Share: 1, Path: "d/pre2", OldPath: "pre", IsDir: true},
		{Op: OpCreate, Share: 1, Path: "d/pre2/deep/p"},
		// Across subvolumes rename(2) fails with EXDEV; mv copies and
		// deletes.
		{Op: OpCreate, Share: 2, Path: "f"},
		{Op: OpDelete, Share: 1, Path: "d/f"},
		{Op: OpDelete, Share: 1, Path: "d/pre2/deep/p"},
		{Op: OpDelete, Share: 1, Path: "d", IsDir: true},
	})
}

func TestFilterOverflowRescans(t *testing.T) {
	vol := newVolume(t, "ext4")
	s1, s2 := filepath.Join(vol, "s1"), filepath.Join(vol, "s2")
	mkdirs(t, s1, s2)
	// Unbuffered: Run blocks on its first change until the test reads, so
	// the kernel's queue (16384 events by default) fills and overflows.
	_, c := startFilter(t, Options{Volume: vol, Shares: []Share{{1, s1}, {2, s2}}}, 0)
	var limit int
	if b, err := os.ReadFile("/proc/sys/fs/fanotify/max_queued_events"); err == nil {
		fmt.Sscan(string(b), &limit)
	}
	if limit <= 0 || limit > 1<<20 {
		t.Skipf("fanotify queue limit %d: too large to overflow in a test", limit)
	}
	// Renames along a chain of fresh names: one event each, never merged,
	// and no new inodes.
	prev := filepath.Join(s1, "n0")
	if err := os.WriteFile(prev, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= limit+2000; i++ {
		next := filepath.Join(s1, fmt.Sprintf("n%d", i))
		if err := os.Rename(prev, next); err != nil {
			t.Fatal(err)
		}
		prev = next
	}
	seen := map[uint64]bool{}
	got := c.until("overflow of both shares", func(ch Change) bool {
		if ch.Op == OpOverflow {
			seen[ch.Share] = true
		}
		return seen[1] && seen[2]
	})
	if n := len(got); n > limit+2000 {
		t.Errorf("%d changes before the overflow: nothing was lost?", n)
	}
	// After the rescan the filter goes on, with paths right.
	mkdirs(t, s1+"/after/deep")
	sh(t, s1, "echo x > after/deep/f")
	got = c.mark(s1, 1, "mark")
	expectInOrder(t, got, []want{{Op: OpCreate, Share: 1, Path: "after/deep/f"}})
}

func TestFilterSetShares(t *testing.T) {
	vol := newVolume(t, "ext4")
	s1, s2 := filepath.Join(vol, "s1"), filepath.Join(vol, "s2")
	mkdirs(t, s1, s2+"/x")
	f, c := startFilter(t, Options{Volume: vol, Shares: []Share{{1, s1}}}, 1024)
	sh(t, s2, "touch x/before")
	if err := f.SetShares([]Share{{1, s1}, {2, s2}}); err != nil {
		t.Fatal(err)
	}
	sh(t, s2, "touch x/after")
	got := c.mark(s1, 1, "mark")
	expectInOrder(t, got, []want{{Op: OpCreate, Share: 2, Path: "x/after"}})
	// Events of x/before may still have been queued in the kernel when
	// the share appeared; the filter judges scope when it reads them, so
	// they may be reported under share 2. That is harmless (changes are
	// hints of what to bring up to date), so it is not asserted either way.
	if err := f.SetShares([]Share{{1, s1}, {1, s2}}); err == nil {
		t.Error("SetShares accepted one FSID twice")
	}
}

func TestNewRefusesRootFilesystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify")
	}
	dir := t.TempDir()
	var a, b unix.Stat_t
	if unix.Stat(dir, &a) != nil || unix.Stat("/", &b) != nil || a.Dev != b.Dev {
		t.Skip("the temporary directory is not on the root filesystem")
	}
	if _, err := New(Options{Volume: dir}); err == nil || !strings.Contains(err.Error(), "root filesystem") {
		t.Fatalf("New on the root filesystem: %v", err)
	}
	if _, err := OpenGate(GateOptions{Volume: dir}); err == nil || !strings.Contains(err.Error(), "root filesystem") {
		t.Fatalf("OpenGate on the root filesystem: %v", err)
	}
}

// The parser's own copies of the ABI values agree with x/sys.
func TestABIConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		ours, sys uint64
	}{
		{"FAN_MODIFY", fanModify, unix.FAN_MODIFY}, {"FAN_ATTRIB", fanAttrib, unix.FAN_ATTRIB},
		{"FAN_CLOSE_WRITE", fanCloseWrite, unix.FAN_CLOSE_WRITE}, {"FAN_CREATE", fanCreate, unix.FAN_CREATE},
		{"FAN_DELETE", fanDelete, unix.FAN_DELETE}, {"FAN_Q_OVERFLOW", fanQOverflow, unix.FAN_Q_OVERFLOW},
		{"FAN_OPEN_PERM", fanOpenPerm, unix.FAN_OPEN_PERM}, {"FAN_RENAME", fanRename, unix.FAN_RENAME},
		{"FAN_ONDIR", fanOnDir, unix.FAN_ONDIR}, {"metadata version", fanMetaVersion, unix.FANOTIFY_METADATA_VERSION},
		{"metadata len", fanMetaLen, unix.FAN_EVENT_METADATA_LEN},
		{"FID", InfoFID, unix.FAN_EVENT_INFO_TYPE_FID}, {"DFID_NAME", InfoDFIDName, unix.FAN_EVENT_INFO_TYPE_DFID_NAME},
		{"DFID", InfoDFID, unix.FAN_EVENT_INFO_TYPE_DFID}, {"OLD_DFID_NAME", InfoOldDFIDName, unix.FAN_EVENT_INFO_TYPE_OLD_DFID_NAME},
		{"NEW_DFID_NAME", InfoNewDFIDName, unix.FAN_EVENT_INFO_TYPE_NEW_DFID_NAME},
		{"O_ACCMODE", oAccMode, unix.O_ACCMODE}, {"O_TRUNC", oTrunc, unix.O_TRUNC},
	} {
		if c.ours != c.sys {
			t.Errorf("%s: %#x here, %#x in x/sys", c.name, c.ours, c.sys)
		}
	}
}

func TestFilterCloseEndsRun(t *testing.T) {
	vol := newVolume(t, "ext4")
	f, err := New(Options{Volume: vol})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- f.Run(context.Background(), make(chan Change)) }()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run after Close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A directory the tree does not know (outside every share, so never
// walked) is found by its handle where it is now.
func TestFilterLookupUnknownDirectory(t *testing.T) {
	vol := newVolume(t, "ext4")
	s1 := filepath.Join(vol, "s1")
	out := filepath.Join(vol, "out", "deep")
	mkdirs(t, s1, out)
	f, err := New(Options{Volume: vol, Shares: []Share{{1, s1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, out, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	p, ok := f.lookup(handleOf(h))
	f.mu.Unlock()
	if !ok || p != out {
		t.Errorf("lookup of %s by handle: %q, %v", out, p, ok)
	}
}
