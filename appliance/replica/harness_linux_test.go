package replica

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"ftnas/appliance/fileid"
	"ftnas/appliance/fileid/fileidtest"
	"ftnas/journal"
	"ftnas/journal/capture"
	"ftnas/kernel/changelog"

	"golang.org/x/sys/unix"
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("REPLICA_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newVolume makes a btrfs image in t.TempDir() (a sparse file), loop-mounts
// it and returns the mount point; Cleanup unmounts it and frees the loop
// device, also when the test fails.
func newVolume(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loop mounts and fanotify filesystem marks")
	}
	mkfs, err := exec.LookPath("mkfs.btrfs")
	if err != nil {
		t.Skipf("needs mkfs.btrfs: %v", err)
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "vol.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(256 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run(t, mkfs, "-q", "-f", img)
	dev := strings.TrimSpace(run(t, "losetup", "--find", "--show", img))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	run(t, "mount", "-t", "btrfs", dev, mnt)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	return mnt
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// openTree opens the fileid tree of a volume, with its index in a bbolt
// file of its own (outside the volume).
func openTree(t testing.TB, vol string, firstID uint64) *fileid.Tree {
	return fileidtest.OpenTree(t, vol, firstID, testLogger(t))
}

// pair is a master volume and a standby volume with a Master and a Standby
// over loopback TLS.
type pair struct {
	t          testing.TB
	mvol, svol string
	shares     []changelog.Share
	master     *Master
	standby    *Standby
	mtree      *fileid.Tree
	stree      *fileid.Tree

	ln        net.Listener
	mcfg      MasterConfig
	scfg      StandbyConfig
	ctx       context.Context
	cancel    context.CancelFunc
	mdone     chan error
	sdone     chan error
	sCancel   context.CancelFunc
	mCancel   context.CancelFunc
	connMu    sync.Mutex
	conns     []net.Conn
	heldOpens chan changelog.Held
}

type pairOpts struct {
	maxDepth  int
	gate      bool
	queueLen  int
	noStandby bool // start the standby later (startStandby)
	// restartAfter is MasterConfig.RestartAfter (0: never, unlike the
	// default: tests that hold writers wait for the standby).
	restartAfter time.Duration
	hints        *capture.WriteHints
}

func newPair(t testing.TB, o pairOpts) *pair {
	t.Helper()
	p := &pair{t: t, mvol: newVolume(t), svol: newVolume(t), heldOpens: make(chan changelog.Held, 64)}
	for i, name := range []string{"s1", "s2"} {
		root := filepath.Join(p.mvol, name)
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		p.shares = append(p.shares, changelog.Share{FSID: uint64(i + 1), Root: root})
	}
	p.mtree = openTree(t, p.mvol, 1000)
	// The standby's root carries the master's root Stamp (forming the pair
	// copies it).
	if err := unix.Setxattr(p.svol, fileid.XattrName, p.mtree.Root().MarshalBinary(), 0); err != nil {
		t.Fatal(err)
	}
	p.stree = openTree(t, p.svol, 1<<40)

	mcert, mkey, err := journal.GenerateCert("m")
	if err != nil {
		t.Fatal(err)
	}
	scert, skey, err := journal.GenerateCert("s")
	if err != nil {
		t.Fatal(err)
	}
	mtls, err := journal.TLSConfig(mcert, mkey, scert)
	if err != nil {
		t.Fatal(err)
	}
	stls, err := journal.TLSConfig(scert, skey, mcert)
	if err != nil {
		t.Fatal(err)
	}
	p.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	p.mcfg = MasterConfig{
		Volume: p.mvol, Tree: p.mtree, Shares: p.shares, LogPath: filepath.Join(state, "journal.db"),
		MaxDepth: o.maxDepth, NoSync: true, Epoch: 2, ClusterID: "c", NodeID: "m", Listener: p.ln, TLS: mtls,
		Gate: o.gate, Hints: o.hints, Logger: testLogger(t), RestartAfter: cmp.Or(o.restartAfter, -1),
		Tune: func(c *capture.Config) {
			c.QueueLen = o.queueLen
			c.OnHold = func(h changelog.Held) {
				select {
				case p.heldOpens <- h:
				default:
				}
			}
			c.Retry = 50 * time.Millisecond
		},
	}
	addr := p.ln.Addr().String()
	p.scfg = StandbyConfig{
		Tree: p.stree, PositionPath: filepath.Join(state, "position"), TLS: stls, ClusterID: "c", NodeID: "s",
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: testLogger(t),
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				p.connMu.Lock()
				p.conns = append(p.conns, c)
				p.connMu.Unlock()
			}
			return c, err
		},
	}
	if p.master, err = NewMaster(p.mcfg); err != nil {
		t.Fatal(err)
	}
	if p.standby, err = NewStandby(p.scfg); err != nil {
		t.Fatal(err)
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.mdone = make(chan error, 1)
	mctx, mcancel := context.WithCancel(p.ctx)
	p.mCancel = mcancel
	go func() { p.mdone <- p.master.Run(mctx) }()
	t.Cleanup(p.stop)
	// The capture is up once its first Sync returns (it runs after the
	// initial description of the shares).
	p.waitMasterRunning()
	if !o.noStandby {
		p.startStandby()
	}
	return p
}

func (p *pair) waitMasterRunning() {
	p.t.Helper()
	waitRunning(p.t, p.master, p.mdone)
}

// waitRunning waits until m's capture is up: the first Sync returns once
// the shares' initial description is in the log.
func waitRunning(t testing.TB, m *Master, done chan error) {
	t.Helper()
	waitFor(t, "the master to start", 30*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("master stopped: %v", err)
		default:
		}
		return m.Stats().Running
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := m.Sync(ctx); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	if !m.Stats().Capture.Described {
		t.Fatalf("the first sync returned before the capture said the shares are described: %+v", m.Stats().Capture)
	}
}

func (p *pair) startStandby() {
	ctx, cancel := context.WithCancel(p.ctx)
	p.sCancel = cancel
	p.sdone = make(chan error, 1)
	go func() { p.sdone <- p.standby.Run(ctx) }()
}

func (p *pair) stop() {
	p.cancel()
	p.stopMaster()
	p.stopStandby()
}

// stopMaster ends the master's Run and checks it returned nil.
func (p *pair) stopMaster() {
	p.t.Helper()
	if p.mdone != nil {
		p.mCancel()
		waitDone(p.t, "master", p.mdone)
		p.mdone = nil
	}
}

func (p *pair) stopStandby() {
	p.t.Helper()
	if p.sdone != nil {
		p.sCancel()
		waitDone(p.t, "standby", p.sdone)
		p.sdone = nil
	}
}

func waitDone(t testing.TB, what string, done chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop", what)
	}
}

// dropConn closes the standby's current connection, as a broken cable
// would.
func (p *pair) dropConn() {
	p.connMu.Lock()
	defer p.connMu.Unlock()
	if n := len(p.conns); n > 0 {
		p.conns[n-1].Close()
	}
}

// sync waits until the standby has applied every change made on the master
// before it was called: the capture's Sync puts them in the log, the
// shipper's ack says the standby has them.
func (p *pair) sync() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	seq, err := p.master.Sync(ctx)
	if err != nil {
		p.t.Fatalf("master sync: %v (master %+v)", err, p.master.Stats())
	}
	if err := p.master.WaitAcked(ctx, seq); err != nil {
		p.t.Fatalf("waiting for the standby to apply seq %d: %v\nmaster %+v\nstandby %+v", seq, err, p.master.Stats(), p.standby.Stats())
	}
}

// check compares the shares of both volumes and fails with the first
// difference.
func (p *pair) check() {
	p.t.Helper()
	for _, sh := range p.shares {
		rel, _ := filepath.Rel(p.mvol, sh.Root)
		if d := compareTrees(filepath.Join(p.mvol, rel), filepath.Join(p.svol, rel)); d != "" {
			p.t.Fatalf("share %s differs: %s", rel, d)
		}
	}
	ents, err := os.ReadDir(p.svol)
	if err != nil {
		p.t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "s1" && e.Name() != "s2" {
			p.t.Errorf("standby volume root has %s", e.Name())
		}
	}
}

// entry is what the comparison looks at.
type entry struct {
	mode     uint32
	uid, gid uint32
	size     int64
	rdev     uint64
	mtime    int64
	sum      [32]byte
	target   string
	xattrs   string
}

func (e entry) String() string {
	return fmt.Sprintf("mode %o uid %d gid %d size %d rdev %d mtime %d sum %x target %q xattrs %q",
		e.mode, e.uid, e.gid, e.size, e.rdev, e.mtime, e.sum[:4], e.target, e.xattrs)
}

func describeEntry(p string) (entry, error) {
	var sb unix.Stat_t
	if err := unix.Lstat(p, &sb); err != nil {
		return entry{}, err
	}
	e := entry{mode: sb.Mode, uid: sb.Uid, gid: sb.Gid, rdev: sb.Rdev, mtime: sb.Mtim.Nano()}
	switch sb.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.size = sb.Size
		f, err := os.Open(p)
		if err != nil {
			return entry{}, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return entry{}, err
		}
		copy(e.sum[:], h.Sum(nil))
	case unix.S_IFLNK:
		t, err := os.Readlink(p)
		if err != nil {
			return entry{}, err
		}
		e.target = t
	}
	x, err := xattrsOf(p)
	if err != nil {
		return entry{}, err
	}
	e.xattrs = x
	return e, nil
}

// xattrsOf lists a file's extended attributes and values, except the
// replication's own (trusted.ftnas.*).
func xattrsOf(p string) (string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return "", fmt.Errorf("listxattr %s: %w", p, err)
	}
	var names []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name != "" && !strings.HasPrefix(name, "trusted.ftnas.") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			return "", fmt.Errorf("getxattr %s %s: %w", p, name, err)
		}
		fmt.Fprintf(&b, "%s=%q;", name, v[:m])
	}
	return b.String(), nil
}

// compareTrees walks both trees and returns the first difference, or "".
func compareTrees(a, b string) string {
	list := func(root string) (map[string]bool, []string, error) {
		set := map[string]bool{}
		var order []string
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			set[rel] = true
			order = append(order, rel)
			return nil
		})
		return set, order, err
	}
	as, ao, err := list(a)
	if err != nil {
		return fmt.Sprintf("walk master: %v", err)
	}
	bs, bo, err := list(b)
	if err != nil {
		return fmt.Sprintf("walk standby: %v", err)
	}
	for _, rel := range ao {
		if !bs[rel] {
			return rel + ": missing on the standby"
		}
		ea, err := describeEntry(filepath.Join(a, rel))
		if err != nil {
			return fmt.Sprintf("%s: master: %v", rel, err)
		}
		eb, err := describeEntry(filepath.Join(b, rel))
		if err != nil {
			return fmt.Sprintf("%s: standby: %v", rel, err)
		}
		if ea != eb {
			return fmt.Sprintf("%s:\n  master  %s\n  standby %s", rel, ea, eb)
		}
	}
	for _, rel := range bo {
		if !as[rel] {
			return rel + ": only on the standby"
		}
	}
	return ""
}

// waitFor polls cond (a state another goroutine changes, with no event to
// wait on) until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// write writes data to p at off, creating it.
func write(t testing.TB, p string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
