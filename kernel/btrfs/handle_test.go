package btrfs

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func fid(obj, root uint64, gen uint32, extra ...uint64) []byte {
	b := binary.NativeEndian.AppendUint64(nil, obj)
	b = binary.NativeEndian.AppendUint64(b, root)
	b = binary.NativeEndian.AppendUint32(b, gen)
	if len(extra) > 0 {
		b = binary.NativeEndian.AppendUint64(b, extra[0]) // parent objectid
		b = binary.NativeEndian.AppendUint32(b, 7)        // parent gen
	}
	if len(extra) > 1 {
		b = binary.NativeEndian.AppendUint64(b, extra[1]) // parent root
	}
	return b
}

func TestParseHandle(t *testing.T) {
	h, ok := ParseHandle(FileIDWithoutParent, fid(257, 5, 9))
	if !ok || h != (Handle{Objectid: 257, Root: 5, Gen: 9}) {
		t.Fatalf("ParseHandle = %+v, %v", h, ok)
	}
	for _, c := range []struct {
		typ int32
		b   []byte
	}{
		{FileIDWithoutParent, fid(257, 5, 9)[:19]},
		{FileIDWithParent, fid(257, 5, 9)},
		{FileIDWithParentRoot, fid(257, 5, 9, 256)},
		{1, fid(257, 5, 9)}, // FILEID_INO32_GEN: ext4's
	} {
		if _, ok := ParseHandle(c.typ, c.b); ok {
			t.Errorf("ParseHandle(%#x, %d bytes) accepted", c.typ, len(c.b))
		}
	}
}

func TestReRoot(t *testing.T) {
	in := fid(257, 5, 9)
	out, ok := ReRoot(FileIDWithoutParent, in, 5, 260)
	if !ok || !bytes.Equal(out, fid(257, 260, 9)) {
		t.Fatalf("ReRoot = %x, %v", out, ok)
	}
	if !bytes.Equal(in, fid(257, 5, 9)) {
		t.Fatal("ReRoot changed its input")
	}
	back, ok := ReRoot(FileIDWithoutParent, out, 260, 5)
	if !ok || !bytes.Equal(back, in) {
		t.Fatalf("ReRoot back = %x, %v", back, ok)
	}
	if _, ok := ReRoot(FileIDWithoutParent, in, 260, 5); ok {
		t.Fatal("ReRoot of a handle of another subvolume succeeded")
	}
	if _, ok := ReRoot(1, in, 5, 260); ok {
		t.Fatal("ReRoot of a foreign handle succeeded")
	}
	// With the parent's root: replaced where it is the same subvolume.
	out, ok = ReRoot(FileIDWithParentRoot, fid(257, 5, 9, 256, 5), 5, 260)
	if !ok || !bytes.Equal(out, fid(257, 260, 9, 256, 260)) {
		t.Fatalf("ReRoot with parent root = %x, %v", out, ok)
	}
	out, ok = ReRoot(FileIDWithParentRoot, fid(256, 5, 9, 300, 6), 5, 260)
	if !ok || !bytes.Equal(out, fid(256, 260, 9, 300, 6)) {
		t.Fatalf("ReRoot with another parent root = %x, %v", out, ok)
	}
}

func FuzzReRoot(f *testing.F) {
	f.Add(int32(FileIDWithoutParent), fid(257, 5, 9), uint64(5), uint64(260))
	f.Add(int32(FileIDWithParentRoot), fid(257, 5, 9, 256, 5), uint64(5), uint64(6))
	f.Add(int32(1), []byte{1, 2, 3}, uint64(0), uint64(1))
	f.Fuzz(func(t *testing.T, typ int32, b []byte, from, to uint64) {
		out, ok := ReRoot(typ, b, from, to)
		if !ok {
			return
		}
		h, ok := ParseHandle(typ, out)
		if !ok || h.Root != to || len(out) != len(b) {
			t.Fatalf("ReRoot gave %x (%+v, %v)", out, h, ok)
		}
		if back, ok := ReRoot(typ, out, to, from); from != to && (!ok || (typ != FileIDWithParentRoot && !bytes.Equal(back, b))) {
			t.Fatalf("ReRoot back = %x, %v; want %x", back, ok, b)
		}
	})
}
