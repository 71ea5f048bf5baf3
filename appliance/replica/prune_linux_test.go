package replica

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"ftnas/journal"

	"golang.org/x/sys/unix"
)

// TestNewLogRemovesStandbyExtras is the chaos checker's "still exists"
// case: the standby was away while files were deleted and renamed on the
// master (and holds entries of its own in a share); the master starts a
// new log, the standby follows it from its first record (its position
// reset, as the node does on journal.ErrResync), and ends with exactly the
// master's tree: the rescan's prune records remove what the master no
// longer has, also a directory tree with a symlink pointing out of the
// volume (the link goes, never its target). Entries that the master
// replaced by one of another type (a directory by a file, a file by a
// directory) are parked out of the new entry's way until the prune, where
// the standby stopped with "is a directory" before.
func TestNewLogRemovesStandbyExtras(t *testing.T) {
	p := newPair(t, pairOpts{})
	s1 := p.shares[0].Root
	must(t, os.MkdirAll(filepath.Join(s1, "d"), 0o755))
	must(t, os.MkdirAll(filepath.Join(s1, "e/sub"), 0o755))
	write(t, filepath.Join(s1, "a"), 0, []byte("deleted while away"))
	write(t, filepath.Join(s1, "d/x"), 0, []byte("renamed while away"))
	write(t, filepath.Join(s1, "d/y"), 0, []byte("kept"))
	write(t, filepath.Join(s1, "e/sub/f"), 0, []byte("in a renamed directory"))
	write(t, filepath.Join(s1, "h1"), 0, []byte("hard-linked"))
	must(t, os.Link(filepath.Join(s1, "h1"), filepath.Join(s1, "h2")))
	must(t, os.MkdirAll(filepath.Join(s1, "q/deep"), 0o755))
	write(t, filepath.Join(s1, "q/deep/f"), 0, []byte("a directory that becomes a file"))
	write(t, filepath.Join(s1, "r"), 0, []byte("a file that becomes a directory"))
	write(t, filepath.Join(s1, "l1"), 0, []byte("a file whose name becomes a link of another"))
	write(t, filepath.Join(s1, "l2"), 0, []byte("linked"))
	must(t, os.MkdirAll(filepath.Join(s1, "ma"), 0o755))
	must(t, os.MkdirAll(filepath.Join(s1, "mb"), 0o755))
	write(t, filepath.Join(s1, "ma/f"), 0, []byte("moved to a directory walked later"))
	p.sync()
	p.check()
	p.stopStandby()
	p.stopMaster()

	// While the standby is away.
	must(t, os.Remove(filepath.Join(s1, "a")))
	must(t, os.Rename(filepath.Join(s1, "d/x"), filepath.Join(s1, "d/z")))
	must(t, os.Rename(filepath.Join(s1, "e"), filepath.Join(s1, "e2")))
	must(t, os.Remove(filepath.Join(s1, "h2")))
	must(t, os.MkdirAll(filepath.Join(s1, "new"), 0o755))
	write(t, filepath.Join(s1, "new/n"), 0, []byte("new"))
	must(t, os.RemoveAll(filepath.Join(s1, "q")))
	write(t, filepath.Join(s1, "q"), 0, []byte("now a file"))
	must(t, os.Remove(filepath.Join(s1, "r")))
	must(t, os.MkdirAll(filepath.Join(s1, "r/in"), 0o755))
	must(t, os.Remove(filepath.Join(s1, "l1")))
	must(t, os.Link(filepath.Join(s1, "l2"), filepath.Join(s1, "l1")))
	must(t, os.Rename(filepath.Join(s1, "ma/f"), filepath.Join(s1, "mb/f")))
	// Entries only the standby has.
	outside := t.TempDir()
	write(t, filepath.Join(outside, "precious"), 0, []byte("not the standby's"))
	sb1 := filepath.Join(p.svol, "s1")
	write(t, filepath.Join(sb1, "extra"), 0, []byte("extra"))
	must(t, os.MkdirAll(filepath.Join(sb1, "extradir/sub"), 0o755))
	write(t, filepath.Join(sb1, "extradir/sub/g"), 0, []byte("g"))
	must(t, os.Symlink(outside, filepath.Join(sb1, "extradir/out")))
	must(t, os.Symlink(filepath.Join(outside, "precious"), filepath.Join(sb1, "d/lnout")))

	// A new log (the master restarts, at a higher epoch); the standby
	// follows it from its start.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	p.mcfg.Listener, p.mcfg.Epoch = ln, p.mcfg.Epoch+1
	addr := ln.Addr().String()
	p.scfg.Dial = func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	p.master, err = NewMaster(p.mcfg)
	must(t, err)
	p.standby, err = NewStandby(p.scfg)
	must(t, err)
	p.mdone = make(chan error, 1)
	mctx, mcancel := context.WithCancel(p.ctx)
	p.mCancel = mcancel
	go func() { p.mdone <- p.master.Run(mctx) }()
	p.waitMasterRunning()
	pf := journal.NewPositionFile(p.scfg.PositionPath)
	pos, err := pf.Load()
	must(t, err)
	must(t, pf.Save(journal.Position{Epoch: pos.Epoch}))
	p.startStandby()
	p.sync()
	p.check()
	// The names the master has linked are one file on the standby too.
	var l1, l2 unix.Stat_t
	must(t, unix.Lstat(filepath.Join(sb1, "l1"), &l1))
	must(t, unix.Lstat(filepath.Join(sb1, "l2"), &l2))
	if l1.Ino != l2.Ino {
		t.Errorf("l1 and l2 are two files on the standby (inodes %d, %d), one on the master", l1.Ino, l2.Ino)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "precious")); err != nil || string(b) != "not the standby's" {
		t.Fatalf("the pruned symlinks' target: %q, %v", b, err)
	}
	// Pruned: a, h2, extra, extradir (with sub, g and out), d/lnout;
	// parked out of the way of a new entry until then: the directory q
	// (with deep and f), the file r, and l1's old file (l2 moved over it).
	// Moved, contents and all, to the names the master renamed them to
	// while the standby was away: d/x to d/z, e to e2 (with sub and f),
	// ma/f to mb/f (ma is walked first: the prunes come after the whole
	// description, or ma's would have removed f); and l2 to l1, the name
	// the (sorted) description makes the file at (l2 is then linked
	// again).
	if st := p.standby.Stats().Apply; st.Pruned != 13 || st.Moved != 4 || st.Parked != 3 {
		t.Errorf("standby removed %d entries, moved %d, parked %d; want 13, 4 and 3 (apply stats %+v)", st.Pruned, st.Moved, st.Parked, st)
	}
}
