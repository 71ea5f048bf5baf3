package rpc

import (
	"context"
	"net"
	"testing"

	"ftnas/appliance/nfs/rpc/rpctest"
	"ftnas/appliance/nfs/xdr"
)

func TestProcessDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random")
	}
	s := NewServer(Options{})
	data := make([]byte, 32<<10)
	s.Register(7, 1, HandlerFunc(func(ctx context.Context, c *Call, w *xdr.Writer) AcceptStat {
		n := c.Args.Uint32()
		off := w.Len()
		w.Uint32(0)
		buf := w.Grow(int(n))
		copy(buf, data)
		w.PutUint32At(off, n)
		w.Align()
		return Success
	}))
	msg := rpctest.EncodeCall(1, 7, 1, 1, rpctest.Sys("client", 1000, 1000, 1, 2, 3), []byte{0, 0, 0x80, 0})
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1000}
	names := &nameCache{}
	allocs := testing.AllocsPerRun(200, func() {
		req := s.getRequest()
		req.in = append(req.in[:0], msg...)
		if o, err := s.process(context.Background(), req, names, remote, remote); o != outcomeDispatch || err != nil {
			t.Fatalf("process: %v %v", o, err)
		}
		if req.out.Len() != bodyOff+4+32<<10 {
			t.Fatalf("reply length %d", req.out.Len())
		}
		s.putRequest(req)
	})
	// sync.Pool may drop an item on GC; allow for that.
	if allocs > 0.5 {
		t.Fatalf("%v allocations per call, want 0", allocs)
	}
}
