package xdr

import (
	"bytes"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	w := NewWriter(nil)
	w.Uint32(0xdeadbeef)
	w.Int32(-2)
	w.Uint64(0x0102030405060708)
	w.Int64(-3)
	w.Bool(true)
	w.Bool(false)
	w.Opaque([]byte{1, 2, 3})
	w.FixedOpaque([]byte{9, 8, 7, 6, 5})
	w.String("hello")
	w.Opaque(nil)
	if w.Len()%4 != 0 {
		t.Fatalf("Len %d not a multiple of 4", w.Len())
	}

	r := NewReader(w.Bytes())
	if v := r.Uint32(); v != 0xdeadbeef {
		t.Errorf("Uint32 = %#x", v)
	}
	if v := r.Int32(); v != -2 {
		t.Errorf("Int32 = %d", v)
	}
	if v := r.Uint64(); v != 0x0102030405060708 {
		t.Errorf("Uint64 = %#x", v)
	}
	if v := r.Int64(); v != -3 {
		t.Errorf("Int64 = %d", v)
	}
	if !r.Bool() || r.Bool() {
		t.Errorf("Bool round trip wrong")
	}
	if v := r.Opaque(3); !bytes.Equal(v, []byte{1, 2, 3}) {
		t.Errorf("Opaque = %v", v)
	}
	if v := r.FixedOpaque(5); !bytes.Equal(v, []byte{9, 8, 7, 6, 5}) {
		t.Errorf("FixedOpaque = %v", v)
	}
	if v := r.String(5); v != "hello" {
		t.Errorf("String = %q", v)
	}
	if v := r.Opaque(0); v == nil || len(v) != 0 {
		t.Errorf("empty Opaque = %#v, want non-nil empty", v)
	}
	if r.Remaining() != 0 || r.Err() != nil {
		t.Errorf("Remaining %d Err %v", r.Remaining(), r.Err())
	}
}

func TestEncoding(t *testing.T) {
	w := NewWriter(make([]byte, 10))
	if w.Len() != 0 {
		t.Fatalf("NewWriter did not reset length: %d", w.Len())
	}
	w.String("abcde")
	w.Bool(true)
	want := []byte{0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e', 0, 0, 0, 0, 0, 0, 1}
	if !bytes.Equal(w.Bytes(), want) {
		t.Fatalf("got % x\nwant % x", w.Bytes(), want)
	}
}

func TestOpaqueAliases(t *testing.T) {
	buf := []byte{0, 0, 0, 2, 'x', 'y', 0, 0}
	r := NewReader(buf)
	b := r.Opaque(10)
	b[0] = 'z'
	if buf[4] != 'z' {
		t.Fatal("Opaque copied instead of aliasing")
	}
	if cap(b) != 2 {
		t.Fatalf("cap = %d; appending to the result could overwrite the buffer", cap(b))
	}
}

func TestReaderErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		read func(r *Reader)
		want string
	}{
		{"short uint32", []byte{0, 0, 1}, func(r *Reader) { r.Uint32() }, "short buffer reading uint32 at offset 0: need 4 bytes, have 3"},
		{"short uint64", []byte{0, 0, 0, 0, 1}, func(r *Reader) { r.Uint64() }, "short buffer reading uint64"},
		{"bad bool", []byte{0, 0, 0, 2}, func(r *Reader) { r.Bool() }, "bool at offset 0 has value 2"},
		{"opaque too long", []byte{0, 1, 0x11, 0x70}, func(r *Reader) { r.Opaque(65536) }, "opaque length 70000 exceeds 65536"},
		{"string too long", []byte{0, 0, 0, 9}, func(r *Reader) { r.String(8) }, "string length 9 exceeds 8"},
		{"opaque short data", []byte{0, 0, 0, 5, 1, 2, 3, 4}, func(r *Reader) { r.Opaque(10) }, "opaque length 5 at offset 0 exceeds the 4 remaining"},
		{"opaque missing padding", []byte{0, 0, 0, 5, 1, 2, 3, 4, 5}, func(r *Reader) { r.Opaque(10) }, "exceeds the 5 remaining"},
		{"opaque huge length", []byte{0xff, 0xff, 0xff, 0xff}, func(r *Reader) { r.Opaque(1 << 40) }, "opaque length 4294967295 at offset 0 exceeds"},
		{"opaque no length", []byte{0, 0}, func(r *Reader) { r.Opaque(10) }, "short buffer reading opaque length at offset 0"},
		{"fixed short", []byte{1, 2, 3}, func(r *Reader) { r.FixedOpaque(3) }, "short buffer reading fixed opaque"},
		{"fixed negative", nil, func(r *Reader) { r.FixedOpaque(-1) }, "negative"},
		{"sticky", []byte{0, 0, 0, 2, 0, 0, 0, 1}, func(r *Reader) { r.Bool(); r.Uint32() }, "bool at offset 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.in)
			tt.read(r)
			if r.Err() == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(r.Err().Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", r.Err(), tt.want)
			}
			if r.Remaining() != 0 || r.Uint32() != 0 || r.Opaque(100) != nil || r.String(10) != "" {
				t.Fatal("reads after an error must return zero values")
			}
		})
	}
}

func TestReset(t *testing.T) {
	r := NewReader([]byte{1})
	r.Uint32()
	if r.Err() == nil {
		t.Fatal("want error")
	}
	r.Reset([]byte{0, 0, 0, 7})
	if v := r.Uint32(); v != 7 || r.Err() != nil {
		t.Fatalf("after Reset: %d, %v", v, r.Err())
	}
	var zero Reader
	zero.Uint32()
	if zero.Err() == nil {
		t.Fatal("zero Reader must fail on read")
	}
}

func TestFail(t *testing.T) {
	r := NewReader([]byte{0, 0, 0, 1})
	r.Fail(errTest("first"))
	r.Fail(errTest("second"))
	if r.Err().Error() != "first" {
		t.Fatalf("Err = %v", r.Err())
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }

func TestGrowTruncateAlign(t *testing.T) {
	w := NewWriter(make([]byte, 0, 8))
	w.Uint32(0xffffffff) // placeholder for a length
	d := w.Grow(100)
	if len(d) != 100 || w.Len() != 104 {
		t.Fatalf("Grow: len %d, Len %d", len(d), w.Len())
	}
	n := copy(d, "abc")
	w.Truncate(4 + n)
	w.PutUint32At(0, uint32(n))
	w.Align()
	want := []byte{0, 0, 0, 3, 'a', 'b', 'c', 0}
	if !bytes.Equal(w.Bytes(), want) {
		t.Fatalf("got % x want % x", w.Bytes(), want)
	}
	w.Align()
	if w.Len() != 8 {
		t.Fatalf("Align on aligned data appended bytes: %d", w.Len())
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Truncate beyond Len did not panic")
		}
	}()
	w.Truncate(9)
}

func TestWriterReuseNoAlloc(t *testing.T) {
	buf := make([]byte, 0, 1024)
	w := NewWriter(buf)
	r := NewReader(nil)
	data := []byte("some file data")
	allocs := testing.AllocsPerRun(100, func() {
		w.Reset(buf)
		w.Uint32(1)
		w.Uint64(2)
		w.Opaque(data)
		w.Align()
		r.Reset(w.Bytes())
		r.Uint32()
		r.Uint64()
		r.Opaque(100)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per encode/decode, want 0", allocs)
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 3, 'a', 'b', 'c', 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 2, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		// Decode a mixed structure; whatever the input, no panic, and
		// consumption is bounded by the input.
		for i := 0; i < 8 && r.Err() == nil; i++ {
			switch r.Uint32() % 5 {
			case 0:
				r.Bool()
			case 1:
				o := r.Opaque(64)
				if r.Err() == nil && len(o) > 64 {
					t.Fatalf("opaque of %d bytes exceeds max", len(o))
				}
			case 2:
				r.String(16)
			case 3:
				r.Uint64()
			case 4:
				r.FixedOpaque(3)
			}
			if r.Offset() > len(b) || r.Offset()%4 != 0 && r.Err() == nil {
				t.Fatalf("offset %d beyond input %d or misaligned", r.Offset(), len(b))
			}
		}
		if r.Err() == nil && r.Remaining() != len(b)-r.Offset() {
			t.Fatalf("Remaining %d, want %d", r.Remaining(), len(b)-r.Offset())
		}
	})
}
