package xdr

import (
	"encoding/binary"
	"slices"
)

// Writer appends XDR to a byte slice. Writes never fail; the buffer grows
// as needed.
type Writer struct {
	buf []byte
}

// NewWriter returns a Writer that appends to buf[:0], reusing its storage.
func NewWriter(buf []byte) *Writer {
	return &Writer{buf: buf[:0]}
}

// Reset makes w append to buf[:0].
func (w *Writer) Reset(buf []byte) { w.buf = buf[:0] }

// Len returns the number of bytes written.
func (w *Writer) Len() int { return len(w.buf) }

// Bytes returns the bytes written. It aliases the Writer's buffer and is
// valid until the next write.
func (w *Writer) Bytes() []byte { return w.buf }

// Uint32 appends an unsigned int.
func (w *Writer) Uint32(v uint32) { w.buf = binary.BigEndian.AppendUint32(w.buf, v) }

// Int32 appends a signed int.
func (w *Writer) Int32(v int32) { w.Uint32(uint32(v)) }

// Uint64 appends an unsigned hyper.
func (w *Writer) Uint64(v uint64) { w.buf = binary.BigEndian.AppendUint64(w.buf, v) }

// Int64 appends a signed hyper.
func (w *Writer) Int64(v int64) { w.Uint64(uint64(v)) }

// Bool appends a bool (1 or 0).
func (w *Writer) Bool(v bool) {
	if v {
		w.Uint32(1)
	} else {
		w.Uint32(0)
	}
}

var zeros [4]byte

// Opaque appends variable-length opaque data: length, data and padding.
func (w *Writer) Opaque(b []byte) {
	w.Uint32(uint32(len(b)))
	w.FixedOpaque(b)
}

// FixedOpaque appends fixed-length opaque data and its padding.
func (w *Writer) FixedOpaque(b []byte) {
	w.buf = append(w.buf, b...)
	w.buf = append(w.buf, zeros[:pad(len(b))]...)
}

// String appends a string: length, bytes and padding.
func (w *Writer) String(s string) {
	w.Uint32(uint32(len(s)))
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, zeros[:pad(len(s))]...)
}

// PutUint32At overwrites the 4 bytes at off (which must already be
// written) with v. It is for lengths and counts known only after the data.
func (w *Writer) PutUint32At(off int, v uint32) {
	binary.BigEndian.PutUint32(w.buf[off:off+4], v)
}

// Grow appends n bytes and returns them for the caller to fill, e.g. by
// reading file data straight into the reply. Their content is unspecified
// (they may hold bytes of an earlier use of the buffer): fill them all, or
// Truncate the unfilled part away. Grow adds no padding; call Align after.
func (w *Writer) Grow(n int) []byte {
	l := len(w.buf)
	w.buf = slices.Grow(w.buf, n)[:l+n]
	return w.buf[l : l+n : l+n]
}

// Align appends zero bytes up to the next multiple of 4, as XDR padding
// after data written with Grow.
func (w *Writer) Align() {
	w.buf = append(w.buf, zeros[:pad(len(w.buf))]...)
}

// Truncate shrinks the written data to n bytes. It panics if n is out of
// range, like a slice expression.
func (w *Writer) Truncate(n int) {
	if n < 0 || n > len(w.buf) {
		panic("xdr: Truncate length out of range")
	}
	w.buf = w.buf[:n]
}
