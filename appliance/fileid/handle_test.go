package fileid

import (
	"bytes"
	"testing"
)

func TestHandleRoundTrip(t *testing.T) {
	for _, h := range []Handle{
		{FSID: 1, Stamp: Stamp{ID: 2, Gen: 3}},
		{FSID: ^uint64(0), Stamp: Stamp{ID: ^uint64(0), Gen: ^uint32(0)}},
	} {
		b := h.Encode()
		if len(b) != HandleLen {
			t.Fatalf("Encode(%v) has length %d, want %d", h, len(b), HandleLen)
		}
		got, err := DecodeHandle(b)
		if err != nil || got != h {
			t.Fatalf("DecodeHandle(Encode(%v)) = %v, %v", h, got, err)
		}
	}
}

func TestDecodeHandleErrors(t *testing.T) {
	good := Handle{FSID: 7, Stamp: Stamp{ID: 9, Gen: 1}}.Encode()
	badVer := bytes.Clone(good)
	badVer[0] = 2
	zeroID := Handle{FSID: 7, Stamp: Stamp{ID: 0, Gen: 1}}.AppendTo(nil)
	for name, b := range map[string][]byte{
		"empty": nil, "short": good[:10], "long": append(bytes.Clone(good), 0),
		"version": badVer, "zero id": zeroID,
	} {
		if _, err := DecodeHandle(b); err == nil {
			t.Errorf("%s: DecodeHandle accepted %x", name, b)
		}
	}
}

func TestStampRoundTrip(t *testing.T) {
	s := Stamp{ID: 123456789, Gen: 42}
	got, err := ParseStamp(s.MarshalBinary())
	if err != nil || got != s {
		t.Fatalf("ParseStamp = %v, %v; want %v", got, err, s)
	}
	if _, err := ParseStamp([]byte("user data")); err == nil {
		t.Fatal("ParseStamp accepted garbage")
	}
}

func FuzzDecodeHandle(f *testing.F) {
	f.Add(Handle{FSID: 1, Stamp: Stamp{ID: 2, Gen: 3}}.Encode())
	f.Add([]byte{})
	f.Add(make([]byte, HandleLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHandle(b)
		if err != nil {
			return
		}
		if !bytes.Equal(h.Encode(), b) {
			t.Fatalf("decode/encode not identity: %x -> %v -> %x", b, h, h.Encode())
		}
	})
}

func FuzzParseStamp(f *testing.F) {
	f.Add(Stamp{ID: 5, Gen: 6}.MarshalBinary())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStamp(b)
		if err != nil {
			return
		}
		if !bytes.Equal(s.MarshalBinary(), b) {
			t.Fatalf("parse/marshal not identity: %x", b)
		}
	})
}
