package replica

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"ftnas/appliance/nfs/nfs3"
	"ftnas/appliance/nfs/rpc"
	"ftnas/appliance/nfs/xdr"
	"ftnas/journal/capture"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	nfsrpc "github.com/willscott/go-nfs-client/nfs/rpc"
	"golang.org/x/sys/unix"
)

type nfsExports []nfs3.Share

func (e nfsExports) ByFSID(fsid uint64) (nfs3.Share, bool) {
	for _, s := range e {
		if s.FSID == fsid {
			return s, true
		}
	}
	return nfs3.Share{}, false
}

func (e nfsExports) ByName(name string) (nfs3.Share, bool) {
	for _, s := range e {
		if s.Name == name {
			return s, true
		}
	}
	return nfs3.Share{}, false
}

func (e nfsExports) List() []nfs3.Share { return e }

// serveNFS serves the master's share s1 over NFS on loopback, in this
// process (as nasd does), telling hints of its writes; it returns a
// client's view of the share.
func serveNFS(t testing.TB, p *pair, hints *capture.WriteHints) *nfsc.Target {
	t.Helper()
	umask := unix.Umask(0)
	t.Cleanup(func() { unix.Umask(umask) })
	var obs nfs3.ContentObserver
	if hints != nil {
		obs = hints
	}
	srv := nfs3.New(p.mtree, nfs3.Options{
		Exports: nfsExports{{Name: "s1", FSID: 1, Path: "s1"}}, Content: obs, Log: testLogger(t),
	})
	rs := rpc.NewServer(rpc.Options{Log: testLogger(t)})
	rs.Register(nfs3.Program, nfs3.Version, srv)
	rs.Register(100005, 3, rpc.HandlerFunc(func(_ context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
		switch c.Proc {
		case 0:
			return rpc.Success
		case 1: // MNT
			p := c.Args.String(1024)
			if c.Args.Err() != nil {
				return rpc.GarbageArgs
			}
			fh, st := srv.MountRoot(p, c.Remote)
			w.Uint32(st)
			if st == nfs3.MountOK {
				w.Opaque(fh)
				w.Uint32(1)
				w.Uint32(rpc.FlavorSys)
			}
			return rpc.Success
		}
		return rpc.ProcUnavail
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go rs.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rs.Shutdown(ctx)
		srv.Close()
	})
	c, err := nfsrpc.DialTCP("tcp", ln.Addr().String(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	m := &nfsc.Mount{Client: c}
	tg, err := m.Mount("/s1", nfsrpc.NewAuthUnix("test", 0, 0).Auth())
	if err != nil {
		t.Fatalf("mount /s1: %v", err)
	}
	return tg
}

func nfsWrite(t testing.TB, tg *nfsc.Target, name string, off int64, data []byte) {
	t.Helper()
	f, err := tg.OpenFile(name, 0o644)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	if _, err := f.Seek(off, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("commit %s: %v", name, err)
	}
}

// NFS writes made by the master's own server go with their data: the
// standby applies them without fetching anything from the master. Another
// process's writes to the same files are still fetched.
func TestNFSWritesShippedWithData(t *testing.T) {
	hints := capture.NewWriteHints()
	p := newPair(t, pairOpts{hints: hints})
	tg := serveNFS(t, p, hints)
	const files = 20
	for i := range files {
		nfsWrite(t, tg, fmt.Sprintf("f%02d", i), 0, bytes.Repeat([]byte{byte('a' + i)}, 3000+i))
	}
	p.sync()
	p.check()
	created := p.standby.Stats().Apply
	t.Logf("new files: %d fetches, %d content bytes fetched; hints %+v", created.Fetches, created.BytesFetched, hints.Stats())
	if created.BytesFetched != 0 {
		t.Errorf("new files written over NFS: %d content bytes fetched, want 0", created.BytesFetched)
	}

	// Small rewrites of files the standby has: nothing fetched at all.
	for round := range 3 {
		for i := range files {
			nfsWrite(t, tg, fmt.Sprintf("f%02d", i), int64(100*round+i), []byte(fmt.Sprintf("round %d file %d", round, i)))
		}
	}
	nfsWrite(t, tg, "f00", 5000, []byte("past the end"))
	for name, size := range map[string]uint64{"f03": 10, "f04": 5000} {
		if err := tg.Setattr(name, nfsc.Sattr3{Size: nfsc.SetSize{SetIt: true, Size: size}}); err != nil {
			t.Fatalf("truncate %s to %d: %v", name, size, err)
		}
	}
	nfsWrite(t, tg, "f04", 4990, []byte("tail"))
	p.sync()
	p.check()
	rewritten := p.standby.Stats().Apply
	hs := hints.Stats()
	t.Logf("rewrites: %d fetches, %d content bytes fetched; hints %+v", rewritten.Fetches-created.Fetches, rewritten.BytesFetched-created.BytesFetched, hs)
	if rewritten.Fetches != created.Fetches || rewritten.BytesFetched != created.BytesFetched {
		t.Errorf("small NFS rewrites: %d fetches (%d bytes), want none",
			rewritten.Fetches-created.Fetches, rewritten.BytesFetched-created.BytesFetched)
	}
	if hs.Shipped < 3*files || hs.Truncates != 2 || hs.Files != 0 || hs.Bytes != 0 {
		t.Errorf("hints %+v: want every write shipped, nothing held", hs)
	}

	// A large file: the ranges written are fetched, nothing else.
	nfsWrite(t, tg, "big", 0, bytes.Repeat([]byte("B"), 3<<19))
	p.sync()
	p.check()
	before := p.standby.Stats().Apply
	nfsWrite(t, tg, "big", 1<<20, bytes.Repeat([]byte("r"), 4096))
	p.sync()
	p.check()
	if after := p.standby.Stats().Apply; after.BytesFetched-before.BytesFetched != 4096 || after.Fetches-before.Fetches != 1 {
		t.Errorf("4 KiB written in a 1.5 MiB file: %d fetches of %d bytes, want 1 of 4096",
			after.Fetches-before.Fetches, after.BytesFetched-before.BytesFetched)
	}
	rewritten = p.standby.Stats().Apply

	// Another process writes too: fetched, and both agree.
	nfsWrite(t, tg, "f01", 10, []byte("nfs"))
	for _, w := range []struct {
		name string
		seek int
	}{{"f01", 12}, {"f02", 1}} {
		cmd := fmt.Sprintf("printf other | dd of=%s bs=1 seek=%d conv=notrunc status=none", filepath.Join(p.mvol, "s1", w.name), w.seek)
		if out, err := exec.Command("sh", "-c", cmd).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", cmd, err, out)
		}
	}
	nfsWrite(t, tg, "f02", 3, []byte("NFS"))
	p.sync()
	p.check()
	if after := p.standby.Stats().Apply; after.Fetches == rewritten.Fetches {
		t.Errorf("another process's writes: no fetch")
	}
}

// BenchmarkNFSSyncWrite: a small NFS write (4 KiB, FILE_SYNC, to one of
// 50 files the standby has) followed by a wait until the standby has it
// (what a Durable share's COMMIT waits for): the time per write, and the
// fetches the standby made for it, without and with write hints.
func BenchmarkNFSSyncWrite(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("hints=%v", on), func(b *testing.B) {
			var hints *capture.WriteHints
			if on {
				hints = capture.NewWriteHints()
			}
			p := newPair(b, pairOpts{hints: hints})
			tg := serveNFS(b, p, hints)
			const files = 50
			for i := range files {
				nfsWrite(b, tg, fmt.Sprintf("f%02d", i), 0, bytes.Repeat([]byte{'x'}, 8192))
			}
			p.sync()
			data := bytes.Repeat([]byte{'y'}, 4096)
			before := p.standby.Stats().Apply
			b.ResetTimer()
			for i := range b.N {
				nfsWrite(b, tg, fmt.Sprintf("f%02d", i%files), int64(i%3)*1000, data)
				p.sync()
			}
			b.StopTimer()
			after := p.standby.Stats().Apply
			b.ReportMetric(float64(after.Fetches-before.Fetches)/float64(b.N), "fetches/op")
			b.ReportMetric(float64(after.BytesFetched-before.BytesFetched)/float64(b.N), "fetched-B/op")
			p.check()
		})
	}
}
