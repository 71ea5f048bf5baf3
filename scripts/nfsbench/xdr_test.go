package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestXDRRoundTrip(t *testing.T) {
	var e encoder
	e.uint32(7)
	e.uint64(1 << 40)
	e.bool(true)
	e.opaque([]byte{1, 2, 3})
	e.string("hello")
	e.fixed([]byte{9, 9, 9, 9, 9, 9, 9, 9})
	if len(e.b)%4 != 0 {
		t.Fatalf("encoded length %d not a multiple of 4", len(e.b))
	}
	// opaque{1,2,3}: length word, 3 bytes, 1 pad byte.
	if got := e.b[16:24]; !bytes.Equal(got, []byte{0, 0, 0, 3, 1, 2, 3, 0}) {
		t.Fatalf("opaque encoding = %v", got)
	}
	d := decoder{b: e.b}
	if v := d.uint32(); v != 7 {
		t.Errorf("uint32 = %d", v)
	}
	if v := d.uint64(); v != 1<<40 {
		t.Errorf("uint64 = %d", v)
	}
	if !d.bool() {
		t.Error("bool = false")
	}
	if v := d.opaque(10); !bytes.Equal(v, []byte{1, 2, 3}) {
		t.Errorf("opaque = %v", v)
	}
	if v := d.opaque(10); string(v) != "hello" {
		t.Errorf("string = %q", v)
	}
	if v := d.fixed(8); len(v) != 8 || v[0] != 9 {
		t.Errorf("fixed = %v", v)
	}
	if d.err != nil || len(d.rest()) != 0 {
		t.Fatalf("err %v, %d bytes left", d.err, len(d.rest()))
	}
}

func TestDecoderErrors(t *testing.T) {
	d := decoder{b: []byte{0, 0, 0}}
	if d.uint32() != 0 || d.err == nil || !strings.Contains(d.err.Error(), "short buffer reading uint32") {
		t.Fatalf("short uint32: err %v", d.err)
	}
	first := d.err
	d.uint64()
	if d.err != first {
		t.Fatal("first error did not stick")
	}

	d = decoder{b: []byte{0, 0, 0, 2}}
	d.bool()
	if d.err == nil || !strings.Contains(d.err.Error(), "want 0 or 1") {
		t.Fatalf("bool 2: err %v", d.err)
	}

	d = decoder{b: []byte{0, 0, 0, 65, 1}}
	if d.opaque(64) != nil || d.err == nil || !strings.Contains(d.err.Error(), "exceeds limit 64") {
		t.Fatalf("long opaque: err %v", d.err)
	}

	// Length fits the limit but the data is missing its padding.
	d = decoder{b: []byte{0, 0, 0, 1, 7}}
	if d.opaque(64) != nil || d.err == nil {
		t.Fatalf("unpadded opaque accepted")
	}
}

func record(frags ...[]byte) []byte {
	var b []byte
	for i, f := range frags {
		h := uint32(len(f))
		if i == len(frags)-1 {
			h |= lastFragment
		}
		b = binary.BigEndian.AppendUint32(b, h)
		b = append(b, f...)
	}
	return b
}

func TestReadRecord(t *testing.T) {
	stream := append(record([]byte("abcd"), []byte("ef"), []byte("gh")), record([]byte("xyz!"))...)
	r := bytes.NewReader(stream)
	got, err := readRecord(r, 100)
	if err != nil || string(got) != "abcdefgh" {
		t.Fatalf("multi-fragment record = %q, %v", got, err)
	}
	got, err = readRecord(r, 100)
	if err != nil || string(got) != "xyz!" {
		t.Fatalf("second record = %q, %v", got, err)
	}
	if _, err = readRecord(r, 100); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}

	if _, err := readRecord(bytes.NewReader(record(make([]byte, 60), make([]byte, 60))), 100); err == nil || !strings.Contains(err.Error(), "more than 100 bytes") {
		t.Fatalf("oversized record: %v", err)
	}
	trunc := record([]byte("abcdefgh"))[:7]
	if _, err := readRecord(bytes.NewReader(trunc), 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated record: %v, want unexpected EOF", err)
	}
	// A stream ending after a non-final fragment is truncated, not clean EOF.
	nonFinal := binary.BigEndian.AppendUint32(nil, 2)
	nonFinal = append(nonFinal, 'a', 'b')
	if _, err := readRecord(bytes.NewReader(nonFinal), 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("missing last fragment: %v, want unexpected EOF", err)
	}
}

func acceptedReply(xid, acceptStat uint32, body ...uint32) []byte {
	var e encoder
	e.uint32(xid)
	e.uint32(msgReply)
	e.uint32(replyAccepted)
	e.uint32(authNone)
	e.uint32(0)
	e.uint32(acceptStat)
	for _, v := range body {
		e.uint32(v)
	}
	return e.b
}

func TestParseReply(t *testing.T) {
	xid, res, callErr, err := parseReply(acceptedReply(42, 0, 5, 6))
	if err != nil || callErr != nil || xid != 42 || len(res) != 8 || res[3] != 5 {
		t.Fatalf("success: xid %d res %v callErr %v err %v", xid, res, callErr, err)
	}

	_, _, callErr, err = parseReply(acceptedReply(1, 2, 3, 3))
	if err != nil || callErr == nil || !strings.Contains(callErr.Error(), "PROG_MISMATCH (server supports versions 3..3)") {
		t.Fatalf("prog mismatch: callErr %v err %v", callErr, err)
	}
	_, _, callErr, _ = parseReply(acceptedReply(1, 4))
	if callErr == nil || !strings.Contains(callErr.Error(), "GARBAGE_ARGS") {
		t.Fatalf("garbage args: %v", callErr)
	}
	if _, _, _, err = parseReply(acceptedReply(1, 99)); err == nil {
		t.Fatal("unknown accept status accepted")
	}

	var e encoder
	e.uint32(9)
	e.uint32(msgReply)
	e.uint32(replyDenied)
	e.uint32(1) // AUTH_ERROR
	e.uint32(5) // AUTH_TOOWEAK
	xid, _, callErr, err = parseReply(e.b)
	if err != nil || xid != 9 || callErr == nil || !strings.Contains(callErr.Error(), "AUTH_ERROR (auth_stat 5)") {
		t.Fatalf("auth error: xid %d callErr %v err %v", xid, callErr, err)
	}

	var call encoder
	encodeCallHeader(&call, 3, progNFS, 3, 0, authSysCred{Machine: "m", UID: 1000, GID: 1000})
	if _, _, _, err = parseReply(call.b); err == nil || !strings.Contains(err.Error(), "want REPLY") {
		t.Fatalf("a CALL parsed as reply: %v", err)
	}
	if _, _, _, err = parseReply([]byte{0, 0}); err == nil {
		t.Fatal("2-byte reply accepted")
	}
}

func TestEncodeCallHeader(t *testing.T) {
	var e encoder
	encodeCallHeader(&e, 0x11, progMount, 3, mountProcMnt, authSysCred{Machine: "abcde", UID: 1000, GID: 100, GIDs: []uint32{100, 7}})
	d := decoder{b: e.b}
	want := []uint32{0x11, msgCall, rpcVersion, progMount, 3, mountProcMnt, authSys}
	for i, w := range want {
		if v := d.uint32(); v != w {
			t.Fatalf("word %d = %d, want %d", i, v, w)
		}
	}
	body := decoder{b: d.opaque(400)}
	body.uint32() // stamp
	if m := body.opaque(255); string(m) != "abcde" {
		t.Fatalf("machine = %q", m)
	}
	if uid, gid, n := body.uint32(), body.uint32(), body.uint32(); uid != 1000 || gid != 100 || n != 2 {
		t.Fatalf("uid %d gid %d ngids %d", uid, gid, n)
	}
	body.uint32()
	body.uint32()
	if body.err != nil || len(body.rest()) != 0 {
		t.Fatalf("cred body: %v, %d left", body.err, len(body.rest()))
	}
	if f, l := d.uint32(), d.uint32(); f != authNone || l != 0 || d.err != nil || len(d.rest()) != 0 {
		t.Fatalf("verifier %d/%d, err %v", f, l, d.err)
	}
}

func FuzzReadRecord(f *testing.F) {
	f.Add(record([]byte("abcd")))
	f.Add(record([]byte("ab"), []byte("cd")))
	f.Add([]byte{0x80, 0, 0, 0})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := readRecord(bytes.NewReader(b), 1<<16)
		if err == nil && len(rec) > 1<<16 {
			t.Fatalf("record of %d bytes past the limit", len(rec))
		}
	})
}

func FuzzParseReply(f *testing.F) {
	f.Add(acceptedReply(1, 0, 0))
	f.Add(acceptedReply(1, 2, 3, 3))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, res, callErr, err := parseReply(b)
		if err == nil && callErr == nil && len(res) > len(b) {
			t.Fatal("results longer than the record")
		}
	})
}
