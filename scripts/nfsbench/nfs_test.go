package main

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func fattrWords(e *encoder, typ uint32, size, fileid uint64) {
	e.uint32(typ)
	for i := 0; i < 4; i++ {
		e.uint32(0)
	}
	e.uint64(size)
	e.uint64(0) // used
	e.uint64(0) // rdev
	e.uint64(0) // fsid
	e.uint64(fileid)
	for i := 0; i < 6; i++ {
		e.uint32(0)
	}
}

func TestDecodeFattr(t *testing.T) {
	var e encoder
	fattrWords(&e, 1, 12345, 77)
	if len(e.b) != fattr3Size {
		t.Fatalf("fattr3 is %d bytes, want %d", len(e.b), fattr3Size)
	}
	d := decoder{b: e.b}
	a := decodeFattr(&d)
	if d.err != nil || a.Type != 1 || a.Size != 12345 || a.FileID != 77 || len(d.rest()) != 0 {
		t.Fatalf("fattr %+v err %v", a, d.err)
	}
}

func TestDecodeWriteReply(t *testing.T) {
	var e encoder
	e.uint32(0)  // NFS3_OK
	e.bool(true) // pre_op_attr
	e.uint64(1)  // size
	e.uint64(2)  // mtime
	e.uint64(3)  // ctime
	e.bool(true) // post_op_attr
	fattrWords(&e, 1, 4096, 9)
	e.uint32(4096) // count
	e.uint32(0)    // UNSTABLE
	e.fixed([]byte("verifier"))
	d := decoder{b: e.b}
	if err := checkStatus(&d, "WRITE"); err != nil {
		t.Fatal(err)
	}
	w := decodeWriteReply(&d)
	if d.err != nil || w.Count != 4096 || string(w.Verf[:]) != "verifier" || len(d.rest()) != 0 {
		t.Fatalf("write reply %+v err %v", w, d.err)
	}

	var bad encoder
	bad.uint32(28)
	d = decoder{b: bad.b}
	if err := checkStatus(&d, "WRITE"); err == nil || err.Error() != "WRITE: NFS3ERR_NOSPC (28)" {
		t.Fatalf("NOSPC: %v", err)
	}
}

func TestDecodeReadReply(t *testing.T) {
	var e encoder
	e.bool(false) // no attributes
	e.uint32(3)
	e.bool(true)
	e.opaque([]byte("abc"))
	d := decoder{b: e.b}
	data, eof := decodeReadReply(&d, 10)
	if d.err != nil || string(data) != "abc" || !eof {
		t.Fatalf("read reply %q eof %v err %v", data, eof, d.err)
	}

	// count disagreeing with the opaque length is an error.
	e = encoder{}
	e.bool(false)
	e.uint32(4)
	e.bool(false)
	e.opaque([]byte("abc"))
	d = decoder{b: e.b}
	decodeReadReply(&d, 10)
	if d.err == nil || !strings.Contains(d.err.Error(), "count 4 but 3") {
		t.Fatalf("count mismatch: %v", d.err)
	}

	// More data than asked for is refused.
	e = encoder{}
	e.bool(false)
	e.uint32(3)
	e.bool(false)
	e.opaque([]byte("abc"))
	d = decoder{b: e.b}
	decodeReadReply(&d, 2)
	if d.err == nil {
		t.Fatal("oversized READ data accepted")
	}
}

func TestDecodeMountReply(t *testing.T) {
	var e encoder
	e.uint32(0)
	e.opaque([]byte{1, 2, 3, 4, 5})
	e.uint32(2)
	e.uint32(authNone)
	e.uint32(authSys)
	fh, flavors, err := decodeMountReply(e.b, "/bench")
	if err != nil || !bytes.Equal(fh, []byte{1, 2, 3, 4, 5}) || len(flavors) != 2 || flavors[1] != authSys {
		t.Fatalf("fh %v flavors %v err %v", fh, flavors, err)
	}
	var bad encoder
	bad.uint32(13)
	if _, _, err := decodeMountReply(bad.b, "/bench"); err == nil || err.Error() != "MNT /bench: MNT3ERR_ACCES (13)" {
		t.Fatalf("ACCES: %v", err)
	}
}

func FuzzDecodeNFSReplies(f *testing.F) {
	var w encoder
	w.uint32(0)
	w.bool(false)
	w.bool(false)
	w.uint32(1)
	w.uint32(0)
	w.fixed(make([]byte, 8))
	f.Add(w.b)
	var m encoder
	m.uint32(0)
	m.opaque([]byte{1})
	m.uint32(1)
	m.uint32(1)
	f.Add(m.b)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeMountReply(b, "/x")
		for _, dec := range []func(*decoder){
			func(d *decoder) { decodeWriteReply(d) },
			func(d *decoder) {
				data, _ := decodeReadReply(d, 1<<20)
				if d.err == nil && len(data) > 1<<20 {
					t.Fatal("READ data past the limit")
				}
			},
			func(d *decoder) { decodeFsinfo(d) },
			func(d *decoder) {
				fh, _ := decodeNewObject(d)
				if len(fh) > fhSizeMax {
					t.Fatal("handle past NFS3_FHSIZE")
				}
			},
		} {
			d := &decoder{b: b}
			if checkStatus(d, "X") == nil {
				dec(d)
			}
		}
	})
}

// fakeServer answers each call on a TCP connection with the reply that
// respond builds. Replies are held and sent in reverse order in batches of
// batch, each split into two fragments, so the client must match by xid and
// join fragments.
func fakeServer(t *testing.T, batch int, respond func(call *decoder) []uint32) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func(conn net.Conn) {
				defer conn.Close()
				var held [][]byte
				for {
					rec, err := readRecord(conn, 1<<20)
					if err != nil {
						return
					}
					d := decoder{b: rec}
					xid := d.uint32()
					d.skip("call header", 5*4)
					d.uint32()
					d.opaque(400)
					d.uint32()
					d.opaque(400)
					body := respond(&d)
					reply := acceptedReply(xid, 0, body...)
					half := len(reply) / 2
					held = append(held, binary.BigEndian.AppendUint32(nil, uint32(half)), reply[:half],
						binary.BigEndian.AppendUint32(nil, lastFragment|uint32(len(reply)-half)), reply[half:])
					if len(held) == 4*batch {
						for i := batch - 1; i >= 0; i-- {
							for _, p := range held[4*i : 4*i+4] {
								if _, err := conn.Write(p); err != nil {
									return
								}
							}
						}
						held = held[:0]
					}
				}
			}(conn)
		}
	}()
	return ln.Addr().String()
}

func TestClientPipelinesAndMatchesXIDs(t *testing.T) {
	// The reply echoes the first argument, so each caller can check it got
	// its own reply.
	addr := fakeServer(t, 8, func(call *decoder) []uint32 { return []uint32{call.uint32()} })
	c, err := dialRPC(addr, authSysCred{Machine: "t"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := uint32(0); i < 64; i++ {
		wg.Add(1)
		go func(i uint32) {
			defer wg.Done()
			res, err := c.call(1, 1, 1, 4, func(e *encoder) { e.uint32(i) })
			if err != nil {
				errs <- err
				return
			}
			d := decoder{b: res}
			if v := d.uint32(); v != i || d.err != nil {
				errs <- &rpcError{msg: "wrong reply"}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestClientFailsPendingCallsWhenServerCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		readRecord(conn, 1<<20)
		conn.Close()
	}()
	c, err := dialRPC(ln.Addr().String(), authSysCred{}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.call(1, 1, 1, 0, nil); err == nil || !strings.Contains(err.Error(), "read reply") {
		t.Fatalf("call on a closed connection: %v", err)
	}
	if _, err := c.call(1, 1, 1, 0, nil); err == nil {
		t.Fatal("call after connection death succeeded")
	}
}
