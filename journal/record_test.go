package journal

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"ftnas/appliance/fileid"
)

var (
	stA = fileid.Stamp{ID: 7, Gen: 0xdeadbeef}
	stB = fileid.Stamp{ID: 8, Gen: 2}
	stC = fileid.Stamp{ID: 1 << 40, Gen: 3}
)

// validRecords has one record of every op, and the corner cases of each.
func validRecords() []Record {
	base := Record{Seq: 42, Epoch: 3, Time: 1_700_000_000_123_456_789, Share: 1001, File: stA}
	with := func(f func(*Record)) Record { r := base; f(&r); return r }
	return []Record{
		with(func(r *Record) {
			r.Op, r.Parent, r.Name, r.Mode, r.UID, r.GID = OpCreate, stB, "a.txt", ModeReg|0o644, 10000, 10000
		}),
		with(func(r *Record) { r.Op, r.Parent, r.Name, r.Mode, r.Rdev = OpCreate, stB, "null", ModeChar|0o666, 0x103 }),
		with(func(r *Record) { r.Op, r.Parent, r.Name, r.Mode = OpCreate, stB, "fifo", ModeFIFO|0o600 }),
		with(func(r *Record) { r.Op, r.Parent, r.Name, r.Mode, r.UID = OpMkdir, stB, "dir", 0o1777, 5 }),
		with(func(r *Record) { r.Op, r.Parent, r.Name, r.Target = OpSymlink, stB, "ln", "../x/y" }),
		with(func(r *Record) { r.Op, r.Parent, r.Name = OpLink, stC, "hard" }),
		with(func(r *Record) { r.Op, r.Parent, r.Name = OpRemove, stB, "gone" }),
		with(func(r *Record) { r.Op, r.Parent, r.Name = OpRmdir, stB, "d" }),
		with(func(r *Record) {
			r.Op, r.Parent, r.Name, r.NewParent, r.NewName = OpRename, stB, "old", stC, strings.Repeat("n", MaxName)
		}),
		with(func(r *Record) { r.Op = OpWrite }), // unknown range
		with(func(r *Record) { r.Op, r.Off, r.Len = OpWrite, 1<<40, 1<<20 }),
		with(func(r *Record) { r.Op, r.Flags, r.Off, r.Len, r.Data = OpWrite, FlagInline, 5, 3, []byte("abc") }),
		with(func(r *Record) { r.Op, r.Size = OpTruncate, 0 }),
		with(func(r *Record) { r.Op, r.Size = OpTruncate, 1<<50 }),
		with(func(r *Record) { r.Op = OpSetAttr }), // unknown attributes
		with(func(r *Record) {
			r.Op, r.AttrMask, r.Mode, r.UID, r.GID, r.Atime, r.Mtime = OpSetAttr, knownAttrs, 0o4755, 1, 2, -5, 1e18
		}),
		with(func(r *Record) { r.Op, r.AttrMask, r.UID = OpSetAttr, AttrUID, 0 }), // chown to root
		with(func(r *Record) { r.Op, r.Name = OpSetXattr, "user.comment" }),
		with(func(r *Record) { r.Op, r.Flags, r.Name, r.Data = OpSetXattr, FlagInline, "user.x", []byte{} }),
		with(func(r *Record) { r.Op, r.Flags, r.Name, r.Data = OpSetXattr, FlagInline, "user.x", []byte{0, 1, 2} }),
		with(func(r *Record) { r.Op, r.Name = OpRemoveXattr, "security.selinux" }),
		with(func(r *Record) { r.Op, r.File = OpRescan, fileid.Stamp{} }),
		with(func(r *Record) { r.Op, r.Seq, r.Epoch, r.Time = OpRescan, 0, 0, 0 }),
		with(func(r *Record) { r.Op, r.Flags, r.Data = OpPrune, FlagInline, []byte{} }), // an empty directory
		with(func(r *Record) { r.Op, r.Flags, r.Data = OpPrune, FlagInline, []byte("a\x00b.txt\x00\xffz") }),
		with(func(r *Record) {
			r.Op, r.Flags, r.Name, r.NewName, r.Data = OpPrune, FlagInline, "b", "m", []byte("b\x00c\x00lzz")
		}),
		with(func(r *Record) { r.Op, r.Flags, r.NewName, r.Data = OpPrune, FlagInline, "m", []byte("a") }),
		with(func(r *Record) { r.Op, r.Flags, r.Name, r.Data = OpPrune, FlagInline, "m", []byte{} }),
	}
}

func TestRecordRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range validRecords() {
		b, err := Marshal(r)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", r, err)
		}
		if seen[string(b)] {
			t.Errorf("two records encode the same: %+v", r)
		}
		seen[string(b)] = true
		got, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("Unmarshal(Marshal(%+v)): %v", r, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
		}
		if seq, err := EncodedSeq(b); err != nil || seq != r.Seq {
			t.Errorf("EncodedSeq = %d, %v; want %d", seq, err, r.Seq)
		}
		// Every proper prefix is rejected, never misread.
		for n := range len(b) {
			if _, err := Unmarshal(b[:n]); err == nil {
				t.Fatalf("%s: prefix of %d/%d bytes decoded", r.Op, n, len(b))
			}
		}
		if _, err := Unmarshal(append(bytes.Clone(b), 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
			t.Errorf("%s: trailing byte: err = %v", r.Op, err)
		}
	}
	if len(seen) < int(opEnd-1) {
		t.Fatalf("only %d encodings", len(seen))
	}
}

func TestUnmarshalCopies(t *testing.T) {
	r := Record{Op: OpSetXattr, Share: 1, File: stA, Flags: FlagInline, Name: "user.a", Data: []byte("value")}
	b, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0xff
	}
	if got.Name != "user.a" || string(got.Data) != "value" {
		t.Fatalf("decoded record aliases its input: %+v", got)
	}
}

func TestMarshalRejects(t *testing.T) {
	base := Record{Share: 1, File: stA}
	with := func(f func(*Record)) Record { r := base; f(&r); return r }
	prune := func(from, to, names string) Record {
		return with(func(r *Record) {
			r.Op, r.Flags, r.Name, r.NewName, r.Data = OpPrune, FlagInline, from, to, []byte(names)
		})
	}
	cases := []struct {
		r    Record
		want string
	}{
		{with(func(r *Record) {}), "unknown op"},
		{with(func(r *Record) { r.Op = opEnd }), "unknown op"},
		{with(func(r *Record) { r.Op, r.Share = OpRescan, 0 }), "zero share"},
		{with(func(r *Record) { r.Op, r.File = OpTruncate, fileid.Stamp{} }), "zero file ID"},
		{with(func(r *Record) { r.Op, r.File = OpRescan, fileid.Stamp{Gen: 1} }), "generation without an ID"},
		{with(func(r *Record) { r.Op, r.Flags = OpTruncate, 0x80 }), "unknown flags"},
		{with(func(r *Record) { r.Op, r.Flags = OpTruncate, FlagInline }), "inline flag on an op without data"},
		{with(func(r *Record) { r.Op, r.Name = OpTruncate, "x" }), "name set but not used"},
		{with(func(r *Record) { r.Op, r.Parent, r.Name, r.Size = OpRemove, stB, "x", 1 }), "size set but not used"},
		{with(func(r *Record) { r.Op, r.Name = OpRemove, "x" }), "zero parent ID"},
		{with(func(r *Record) { r.Op, r.Parent = OpRemove, stB }), "empty name"},
		{with(func(r *Record) { r.Op, r.Parent, r.Name = OpRemove, stB, "a/b" }), "contains '/'"},
		{with(func(r *Record) { r.Op, r.Parent, r.Name = OpRemove, stB, "a\x00" }), "contains '/' or NUL"},
		{with(func(r *Record) { r.Op, r.Parent, r.Name = OpRemove, stB, ".." }), "not allowed"},
		{with(func(r *Record) { r.Op, r.Parent, r.Name = OpRemove, stB, strings.Repeat("x", 256) }), "exceeds 255"},
		{with(func(r *Record) { r.Op, r.Parent, r.Name, r.NewName = OpRename, stB, "a", "b" }), "zero new parent"},
		{with(func(r *Record) { r.Op, r.Parent, r.Name, r.NewParent = OpRename, stB, "a", stC }), "empty new name"},
		{with(func(r *Record) { r.Op, r.Parent, r.Name = OpSymlink, stB, "l" }), "empty symlink target"},
		{with(func(r *Record) { r.Op, r.Parent, r.Name, r.Target = OpSymlink, stB, "l", strings.Repeat("t", 4096) }), "target of 4096"},
		{with(func(r *Record) { r.Op, r.Parent, r.Name = OpCreate, stB, "f" }), "file type"},
		{with(func(r *Record) { r.Op, r.Parent, r.Name, r.Mode = OpCreate, stB, "f", ModeDir|0o755 }), "file type"},
		{with(func(r *Record) { r.Op, r.Parent, r.Name, r.Mode, r.Rdev = OpCreate, stB, "f", ModeReg, 1 }), "rdev on a non-device"},
		{with(func(r *Record) { r.Op, r.Parent, r.Name, r.Mode = OpMkdir, stB, "d", ModeDir|0o755 }), "only permission bits"},
		{with(func(r *Record) { r.Op, r.Off = OpWrite, 5 }), "offset without a length"},
		{with(func(r *Record) { r.Op, r.Off, r.Len = OpWrite, ^uint64(0), 2 }), "overflows"},
		{with(func(r *Record) { r.Op, r.Len, r.Data = OpWrite, 1, []byte("x") }), "data without the inline flag"},
		{with(func(r *Record) { r.Op, r.Flags, r.Len, r.Data = OpWrite, FlagInline, 2, []byte("x") }), "inline data is 1 bytes"},
		{with(func(r *Record) { r.Op, r.Flags = OpWrite, FlagInline }), "inline length 0"},
		{with(func(r *Record) { r.Op, r.UID = OpSetAttr, 5 }), "uid set but not in the attribute mask"},
		{with(func(r *Record) { r.Op, r.AttrMask = OpSetAttr, 0x80 }), "unknown attribute bits"},
		{with(func(r *Record) { r.Op, r.AttrMask, r.Mode = OpSetAttr, AttrMode, ModeReg|0o644 }), "only permission bits"},
		{with(func(r *Record) { r.Op = OpSetXattr }), "empty xattr name"},
		{with(func(r *Record) { r.Op, r.Name, r.Flags = OpSetXattr, "user.a", FlagInline }), "inline flag without data"},
		{with(func(r *Record) { r.Op, r.Name, r.Data = OpSetXattr, "user.a", []byte{} }), "data without the inline flag"},
		{with(func(r *Record) {
			r.Op, r.Name, r.Flags, r.Data = OpSetXattr, "user.a", FlagInline, make([]byte, MaxInline+1)
		}), "exceeds"},
		{prune("", "", "b\x00a"), "not sorted and unique"},
		{prune("", "", "a\x00a"), "not sorted and unique"},
		{prune("", "", "a\x00b/c"), "contains '/'"},
		{prune("", "", "a\x00\x00b"), "empty listed name"},
		{prune("", "", "a\x00"), "empty listed name"},
		{prune("", "", ".."), "not allowed"},
		{prune("", "", strings.Repeat("x", 256)), "exceeds 255"},
		{prune("m", "b", ""), "inverted range"},
		{prune("m", "m", ""), "inverted range"},
		{prune("a/b", "", ""), "range start"},
		{prune("", "..", ""), "range end"},
		{prune("b", "m", "a"), "outside the range"},
		{prune("b", "m", "m"), "outside the range"},
		{prune("", "m", "b\x00zz"), "outside the range"},
		{with(func(r *Record) { r.Op, r.Data = OpPrune, []byte("a") }), "without the inline flag"},
		{with(func(r *Record) { r.Op, r.Flags = OpPrune, FlagInline }), "inline flag without data"},
		{with(func(r *Record) { r.Op, r.Flags, r.Data = OpPrune, FlagInline, make([]byte, MaxInline+1) }), "exceed"},
		{with(func(r *Record) { r.Op, r.Flags, r.Data, r.Parent = OpPrune, FlagInline, []byte{}, stB }), "parent set but not used"},
		{with(func(r *Record) { r.Op, r.Flags, r.Data, r.File = OpPrune, FlagInline, []byte{}, fileid.Stamp{} }), "zero file ID"},
	}
	for _, c := range cases {
		_, err := Marshal(c.r)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Marshal(%+v) = %v, want error containing %q", c.r, err, c.want)
		}
	}
}

func TestUnmarshalRejects(t *testing.T) {
	good, err := Marshal(Record{Op: OpRemove, Share: 1, File: stA, Parent: stB, Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "shorter than the 47-byte header"},
		{"version", mod(func(b []byte) []byte { b[0] = 2; return b }), "unknown version 2"},
		{"op", mod(func(b []byte) []byte { b[1] = 0; return b }), "unknown op 0"},
		{"flags", mod(func(b []byte) []byte { b[2] = 4; return b }), "unknown flags"},
		{"share", mod(func(b []byte) []byte { clear(b[27:35]); return b }), "zero share"},
		{"name length", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[59:], 300); return b }), "name length 300 exceeds 255"},
		{"truncated name", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[59:], 2); return b }), "truncated at name"},
		{"bad name", mod(func(b []byte) []byte { b[len(b)-1] = '/'; return b }), "contains '/'"},
		{"inline too big", func() []byte {
			b, _ := Marshal(Record{Op: OpSetXattr, Share: 1, File: stA, Name: "u.a", Flags: FlagInline, Data: []byte{1}})
			binary.BigEndian.PutUint32(b[len(b)-5:], MaxInline+1)
			return b
		}(), "exceeds"},
		{"prune names too big", func() []byte {
			b, _ := Marshal(Record{Op: OpPrune, Share: 1, File: stA, Flags: FlagInline, Data: []byte("a")})
			binary.BigEndian.PutUint32(b[len(b)-5:], MaxInline+1)
			return b
		}(), "exceeds"},
		{"prune names truncated", func() []byte {
			b, _ := Marshal(Record{Op: OpPrune, Share: 1, File: stA, Flags: FlagInline, Data: []byte("a")})
			binary.BigEndian.PutUint32(b[len(b)-5:], 2)
			return b
		}(), "truncated at inline data"},
		{"prune unsorted", func() []byte {
			b, _ := Marshal(Record{Op: OpPrune, Share: 1, File: stA, Flags: FlagInline, Data: []byte("a\x00b")})
			b[len(b)-1] = 'a'
			return b
		}(), "not sorted and unique"},
		{"prune without inline", func() []byte {
			b, _ := Marshal(Record{Op: OpPrune, Share: 1, File: stA, Flags: FlagInline, Data: []byte{}})
			b[2] = 0
			return b[:len(b)-4]
		}(), "without the inline flag"},
	}
	for _, c := range cases {
		_, err := Unmarshal(c.b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Unmarshal = %v, want error containing %q", c.name, err, c.want)
		}
	}
}

func TestPruneNames(t *testing.T) {
	var data []byte
	for _, n := range []string{"a", "b c", "\xff"} {
		data = AppendPruneName(data, n)
	}
	if string(data) != "a\x00b c\x00\xff" {
		t.Fatalf("data = %q", data)
	}
	if got := PruneNames(data); !reflect.DeepEqual(got, []string{"a", "b c", "\xff"}) {
		t.Fatalf("PruneNames = %q", got)
	}
	if got := PruneNames([]byte{}); got != nil {
		t.Fatalf("PruneNames(empty) = %q, want none", got)
	}
	if s := OpPrune.String(); s != "prune" {
		t.Fatalf("String = %q", s)
	}
}

func TestSetSeqEpoch(t *testing.T) {
	r := Record{Op: OpTruncate, Share: 1, File: stA, Size: 9}
	b, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	setSeqEpoch(b, 77, 5)
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	r.Seq, r.Epoch = 77, 5
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("got %+v, want %+v", got, r)
	}
}

// FuzzUnmarshal: no input panics, and every input that decodes re-encodes to
// exactly the same bytes (the encoding is canonical).
func FuzzUnmarshal(f *testing.F) {
	for _, r := range validRecords() {
		b, err := Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Unmarshal(b)
		if err != nil {
			return
		}
		again, err := Marshal(r)
		if err != nil {
			t.Fatalf("decoded record does not validate: %v (%+v)", err, r)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, again)
		}
	})
}
