package mount_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ftnas/appliance/nfs/mount"
	"ftnas/appliance/nfs/rpc"
	"ftnas/appliance/nfs/rpc/rpctest"
	"ftnas/appliance/nfs/xdr"
)

// fakeExports serves /media (any caller) and /private (uid 0 refused).
type fakeExports struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeExports) Mount(ctx context.Context, dir string, c *rpc.Call) ([]byte, []uint32, mount.Status) {
	f.mu.Lock()
	f.calls = append(f.calls, dir)
	f.mu.Unlock()
	switch dir {
	case "/media":
		return []byte("FH-media"), []uint32{rpc.FlavorSys, rpc.FlavorNone}, mount.OK
	case "/private":
		if c.Unix == nil || c.Unix.UID == 0 {
			return nil, nil, mount.ErrAcces
		}
		return []byte("FH-private"), nil, mount.OK
	case "/bigfh":
		return make([]byte, 65), nil, mount.OK
	}
	return nil, nil, mount.ErrNoEnt
}

func (f *fakeExports) List(ctx context.Context) []mount.Export {
	return []mount.Export{{Dir: "/media"}, {Dir: "/private", Groups: []string{"10.0.0.0/8", "admin"}}}
}

func start(t *testing.T, ms *mount.Server) string {
	t.Helper()
	srv := rpc.NewServer(rpc.Options{})
	srv.Register(mount.Prog, mount.Vers, ms.Handler())
	srv.Register(mount.Prog, mount.Vers1, ms.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, rpc.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func dirArg(dir string) []byte {
	w := xdr.NewWriter(nil)
	w.String(dir)
	return w.Bytes()
}

type mntResult struct {
	stat    mount.Status
	fh      []byte
	flavors []uint32
}

func mnt(t *testing.T, c *rpctest.Client, cred rpctest.Cred, dir string) mntResult {
	t.Helper()
	r, err := c.Result(mount.Prog, mount.Vers, mount.ProcMnt, cred, dirArg(dir))
	if err != nil {
		t.Fatalf("MNT %q: %v", dir, err)
	}
	res := mntResult{stat: mount.Status(r.Uint32())}
	if res.stat == mount.OK {
		res.fh = bytes.Clone(r.Opaque(mount.MaxFHSize))
		n := r.Uint32()
		for range n {
			res.flavors = append(res.flavors, r.Uint32())
		}
	}
	if r.Err() != nil || r.Remaining() != 0 {
		t.Fatalf("MNT %q reply: %v, %d extra bytes", dir, r.Err(), r.Remaining())
	}
	return res
}

func dump(t *testing.T, c *rpctest.Client, vers uint32) []mount.Entry {
	t.Helper()
	r, err := c.Result(mount.Prog, vers, mount.ProcDump, rpctest.None, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []mount.Entry
	for r.Bool() {
		out = append(out, mount.Entry{Host: r.String(mount.MaxName), Dir: r.String(mount.MaxPath)})
	}
	if r.Err() != nil || r.Remaining() != 0 {
		t.Fatalf("DUMP reply: %v, %d extra bytes", r.Err(), r.Remaining())
	}
	return out
}

func TestMnt(t *testing.T) {
	fe := &fakeExports{}
	ms := mount.New(fe, nil)
	c, err := rpctest.Dial("tcp", start(t, ms))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	user := rpctest.Sys("client", 1000, 1000)
	root := rpctest.Sys("client", 0, 0)
	tests := []struct {
		name string
		cred rpctest.Cred
		dir  string
		want mntResult
	}{
		{"export", user, "/media", mntResult{mount.OK, []byte("FH-media"), []uint32{1, 0}}},
		{"default flavors", user, "/private", mntResult{mount.OK, []byte("FH-private"), []uint32{1}}},
		{"refused", root, "/private", mntResult{stat: mount.ErrAcces}},
		{"missing", user, "/nope", mntResult{stat: mount.ErrNoEnt}},
		{"handle too long", user, "/bigfh", mntResult{stat: mount.ErrServerFault}},
		{"path of 1024 bytes", user, "/" + strings.Repeat("a", 1023), mntResult{stat: mount.ErrNoEnt}},
		{"path of 1025 bytes", user, "/" + strings.Repeat("a", 1024), mntResult{stat: mount.ErrNameTooLong}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mnt(t, c, tt.cred, tt.dir)
			if got.stat != tt.want.stat || !bytes.Equal(got.fh, tt.want.fh) || !slices.Equal(got.flavors, tt.want.flavors) {
				t.Fatalf("MNT %q = %+v, want %+v", tt.dir, got, tt.want)
			}
		})
	}
	if n := len(fe.calls); n != len(tests)-1 {
		t.Errorf("Exports.Mount called %d times, want %d (not for an over-long path)", n, len(tests)-1)
	}
	rep, err := c.Call(mount.Prog, mount.Vers, mount.ProcMnt, user, []byte{0, 0, 0, 9, 'x'})
	if err != nil || !rep.Accepted || rep.Stat != uint32(rpc.GarbageArgs) {
		t.Fatalf("truncated MNT args: %+v %v, want GARBAGE_ARGS", rep, err)
	}
	rep, err = c.Call(mount.Prog, mount.Vers1, mount.ProcMnt, user, dirArg("/media"))
	if err != nil || !rep.Accepted || rep.Stat != uint32(rpc.ProcUnavail) {
		t.Fatalf("MNT v1: %+v %v, want PROC_UNAVAIL", rep, err)
	}
}

func TestDumpUmnt(t *testing.T) {
	ms := mount.New(&fakeExports{}, nil)
	c, err := rpctest.Dial("tcp", start(t, ms))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	user := rpctest.Sys("client", 1000, 1000)
	if got := dump(t, c, mount.Vers); len(got) != 0 {
		t.Fatalf("DUMP before any mount: %v", got)
	}
	mnt(t, c, user, "/media")
	mnt(t, c, user, "/media") // recorded once
	mnt(t, c, user, "/private")
	mnt(t, c, user, "/nope") // failed mounts are not recorded
	want := []mount.Entry{{Host: "127.0.0.1", Dir: "/media"}, {Host: "127.0.0.1", Dir: "/private"}}
	for _, v := range []uint32{mount.Vers, mount.Vers1} {
		if got := dump(t, c, v); !slices.Equal(got, want) {
			t.Fatalf("DUMP v%d = %v, want %v", v, got, want)
		}
	}
	if _, err := c.Result(mount.Prog, mount.Vers, mount.ProcUmnt, user, dirArg("/media")); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, c, mount.Vers); !slices.Equal(got, want[1:]) {
		t.Fatalf("DUMP after UMNT = %v", got)
	}
	mnt(t, c, user, "/media")
	if _, err := c.Result(mount.Prog, mount.Vers, mount.ProcUmntall, user, nil); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, c, mount.Vers); len(got) != 0 {
		t.Fatalf("DUMP after UMNTALL = %v", got)
	}
	rep, err := c.Call(mount.Prog, mount.Vers, mount.ProcUmnt, user, []byte{0xff, 0, 0, 0})
	if err != nil || rep.Stat != uint32(rpc.GarbageArgs) {
		t.Fatalf("bad UMNT args: %+v %v", rep, err)
	}
}

func TestExport(t *testing.T) {
	ms := mount.New(&fakeExports{}, nil)
	c, err := rpctest.Dial("tcp", start(t, ms))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, v := range []uint32{mount.Vers, mount.Vers1} {
		r, err := c.Result(mount.Prog, v, mount.ProcExport, rpctest.None, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []mount.Export
		for r.Bool() {
			e := mount.Export{Dir: r.String(mount.MaxPath)}
			for r.Bool() {
				e.Groups = append(e.Groups, r.String(mount.MaxName))
			}
			got = append(got, e)
		}
		if r.Err() != nil || r.Remaining() != 0 {
			t.Fatalf("EXPORT v%d reply: %v, %d extra", v, r.Err(), r.Remaining())
		}
		if len(got) != 2 || got[0].Dir != "/media" || got[0].Groups != nil || got[1].Dir != "/private" || !slices.Equal(got[1].Groups, []string{"10.0.0.0/8", "admin"}) {
			t.Fatalf("EXPORT v%d = %+v", v, got)
		}
	}
	if _, err := c.Result(mount.Prog, mount.Vers, mount.ProcNull, rpctest.None, nil); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Call(mount.Prog, mount.Vers, 6, rpctest.None, nil)
	if err != nil || rep.Stat != uint32(rpc.ProcUnavail) {
		t.Fatalf("proc 6: %+v %v", rep, err)
	}
}

func FuzzMntArgs(f *testing.F) {
	f.Add(dirArg("/media"))
	f.Add(dirArg(""))
	f.Add(dirArg(strings.Repeat("x", 1025)))
	f.Add([]byte{0, 0, 0, 5, '/', 'm'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	ms := mount.New(&fakeExports{}, nil)
	h := ms.Handler()
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 900}
	f.Fuzz(func(t *testing.T, args []byte) {
		dir, st, err := mount.DecodeDirpath(xdr.NewReader(args))
		if err == nil && st == mount.OK && len(dir) > mount.MaxPath {
			t.Fatalf("accepted a %d-byte path", len(dir))
		}
		for _, proc := range []uint32{mount.ProcMnt, mount.ProcUmnt} {
			w := xdr.NewWriter(nil)
			c := &rpc.Call{Prog: mount.Prog, Vers: mount.Vers, Proc: proc, Flavor: rpc.FlavorSys,
				Unix: &rpc.AuthSys{UID: 1}, Args: xdr.NewReader(args), Remote: remote}
			stat := h.ServeRPC(context.Background(), c, w)
			if (stat == rpc.GarbageArgs) != (err != nil) {
				t.Fatalf("proc %d: stat %v, decode error %v", proc, stat, err)
			}
			if proc == mount.ProcMnt && stat == rpc.Success {
				r := xdr.NewReader(w.Bytes())
				got := mount.Status(r.Uint32())
				want := mount.ErrNoEnt
				switch {
				case st != mount.OK:
					want = st
				case dir == "/media" || dir == "/private":
					want = mount.OK
				case dir == "/bigfh":
					want = mount.ErrServerFault
				}
				if got != want {
					t.Fatalf("MNT %q: status %v, want %v", dir, got, want)
				}
			}
		}
		if len(ms.Mounts()) > 2 {
			t.Fatalf("mount list grew to %v", ms.Mounts())
		}
	})
}
