package rpc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"

	"ftnas/appliance/nfs/rpc/rpctest"
	"ftnas/appliance/nfs/xdr"
)

// FuzzRecord feeds arbitrary bytes through the TCP record reader and the
// call decoder/dispatcher: nothing may panic, every record respects the
// size limit, and every reply the server would send is a well-formed
// reply to the call's XID.
func FuzzRecord(f *testing.F) {
	args := []byte{0, 0, 0, 3, 'a', 'b', 'c', 0}
	f.Add(rpctest.Frame(rpctest.EncodeCall(1, 7, 1, 1, rpctest.Sys("m", 1, 2, 3), args), 0))
	f.Add(rpctest.Frame(rpctest.EncodeCall(2, 7, 1, 0, rpctest.None, nil), 5))
	f.Add(rpctest.Frame(rpctest.EncodeCall(3, 7, 2, 0, rpctest.None, nil), 0))
	f.Add(rpctest.Frame(rpctest.EncodeCall(4, 8, 1, 0, rpctest.None, nil), 0))
	f.Add(rpctest.Frame(rpctest.EncodeCallVersion(5, 3, 7, 1, 0, rpctest.None, nil), 0))
	f.Add(rpctest.Frame(rpctest.EncodeCall(6, 7, 1, 1, rpctest.Cred{Flavor: 6, Body: []byte{1, 2, 3, 4}}, nil), 0))
	f.Add(rpctest.Frame(rpctest.EncodeCall(7, 7, 1, 1, rpctest.Cred{Flavor: 1, Body: make([]byte, 80)}, args), 12))
	f.Add([]byte{0x80, 0, 0, 4, 0, 0, 0, 1})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 0, 0x80, 0, 0, 0})

	s := NewServer(Options{MaxRecord: 4096})
	s.Register(7, 1, HandlerFunc(func(ctx context.Context, c *Call, w *xdr.Writer) AcceptStat {
		if c.Unix != nil && (len(c.Unix.GIDs) > MaxAuthSysGIDs || len(c.Unix.Machine) > MaxMachineName) {
			panic("AUTH_SYS limits not enforced")
		}
		switch c.Proc {
		case 0:
			return Success
		case 1:
			b := c.Args.Opaque(100)
			if c.Args.Err() != nil {
				return GarbageArgs
			}
			w.Opaque(b)
			return Success
		}
		return ProcUnavail
	}))
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1000}
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := bytes.NewReader(stream)
		var hdr [4]byte
		req := s.getRequest()
		defer s.putRequest(req)
		names := &nameCache{}
		for {
			rec, err := readRecord(r, &hdr, req.in, s.opts.MaxRecord)
			req.in = rec
			if err != nil {
				if !errors.Is(err, io.EOF) && err.Error() == "" {
					t.Fatal("error without a message")
				}
				return
			}
			if len(rec) > s.opts.MaxRecord {
				t.Fatalf("record of %d bytes over the limit", len(rec))
			}
			o, _ := s.process(context.Background(), req, names, remote, remote)
			if o == outcomeShort || o == outcomeNotCall {
				continue
			}
			out := req.out.Bytes()
			rep, err := rpctest.ParseReply(out[markLen:])
			if err != nil {
				t.Fatalf("malformed reply % x: %v", out, err)
			}
			if rep.XID != req.call.XID {
				t.Fatalf("reply XID %d for call %d", rep.XID, req.call.XID)
			}
		}
	})
}
