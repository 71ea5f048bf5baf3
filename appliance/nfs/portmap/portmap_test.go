package portmap_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"ftnas/appliance/nfs/portmap"
	"ftnas/appliance/nfs/rpc"
	"ftnas/appliance/nfs/rpc/rpctest"
	"ftnas/appliance/nfs/xdr"
)

func start(t *testing.T, pm *portmap.Portmap) (tcpAddr, udpAddr string) {
	t.Helper()
	srv := rpc.NewServer(rpc.Options{})
	srv.Register(portmap.Prog, portmap.Vers, pm.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- srv.Serve(ln) }()
	go func() { done <- srv.ServeUDP(pc) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		for range 2 {
			if err := <-done; !errors.Is(err, rpc.ErrServerClosed) {
				t.Errorf("serve: %v", err)
			}
		}
	})
	return ln.Addr().String(), pc.LocalAddr().String()
}

func mappingArgs(m portmap.Mapping) []byte {
	w := xdr.NewWriter(nil)
	w.Uint32(m.Prog)
	w.Uint32(m.Vers)
	w.Uint32(m.Prot)
	w.Uint32(m.Port)
	return w.Bytes()
}

func call(t *testing.T, c *rpctest.Client, proc uint32, args []byte) *xdr.Reader {
	t.Helper()
	r, err := c.Result(portmap.Prog, portmap.Vers, proc, rpctest.None, args)
	if err != nil {
		t.Fatalf("proc %d: %v", proc, err)
	}
	return r
}

func getport(t *testing.T, c *rpctest.Client, prog, vers, prot uint32) uint32 {
	t.Helper()
	r := call(t, c, portmap.ProcGetport, mappingArgs(portmap.Mapping{Prog: prog, Vers: vers, Prot: prot}))
	p := r.Uint32()
	if r.Err() != nil || r.Remaining() != 0 {
		t.Fatalf("GETPORT reply: %v, %d extra bytes", r.Err(), r.Remaining())
	}
	return p
}

func dump(t *testing.T, c *rpctest.Client) []portmap.Mapping {
	t.Helper()
	r := call(t, c, portmap.ProcDump, nil)
	var out []portmap.Mapping
	for r.Bool() {
		out = append(out, portmap.Mapping{Prog: r.Uint32(), Vers: r.Uint32(), Prot: r.Uint32(), Port: r.Uint32()})
	}
	if r.Err() != nil || r.Remaining() != 0 {
		t.Fatalf("DUMP reply: %v, %d extra bytes", r.Err(), r.Remaining())
	}
	return out
}

func TestOverTheWire(t *testing.T) {
	pm := portmap.New(nil)
	pm.Set(portmap.Mapping{Prog: portmap.Prog, Vers: 2, Prot: portmap.TCP, Port: 111})
	pm.Set(portmap.Mapping{Prog: 100005, Vers: 3, Prot: portmap.TCP, Port: 20048})
	pm.Set(portmap.Mapping{Prog: 100005, Vers: 3, Prot: portmap.UDP, Port: 20049})
	pm.Set(portmap.Mapping{Prog: 100005, Vers: 1, Prot: portmap.TCP, Port: 20048})
	pm.Set(portmap.Mapping{Prog: 100005, Vers: 3, Prot: portmap.TCP, Port: 20050}) // replaces
	tcpAddr, udpAddr := start(t, pm)

	for _, network := range []string{"tcp", "udp"} {
		addr := tcpAddr
		if network == "udp" {
			addr = udpAddr
		}
		t.Run(network, func(t *testing.T) {
			c, err := rpctest.Dial(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			call(t, c, portmap.ProcNull, nil)
			for _, tc := range []struct{ prog, vers, prot, want uint32 }{
				{100005, 3, portmap.TCP, 20050},
				{100005, 3, portmap.UDP, 20049},
				{100005, 1, portmap.TCP, 20048},
				{100005, 2, portmap.TCP, 20048}, // other version, same protocol
				{100005, 1, portmap.UDP, 20049},
				{100003, 3, portmap.TCP, 0},
				{100005, 3, 99, 0},
			} {
				if got := getport(t, c, tc.prog, tc.vers, tc.prot); got != tc.want {
					t.Errorf("GETPORT %d/%d/%d = %d, want %d", tc.prog, tc.vers, tc.prot, got, tc.want)
				}
			}
			want := []portmap.Mapping{
				{Prog: 100000, Vers: 2, Prot: 6, Port: 111},
				{Prog: 100005, Vers: 1, Prot: 6, Port: 20048},
				{Prog: 100005, Vers: 3, Prot: 6, Port: 20050},
				{Prog: 100005, Vers: 3, Prot: 17, Port: 20049},
			}
			if got := dump(t, c); !slices.Equal(got, want) {
				t.Errorf("DUMP = %v\nwant %v", got, want)
			}
			rep, err := c.Call(portmap.Prog, portmap.Vers, portmap.ProcCallit, rpctest.None, nil)
			if err != nil || !rep.Accepted || rep.Stat != uint32(rpc.ProcUnavail) {
				t.Errorf("CALLIT: %+v %v, want PROC_UNAVAIL", rep, err)
			}
			rep, err = c.Call(portmap.Prog, portmap.Vers, portmap.ProcGetport, rpctest.None, []byte{0, 0, 0, 1})
			if err != nil || !rep.Accepted || rep.Stat != uint32(rpc.GarbageArgs) {
				t.Errorf("short GETPORT: %+v %v, want GARBAGE_ARGS", rep, err)
			}
			rep, err = c.Call(portmap.Prog, 3, portmap.ProcNull, rpctest.None, nil)
			if err != nil || rep.Stat != uint32(rpc.ProgMismatch) || rep.Low != 2 || rep.High != 2 {
				t.Errorf("rpcbind v3: %+v %v, want PROG_MISMATCH 2..2", rep, err)
			}
		})
	}
}

func TestSetUnsetFromLoopback(t *testing.T) {
	pm := portmap.New(nil)
	pm.Set(portmap.Mapping{Prog: 100005, Vers: 3, Prot: portmap.TCP, Port: 20048})
	addr, _ := start(t, pm)
	c, err := rpctest.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	set := func(m portmap.Mapping) bool {
		r := call(t, c, portmap.ProcSet, mappingArgs(m))
		return r.Bool()
	}
	unset := func(prog, vers uint32) bool {
		r := call(t, c, portmap.ProcUnset, mappingArgs(portmap.Mapping{Prog: prog, Vers: vers, Prot: 12345, Port: 9}))
		return r.Bool()
	}
	if set(portmap.Mapping{Prog: 100005, Vers: 3, Prot: portmap.TCP, Port: 1}) {
		t.Error("SET of an already mapped triple succeeded")
	}
	if !set(portmap.Mapping{Prog: 300000, Vers: 1, Prot: portmap.UDP, Port: 4000}) ||
		!set(portmap.Mapping{Prog: 300000, Vers: 1, Prot: portmap.TCP, Port: 4001}) {
		t.Fatal("SET of a new mapping failed")
	}
	if set(portmap.Mapping{Prog: 300001, Vers: 1, Prot: 99, Port: 4000}) {
		t.Error("SET with an unknown protocol succeeded")
	}
	if got := getport(t, c, 300000, 1, portmap.TCP); got != 4001 {
		t.Errorf("GETPORT after SET = %d", got)
	}
	if !unset(300000, 1) {
		t.Error("UNSET of a registered program failed")
	}
	if unset(300000, 1) {
		t.Error("second UNSET reported success")
	}
	if got := pm.List(); len(got) != 1 || got[0].Prog != 100005 {
		t.Errorf("after UNSET (which ignores protocol and port): %v", got)
	}
}

// TestRemoteSetRefused drives the handler directly with a non-loopback
// caller address: no traffic leaves the machine.
func TestRemoteSetRefused(t *testing.T) {
	pm := portmap.New(nil)
	pm.Set(portmap.Mapping{Prog: 100005, Vers: 3, Prot: portmap.TCP, Port: 20048})
	h := pm.Handler()
	for _, tc := range []struct {
		proc   uint32
		remote net.Addr
		want   bool
	}{
		{portmap.ProcSet, &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 700}, false},
		{portmap.ProcUnset, &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 700}, false},
		{portmap.ProcUnset, nil, false},
		{portmap.ProcSet, &net.UDPAddr{IP: net.ParseIP("::1"), Port: 700}, true},
	} {
		args := mappingArgs(portmap.Mapping{Prog: 100005, Vers: 1, Prot: portmap.UDP, Port: 5})
		w := xdr.NewWriter(nil)
		stat := h.ServeRPC(context.Background(), &rpc.Call{Proc: tc.proc, Args: xdr.NewReader(args), Remote: tc.remote}, w)
		r := xdr.NewReader(w.Bytes())
		if stat != rpc.Success || r.Bool() != tc.want {
			t.Errorf("proc %d from %v: stat %v reply % x, want %v", tc.proc, tc.remote, stat, w.Bytes(), tc.want)
		}
	}
	if got := pm.Getport(100005, 3, portmap.TCP); got != 20048 {
		t.Errorf("remote UNSET changed the table: port %d", got)
	}
	if got := pm.Getport(100005, 1, portmap.UDP); got != 5 {
		t.Errorf("loopback SET not applied: port %d", got)
	}
}

func FuzzDecodeMapping(f *testing.F) {
	f.Add(mappingArgs(portmap.Mapping{Prog: 100005, Vers: 3, Prot: 6, Port: 20048}))
	f.Add([]byte{0, 0, 0, 1})
	f.Add(append(mappingArgs(portmap.Mapping{}), 0, 0, 0, 0))
	pm := portmap.New(nil)
	h := pm.Handler()
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 700}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := portmap.DecodeMapping(xdr.NewReader(b))
		if (err == nil) != (len(b) == 16) {
			t.Fatalf("%d bytes: err %v", len(b), err)
		}
		if err == nil && !slices.Equal(mappingArgs(m), b) {
			t.Fatalf("round trip of % x gave %+v", b, m)
		}
		for _, proc := range []uint32{portmap.ProcSet, portmap.ProcGetport, portmap.ProcUnset} {
			w := xdr.NewWriter(nil)
			stat := h.ServeRPC(context.Background(), &rpc.Call{Proc: proc, Args: xdr.NewReader(b), Remote: remote}, w)
			if (stat == rpc.Success) != (err == nil) {
				t.Fatalf("proc %d: stat %v for decode error %v", proc, stat, err)
			}
		}
	})
}
