package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func validMessages() []Message {
	recs := []Record{rec(1, 1), rec(2, 2), rec(3, 3)}
	for i := range recs {
		recs[i].Seq, recs[i].Epoch = uint64(10+i), 4
	}
	x := Record{Op: OpSetXattr, Share: 9, File: stA, Flags: FlagInline, Name: "user.k", Data: []byte("v"), Seq: 13, Epoch: 5}
	return []Message{
		&Hello{Role: RoleShipper, ClusterID: "c-1", NodeID: "n1", Epoch: 3, LogID: 0xabc, First: 5, Seq: 100},
		&Hello{Role: RoleShipper, ClusterID: "c", NodeID: "n", LogID: 1, First: 1, Seq: 0},
		&Hello{Role: RoleReceiver, ClusterID: "c", NodeID: "n2", Epoch: 3, LogID: 0xabc, Seq: 77, Window: 8},
		&Hello{Role: RoleReceiver, ClusterID: "c", NodeID: "n2", Window: 1},
		&Records{Recs: recs},
		&Records{Recs: append(append([]Record(nil), recs...), x)},
		&Ack{Seq: 1 << 40},
		&EpochMsg{Epoch: 9},
		&HandOffMsg{Note: []byte{1, 0, 0, 0, 0, 0, 0, 0, 7}},
		&HandOffMsg{Note: []byte{}},
		&FetchRequest{ID: 1, Share: 2, File: stB, What: FetchAttr},
		&FetchRequest{ID: 2, Share: 2, File: stB, What: FetchData | FetchXattrs, Off: 1 << 30, Len: MaxFetchData},
		&FetchRequest{ID: 3, Share: 2, File: stB, What: FetchData, Off: 65536, Len: 200000, BlockSize: 65536,
			Sums: []Sum{SumBlock([]byte("a")), SumBlock([]byte("b")), SumBlock(nil), {}}},
		&FetchRequest{ID: 4, Share: 2, File: stB, What: FetchData | FetchAttr, Len: 4096, BlockSize: 4096,
			Key: SumKey{15: 1}, Sums: []Sum{{1}}},
		&FetchRequest{ID: 5, Share: 2, File: stB, What: FetchData, Len: 1, BlockSize: 1 << 20, Key: SumKey{0: 0xff}},
		&FetchReply{ID: 1, Status: FetchNotFound},
		&FetchReply{ID: 2, Status: FetchFailed, Msg: "EIO"},
		&FetchReply{ID: 3, What: FetchAttr, Attr: Attr{Mode: ModeLink | 0o777, UID: 1, GID: 2, Size: 3, Atime: -1, Mtime: 5, Target: "../t"}},
		&FetchReply{ID: 4, What: FetchAttr | FetchXattrs | FetchData, Attr: Attr{Mode: ModeChar | 0o600, Rdev: 0x0501},
			Xattrs: []Xattr{{Name: "security.x", Value: []byte{}}, {Name: "user.a", Value: []byte{1, 2}}},
			Blocks: []Block{{Off: 0, Data: []byte("abc")}, {Off: 3, Data: []byte("d")}, {Off: 100, Data: []byte("z")}}},
		&FetchReply{ID: 5, What: FetchData, Blocks: []Block{{Off: 1 << 20, Data: bytes.Repeat([]byte{7}, MaxFetchData)}}},
		&FetchReply{ID: 6, What: FetchData | FetchAttr, Attr: Attr{Mode: ModeReg | 0o644, Size: 1 << 20}, Blocks: []Block{
			{Off: 0, Data: []byte("abc")}, {Off: 100, Data: bytes.Repeat([]byte{1}, directData)},
			{Off: 200000, Data: []byte("0123456789")}, {Off: 300000, Data: bytes.Repeat([]byte{2}, 2*directData+1)}}},
		&ErrorMsg{Code: CodeFenced, Msg: "epoch 3 below 5"},
		&ErrorMsg{Code: CodeShutdown},
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, m := range validMessages() {
		b, err := AppendFrame(nil, m)
		if err != nil {
			t.Fatalf("%s: %v", m.Type(), err)
		}
		got, err := ReadFrame(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: ReadFrame: %v", m.Type(), err)
		}
		// Sent in pieces (a fetch reply's large blocks not copied), after
		// what the buffer held, the same bytes go out.
		buf, pieces, err := appendFramePieces([]byte("held"), m)
		if err != nil {
			t.Fatalf("%s: in pieces: %v", m.Type(), err)
		}
		if !bytes.HasPrefix(buf, []byte("held")) || !bytes.Equal(append([]byte("held"), bytes.Join(pieces, nil)...), append([]byte("held"), b...)) {
			t.Fatalf("%s: %d pieces differ from the frame", m.Type(), len(pieces))
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v", m.Type(), got, m)
		}
		step := func(n int) int { return 1 }
		if len(b) > 4096 { // a sample of a big frame's prefixes
			step = func(n int) int { return 1 + n/64 }
		}
		for n := 0; n < len(b); n += step(n) {
			if _, err := ReadFrame(bytes.NewReader(b[:n])); err == nil {
				t.Fatalf("%s: prefix of %d/%d bytes read", m.Type(), n, len(b))
			} else if n == 0 && err != io.EOF {
				t.Fatalf("empty stream: %v, want io.EOF", err)
			} else if n > 0 && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%s: prefix of %d bytes: %v, want an unexpected EOF", m.Type(), n, err)
			}
		}
	}
	// Encoded records from the log travel as they are.
	l := openLog(t, t.TempDir()+"/j.db", Options{NoSync: true})
	fillLog(t, l, 1, 3)
	enc, err := l.ReadEncoded(1, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := AppendFrame(nil, EncodedRecords(enc))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadFrame(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if rs := m.(*Records).Recs; len(rs) != 3 || rs[2].Seq != 3 || rs[2].Size != 3 {
		t.Fatalf("records %+v", rs)
	}
}

func TestFrameRejects(t *testing.T) {
	okRec := rec(1, 1)
	okRec.Seq = 5
	gap := rec(1, 2)
	gap.Seq = 7
	encodeBad := []struct {
		m    Message
		want string
	}{
		{&Hello{Role: 3, ClusterID: "c", NodeID: "n"}, "unknown role"},
		{&Hello{Role: RoleShipper, ClusterID: "", NodeID: "n", LogID: 1, First: 1}, "empty cluster ID"},
		{&Hello{Role: RoleShipper, ClusterID: "a b", NodeID: "n", LogID: 1, First: 1}, "printable ASCII"},
		{&Hello{Role: RoleShipper, ClusterID: "c", NodeID: strings.Repeat("n", 129), LogID: 1, First: 1}, "exceeds 128"},
		{&Hello{Role: RoleShipper, ClusterID: "c", NodeID: "n", First: 1}, "without a log ID"},
		{&Hello{Role: RoleShipper, ClusterID: "c", NodeID: "n", LogID: 1, First: 3, Seq: 1}, "first 3, last 1"},
		{&Hello{Role: RoleShipper, ClusterID: "c", NodeID: "n", LogID: 1, First: 1, Window: 1}, "with a window"},
		{&Hello{Role: RoleReceiver, ClusterID: "c", NodeID: "n"}, "window 0"},
		{&Hello{Role: RoleReceiver, ClusterID: "c", NodeID: "n", Window: 1, Seq: 3}, "without a log ID"},
		{&Records{}, "0 records"},
		{&Records{Recs: []Record{okRec, gap}}, "seq 7 after 5"},
		{&Records{Recs: []Record{rec(1, 1)}}, "without a seq"},
		{&Ack{}, "ack of seq 0"},
		{&EpochMsg{}, "epoch 0"},
		{&HandOffMsg{Note: make([]byte, MaxNoteLen+1)}, "note of 1025 bytes exceeds 1024"},
		{&FetchRequest{Share: 1, File: stA, What: FetchAttr}, "request ID 0"},
		{&FetchRequest{ID: 1, Share: 1, File: stA}, "bad parts"},
		{&FetchRequest{ID: 1, Share: 1, File: stA, What: FetchAttr, Len: 5}, "without FetchData"},
		{&FetchRequest{ID: 1, Share: 1, File: stA, What: FetchData}, "length 0"},
		{&FetchRequest{ID: 1, Share: 1, File: stA, What: FetchData, Len: MaxFetchData + 1}, "length"},
		{&FetchRequest{ID: 1, Share: 1, File: stA, What: FetchData, Len: 10, BlockSize: 1000}, "power of two"},
		{&FetchRequest{ID: 1, Share: 1, File: stA, What: FetchData, Off: 10, Len: 10, BlockSize: 4096}, "not a multiple"},
		{&FetchRequest{ID: 1, Share: 1, File: stA, What: FetchData, Len: 4096, BlockSize: 4096, Sums: make([]Sum, 2)}, "2 sums"},
		{&FetchRequest{ID: 1, Share: 1, File: stA, What: FetchData, Len: 10, Sums: make([]Sum, 1)}, "without a block size"},
		{&FetchRequest{ID: 1, Share: 1, File: stA, What: FetchData, Len: 10, Key: SumKey{1}}, "key without a block size"},
		{&FetchRequest{ID: 1, Share: 1, File: stA, What: FetchAttr, Key: SumKey{1}}, "key without a block size"},
		{&FetchReply{ID: 1, Status: FetchFailed}, "without a message"},
		{&FetchReply{ID: 1, Status: FetchNotFound, What: FetchAttr}, "contents on a failed reply"},
		{&FetchReply{ID: 1, Status: 9}, "unknown status"},
		{&FetchReply{ID: 1, Attr: Attr{Size: 1}}, "not announced"},
		{&FetchReply{ID: 1, What: FetchAttr, Attr: Attr{Mode: ModeReg, Target: "x"}}, "not a symlink"},
		{&FetchReply{ID: 1, What: FetchAttr, Attr: Attr{Mode: ModeLink}}, "empty symlink target"},
		{&FetchReply{ID: 1, What: FetchXattrs, Xattrs: []Xattr{{Name: "b"}, {Name: "a"}}}, "not sorted"},
		{&FetchReply{ID: 1, What: FetchXattrs, Xattrs: []Xattr{{Name: "a"}, {Name: "a"}}}, "not sorted and unique"},
		{&FetchReply{ID: 1, What: FetchXattrs, Xattrs: []Xattr{{Name: "a", Value: make([]byte, MaxXattrValue+1)}}}, "exceeds"},
		{&FetchReply{ID: 1, What: FetchData, Blocks: []Block{{Off: 5, Data: []byte("ab")}, {Off: 6, Data: []byte("c")}}}, "overlaps"},
		{&FetchReply{ID: 1, What: FetchData, Blocks: []Block{{Off: 5}}}, "empty"},
		{&ErrorMsg{}, "unknown error code"},
	}
	for _, c := range encodeBad {
		if _, err := AppendFrame(nil, c.m); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("AppendFrame(%+v) = %v, want an error containing %q", c.m, err, c.want)
		}
	}

	ack, _ := AppendFrame(nil, &Ack{Seq: 1})
	mod := func(f func([]byte) []byte) []byte { return f(bytes.Clone(ack)) }
	readBad := []struct {
		name string
		b    []byte
		want string
	}{
		{"version", mod(func(b []byte) []byte { b[0] = 9; return b }), "unknown version 9"},
		{"type", mod(func(b []byte) []byte { b[1] = 0; return b }), "unknown type 0"},
		{"huge", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[2:], MaxFrame+1); return b }), "exceeds"},
		{"trailing", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[2:], 9); return append(b, 0) }), "1 trailing bytes"},
		{"short", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[2:], 7); return b[:len(b)-1] }), "truncated"},
		{"zero ack", mod(func(b []byte) []byte { clear(b[6:]); return b }), "ack of seq 0"},
		{"records count", []byte{1, byte(MsgRecords), 0, 0, 0, 4, 0, 1, 0, 1}, "65537 records"},
		{"zero key", func() []byte {
			b, _ := AppendFrame(nil, &FetchRequest{ID: 1, Share: 1, File: stA, What: FetchData, Len: 8192, BlockSize: 4096, Key: SumKey{1}})
			clear(b[len(b)-4-len(SumKey{}) : len(b)-4])
			return b
		}(), "zero checksum key"},
		{"key cut short", func() []byte {
			b, _ := AppendFrame(nil, &FetchRequest{ID: 1, Share: 1, File: stA, What: FetchData, Len: 8192, BlockSize: 4096, Key: SumKey{1}})
			binary.BigEndian.PutUint32(b[2:], uint32(len(b)-frameHeaderLen-4-8))
			return b[:len(b)-4-8]
		}(), "truncated at checksum key"},
		{"sums beyond payload", func() []byte {
			b, _ := AppendFrame(nil, &FetchRequest{ID: 1, Share: 1, File: stA, What: FetchData, Len: 8192, BlockSize: 4096, Sums: []Sum{{}}})
			binary.BigEndian.PutUint32(b[len(b)-SumLen-4:], 1<<30)
			return b
		}(), "only 16 bytes left"},
	}
	for _, c := range readBad {
		_, err := ReadFrame(bytes.NewReader(c.b))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: ReadFrame = %v, want an error containing %q", c.name, err, c.want)
		}
		if err != nil && !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %v is not an ErrProtocol", c.name, err)
		}
	}
}

// FuzzReadFrame: no input panics or allocates beyond the frame limit, and
// every frame that decodes re-encodes to exactly the bytes read.
func FuzzReadFrame(f *testing.F) {
	for _, m := range validMessages() {
		b, err := AppendFrame(nil, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{1, 2, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		m, err := ReadFrame(r)
		if err != nil {
			return
		}
		used := b[:len(b)-r.Len()]
		again, err := AppendFrame(nil, m)
		if err != nil {
			t.Fatalf("decoded %s does not encode: %v", m.Type(), err)
		}
		if !bytes.Equal(again, used) {
			t.Fatalf("%s not canonical:\n in  %x\n out %x", m.Type(), used, again)
		}
		if _, pieces, err := appendFramePieces(nil, m); err != nil || !bytes.Equal(bytes.Join(pieces, nil), again) {
			t.Fatalf("%s in pieces differs from its frame (%v)", m.Type(), err)
		}
	})
}

func TestDeltaBlocks(t *testing.T) {
	for _, key := range []SumKey{{}, {1, 2, 3}} {
		testDeltaBlocks(t, key)
	}
	// Keyed checksums are the key's: another key, or none, gives others.
	block := []byte("some block")
	var sums []Sum
	for _, key := range []SumKey{{}, {1}, {2}} {
		s, err := NewSummer(key)
		if err != nil {
			t.Fatal(err)
		}
		sum := s.Sum(block)
		if again := s.Sum(block); again != sum {
			t.Fatalf("key %x: %x, then %x", key, sum, again)
		}
		for _, o := range sums {
			if o == sum {
				t.Fatalf("key %x: checksum %x seen under another key", key, sum)
			}
		}
		sums = append(sums, sum)
	}
	if sums[0] != SumBlock(block) {
		t.Fatal("the zero key is not SHA-256")
	}
}

func testDeltaBlocks(t *testing.T, key SumKey) {
	t.Helper()
	const bs = 4096
	master := bytes.Repeat([]byte("m"), 10*bs+100)
	standby := bytes.Clone(master[:8*bs]) // shorter, with two changed blocks
	standby[2*bs+5] = 'x'
	standby[3*bs] = 'y'
	standby[6*bs+1] = 'z'
	summer, err := NewSummer(key)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := summer.BlockSums(bytes.NewReader(standby), 0, uint64(len(master)), bs, nil)
	if err != nil || len(sums) != 8 {
		t.Fatalf("BlockSums = %d sums, %v", len(sums), err)
	}
	q := &FetchRequest{ID: 1, Share: 1, File: stA, What: FetchData, Len: uint64(len(master)), BlockSize: bs, Sums: sums, Key: key}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	blocks, err := DeltaBlocks(bytes.NewReader(master), uint64(len(master)), q)
	if err != nil {
		t.Fatal(err)
	}
	// Blocks 2 and 3 merge, block 6 alone, then everything past the
	// standby's copy (blocks 8, 9 and the tail) as one.
	want := []struct{ off, n int }{{2 * bs, 2 * bs}, {6 * bs, bs}, {8 * bs, 2*bs + 100}}
	if len(blocks) != len(want) {
		t.Fatalf("%d blocks, want %d: %v", len(blocks), len(want), blocks)
	}
	for i, w := range want {
		if blocks[i].Off != uint64(w.off) || len(blocks[i].Data) != w.n {
			t.Errorf("block %d at %d len %d, want at %d len %d", i, blocks[i].Off, len(blocks[i].Data), w.off, w.n)
		}
	}
	// Applying the blocks makes the standby's copy equal.
	fixed := make([]byte, len(master))
	copy(fixed, standby)
	for _, b := range blocks {
		copy(fixed[b.Off:], b.Data)
	}
	if !bytes.Equal(fixed, master) {
		t.Fatal("delta did not reproduce the master's file")
	}
	p := &FetchReply{ID: 1, What: FetchData, Blocks: blocks}
	if err := p.Validate(); err != nil {
		t.Fatalf("delta reply invalid: %v", err)
	}
	// No block size: the whole range; past the end: nothing.
	q2 := &FetchRequest{ID: 1, Share: 1, File: stA, What: FetchData, Off: 10, Len: 20}
	if b, _ := DeltaBlocks(bytes.NewReader(master), uint64(len(master)), q2); len(b) != 1 || b[0].Off != 10 || len(b[0].Data) != 20 {
		t.Fatalf("plain fetch: %v", b)
	}
	q2.Off = uint64(len(master))
	if b, _ := DeltaBlocks(bytes.NewReader(master), uint64(len(master)), q2); len(b) != 0 {
		t.Fatalf("fetch past the end: %v", b)
	}
}

// TestDeltaSavings measures the delta scheme: a 64 MiB file with 1% of its
// 64 KiB blocks rewritten costs the master one read of the range and the
// wire only the changed blocks plus the sums.
func TestDeltaSavings(t *testing.T) {
	const size, bs = 64 << 20, DefaultBlockSize
	master := make([]byte, size)
	for i := range master {
		master[i] = byte(i * 7 / 13)
	}
	standby := bytes.Clone(master)
	changed := 0
	for blk := 0; blk < size/bs; blk += 100 {
		master[blk*bs+17]++
		changed++
	}
	sent, sumBytes := 0, 0
	buf := make([]byte, bs)
	for off := uint64(0); off < size; off += MaxFetchData {
		sums, err := BlockSums(bytes.NewReader(standby), off, MaxFetchData, bs, buf)
		if err != nil {
			t.Fatal(err)
		}
		q := &FetchRequest{ID: 1, Share: 1, File: stA, What: FetchData, Off: off, Len: MaxFetchData, BlockSize: bs, Sums: sums}
		blocks, err := DeltaBlocks(bytes.NewReader(master), size, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			copy(standby[b.Off:], b.Data)
			sent += len(b.Data)
		}
		sumBytes += len(sums) * SumLen
	}
	if !bytes.Equal(standby, master) {
		t.Fatal("delta sync left differences")
	}
	if sent != changed*bs {
		t.Fatalf("sent %d bytes for %d changed blocks of %d", sent, changed, bs)
	}
	t.Logf("64 MiB file, %d of %d blocks changed: %d KiB of blocks + %d KiB of sums on the wire (%.2f%% of a full copy)",
		changed, size/bs, sent>>10, sumBytes>>10, 100*float64(sent+sumBytes)/size)
}

func BenchmarkBlockSumsKeyed(b *testing.B) {
	data := make([]byte, MaxFetchData)
	r := bytes.NewReader(data)
	buf := make([]byte, DefaultBlockSize)
	s, err := NewSummer(SumKey{1})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(MaxFetchData)
	for b.Loop() {
		if _, err := s.BlockSums(r, 0, MaxFetchData, DefaultBlockSize, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBlockSums(b *testing.B) {
	data := make([]byte, MaxFetchData)
	r := bytes.NewReader(data)
	buf := make([]byte, DefaultBlockSize)
	b.SetBytes(MaxFetchData)
	for b.Loop() {
		if _, err := BlockSums(r, 0, MaxFetchData, DefaultBlockSize, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReadFramePooled: a large fetch reply read with a payload pool lies
// in a pooled buffer that its release gives back, once however often it
// is called; the next reply reads intact; a small reply is not pooled.
func TestReadFramePooled(t *testing.T) {
	data := bytes.Repeat([]byte("pooled "), 1<<17) // 896 KiB
	big := &FetchReply{ID: 7, What: FetchData | FetchXattrs, Xattrs: []Xattr{{Name: "user.k", Value: []byte("v")}}, Blocks: []Block{{Off: 4096, Data: data}}}
	var stream []byte
	for range 2 {
		var err error
		if stream, err = AppendFrame(stream, big); err != nil {
			t.Fatal(err)
		}
	}
	small := &FetchReply{ID: 8, What: FetchData, Blocks: []Block{{Data: []byte("small")}}}
	stream, _ = AppendFrame(stream, small)
	pool := &payloadPool{poison: true}
	r := bytes.NewReader(stream)
	m, err := readFrame(r, pool)
	if err != nil {
		t.Fatal(err)
	}
	first := m.(*FetchReply)
	if first.release == nil || !bytes.Equal(first.Blocks[0].Data, data) || string(first.Xattrs[0].Value) != "v" {
		t.Fatalf("first reply: release %v, block intact %v", first.release != nil, bytes.Equal(first.Blocks[0].Data, data))
	}
	buf := first.Blocks[0].Data
	first.release()
	if buf[0] != 0xa5 {
		t.Fatal("the released buffer was not given back (not poisoned)")
	}
	buf[0] = 1 // as if handed out again
	first.release()
	if buf[0] != 1 {
		t.Fatal("a second release gave the buffer back again")
	}
	m, err = readFrame(r, pool)
	if err != nil {
		t.Fatal(err)
	}
	if second := m.(*FetchReply); !bytes.Equal(second.Blocks[0].Data, data) {
		t.Fatal("the second reply is not intact")
	}
	m, err = readFrame(r, pool)
	if err != nil {
		t.Fatal(err)
	}
	if m.(*FetchReply).release != nil {
		t.Error("a small reply is pooled")
	}
}
