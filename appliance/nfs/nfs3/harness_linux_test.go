package nfs3

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"ftnas/appliance/fileid"
	"ftnas/appliance/nfs/rpc"
	"ftnas/appliance/nfs/xdr"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	nfsrpc "github.com/willscott/go-nfs-client/nfs/rpc"
	bolt "go.etcd.io/bbolt"
)

// The test harness: a server on a test volume, mounted by go-nfs-client
// (server_linux_test.go holds the tests).

// staticExports is a fixed share list.
type staticExports []Share

func (e staticExports) ByFSID(fsid uint64) (Share, bool) {
	for _, s := range e {
		if s.FSID == fsid {
			return s, true
		}
	}
	return Share{}, false
}

func (e staticExports) ByName(name string) (Share, bool) {
	for _, s := range e {
		if s.Name == name {
			return s, true
		}
	}
	return Share{}, false
}

func (e staticExports) List() []Share { return e }

// mountHandler is a minimal MOUNT v3 (MNT only), the boundary of this
// package: the real MOUNT program lives in package mount.
func mountHandler(s *Server) rpc.Handler {
	return rpc.HandlerFunc(func(_ context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
		switch c.Proc {
		case 0:
			return rpc.Success
		case 1:
			p := c.Args.String(1024)
			if c.Args.Err() != nil {
				return rpc.GarbageArgs
			}
			fh, st := s.MountRoot(p, c.Remote)
			w.Uint32(st)
			if st == MountOK {
				w.Opaque(fh)
				w.Uint32(1)
				w.Uint32(rpc.FlavorSys)
			}
			return rpc.Success
		}
		return rpc.ProcUnavail
	})
}

// node is one running NFS server over a volume and state file that survive
// restarts within a test.
type node struct {
	t       *testing.T
	vol, db string
	exports staticExports
	ctr     uint64
	mu      sync.Mutex

	bdb  *bolt.DB
	idx  *fileid.Index
	tree *fileid.Tree
	srv  *Server
	rs   *rpc.Server
	addr string

	durable func(fsid uint64) error // Options.Durable
	content ContentObserver         // Options.Content
}

func newNode(t *testing.T, shares ...Share) *node { return newNodeWith(t, nil, shares...) }

func newNodeWith(t *testing.T, durable func(uint64) error, shares ...Share) *node {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the server stamps files with trusted.* xattrs and switches fsuid")
	}
	dir := t.TempDir()
	n := &node{t: t, vol: filepath.Join(dir, "vol"), db: filepath.Join(dir, "state.db"), exports: shares, durable: durable}
	for _, s := range shares {
		if err := os.MkdirAll(filepath.Join(n.vol, s.Path), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *node) reserve(c uint64) (uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ctr == 0 {
		n.ctr = 2
	}
	f := n.ctr
	n.ctr += c
	return f, nil
}

func (n *node) start() {
	t := n.t
	var err error
	if n.bdb, err = bolt.Open(n.db, 0o600, nil); err != nil {
		t.Fatal(err)
	}
	if n.idx, err = fileid.OpenIndex(n.bdb, slog.Default()); err != nil {
		t.Fatal(err)
	}
	if n.tree, err = fileid.OpenTree(n.vol, n.idx, fileid.NewAllocator(n.reserve), slog.Default()); err != nil {
		t.Fatal(err)
	}
	n.srv = New(n.tree, Options{Exports: n.exports, Verifier: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, Durable: n.durable, Content: n.content})
	n.rs = rpc.NewServer(rpc.Options{})
	n.rs.Register(Program, Version, n.srv)
	n.rs.Register(100005, 3, mountHandler(n.srv))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.addr = ln.Addr().String()
	go n.rs.Serve(ln)
}

func (n *node) stop() {
	if n.rs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.rs.Shutdown(ctx)
	n.srv.Close()
	n.tree.Close()
	if err := n.idx.Close(); err != nil {
		n.t.Error(err)
	}
	n.bdb.Close()
	n.rs = nil
}

func (n *node) restart() { n.stop(); n.start() }

// mount mounts an export with go-nfs-client as uid/gid.
func (n *node) mount(export string, uid, gid uint32) *nfsc.Target {
	t := n.t
	t.Helper()
	c, err := nfsrpc.DialTCP("tcp", n.addr, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	m := &nfsc.Mount{Client: c}
	auth := nfsrpc.NewAuthUnix("test", uid, gid).Auth()
	tg, err := m.Mount(export, auth)
	if err != nil {
		t.Fatalf("mount %s: %v", export, err)
	}
	return tg
}

func writeFile(t *testing.T, tg *nfsc.Target, p string, data []byte) {
	t.Helper()
	f, err := tg.OpenFile(p, 0o644)
	if err != nil {
		t.Fatalf("create %s: %v", p, err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", p, err)
	}
}

func readFile(t *testing.T, tg *nfsc.Target, p string) []byte {
	t.Helper()
	f, err := tg.Open(p)
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return b
}

func nfsStatus(err error) uint32 {
	var e *nfsc.Error
	if errors.As(err, &e) {
		return e.ErrorNum
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, os.ErrNotExist):
		return uint32(ErrNoEnt)
	case errors.Is(err, os.ErrExist):
		return uint32(ErrExist)
	case errors.Is(err, os.ErrPermission):
		return uint32(ErrPerm)
	}
	return 99999
}
