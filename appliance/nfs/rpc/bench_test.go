package rpc_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"

	"ftnas/appliance/nfs/rpc"
	"ftnas/appliance/nfs/rpc/rpctest"
	"ftnas/appliance/nfs/xdr"
)

// benchServer serves proc 0 (null) and proc 1 (reply with n bytes, n the
// first argument) of testProg version 1.
func benchServer(b *testing.B) string {
	srv := rpc.NewServer(rpc.Options{})
	data := make([]byte, 1<<20)
	srv.Register(testProg, 1, rpc.HandlerFunc(func(ctx context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
		if c.Proc == 1 {
			n := c.Args.Uint32()
			w.Uint32(n)
			copy(w.Grow(int(n)), data)
			w.Align()
		}
		return rpc.Success
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// benchPipelined keeps depth calls outstanding on one connection.
func benchPipelined(b *testing.B, proc uint32, args []byte, depth int) {
	addr := benchServer(b)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	rec := rpctest.Frame(rpctest.EncodeCall(1, testProg, 1, proc, rpctest.Sys("bench", 1, 1), args), 0)
	br := bufio.NewReaderSize(conn, 1<<20)
	done := make(chan error, 1)
	go func() {
		var hdr [4]byte
		for range b.N {
			// Single-fragment replies: skip the body without copying it out.
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				done <- err
				return
			}
			if _, err := br.Discard(int(binary.BigEndian.Uint32(hdr[:]) &^ (1 << 31))); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.ResetTimer()
	sent := 0
	bw := bufio.NewWriter(conn)
	for sent < b.N {
		n := min(depth, b.N-sent)
		for range n {
			bw.Write(rec)
		}
		bw.Flush()
		sent += n
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkNullPipelined(b *testing.B) { benchPipelined(b, 0, nil, 32) }

func BenchmarkRead1MiB(b *testing.B) {
	b.SetBytes(1 << 20)
	benchPipelined(b, 1, binary.BigEndian.AppendUint32(nil, 1<<20), 4)
}

func BenchmarkWrite1MiB(b *testing.B) {
	b.SetBytes(1 << 20)
	w := xdr.NewWriter(nil)
	w.Uint32(0)
	w.Opaque(make([]byte, 1<<20))
	benchPipelined(b, 0, w.Bytes(), 4)
}
