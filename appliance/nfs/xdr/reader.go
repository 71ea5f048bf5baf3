package xdr

import (
	"encoding/binary"
	"fmt"
)

// Reader decodes XDR from a byte slice. The zero value reads an empty
// buffer. After the first error every method returns a zero value and Err
// returns that error.
type Reader struct {
	buf []byte
	off int
	err error
}

// NewReader returns a Reader over b. The Reader aliases b.
func NewReader(b []byte) *Reader {
	return &Reader{buf: b}
}

// Reset makes r read b from the start and clears any error.
func (r *Reader) Reset(b []byte) {
	r.buf = b
	r.off = 0
	r.err = nil
}

// Err returns the first decoding error, or nil.
func (r *Reader) Err() error { return r.err }

// Remaining returns the number of unread bytes (0 after an error).
func (r *Reader) Remaining() int {
	if r.err != nil {
		return 0
	}
	return len(r.buf) - r.off
}

// Offset returns the number of bytes consumed so far.
func (r *Reader) Offset() int { return r.off }

// Rest returns the unread bytes without consuming them (nil after an
// error). The slice aliases the buffer.
func (r *Reader) Rest() []byte {
	if r.err != nil {
		return nil
	}
	return r.buf[r.off:]
}

// Fail records err as the Reader's error unless one is already set. It lets
// a decoder built on Reader report semantic errors (a bad enum value, say)
// through the same sticky error.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *Reader) short(what string, need int) {
	r.Fail(fmt.Errorf("xdr: short buffer reading %s at offset %d: need %d bytes, have %d",
		what, r.off, need, len(r.buf)-r.off))
}

// take consumes n bytes, or records a short-buffer error naming what.
func (r *Reader) take(what string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.buf)-r.off < n {
		r.short(what, n)
		return nil
	}
	b := r.buf[r.off : r.off+n : r.off+n]
	r.off += n
	return b
}

// Uint32 reads an unsigned int.
func (r *Reader) Uint32() uint32 {
	b := r.take("uint32", 4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// Int32 reads a signed int.
func (r *Reader) Int32() int32 {
	b := r.take("int32", 4)
	if b == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(b))
}

// Uint64 reads an unsigned hyper.
func (r *Reader) Uint64() uint64 {
	b := r.take("uint64", 8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// Int64 reads a signed hyper.
func (r *Reader) Int64() int64 {
	b := r.take("int64", 8)
	if b == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

// Bool reads a bool; any value other than 0 or 1 is an error.
func (r *Reader) Bool() bool {
	b := r.take("bool", 4)
	if b == nil {
		return false
	}
	switch v := binary.BigEndian.Uint32(b); v {
	case 0:
		return false
	case 1:
		return true
	default:
		r.err = fmt.Errorf("xdr: bool at offset %d has value %d, want 0 or 1", r.off-4, v)
		return false
	}
}

// pad returns the number of padding bytes after n data bytes.
func pad(n int) int { return (4 - n&3) & 3 }

// Opaque reads variable-length opaque data of at most max bytes. The
// result aliases the buffer; it is non-nil (possibly empty) on success and
// nil after an error. Padding must be present; its content is not checked.
func (r *Reader) Opaque(max int) []byte {
	return r.opaque("opaque", max)
}

func (r *Reader) opaque(what string, max int) []byte {
	if r.err != nil {
		return nil
	}
	start := r.off
	n := r.Uint32()
	if r.err != nil {
		r.err = fmt.Errorf("xdr: short buffer reading %s length at offset %d", what, start)
		return nil
	}
	if uint64(n) > uint64(max) {
		r.err = fmt.Errorf("xdr: %s length %d exceeds %d", what, n, max)
		return nil
	}
	if uint64(n)+uint64(pad(int(n))) > uint64(len(r.buf)-r.off) {
		r.err = fmt.Errorf("xdr: %s length %d at offset %d exceeds the %d remaining bytes",
			what, n, start, len(r.buf)-r.off)
		return nil
	}
	b := r.buf[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n) + pad(int(n))
	return b
}

// FixedOpaque reads n bytes of fixed-length opaque data plus padding. The
// result aliases the buffer.
func (r *Reader) FixedOpaque(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 {
		r.err = fmt.Errorf("xdr: fixed opaque length %d is negative", n)
		return nil
	}
	if n+pad(n) > len(r.buf)-r.off {
		r.short("fixed opaque", n+pad(n))
		return nil
	}
	b := r.buf[r.off : r.off+n : r.off+n]
	r.off += n + pad(n)
	return b
}

// String reads a string of at most max bytes. The result is a copy. XDR
// strings are byte strings; no UTF-8 validation is done.
func (r *Reader) String(max int) string {
	return string(r.opaque("string", max))
}

// StringBytes is String without the copy: the result aliases the buffer.
func (r *Reader) StringBytes(max int) []byte {
	return r.opaque("string", max)
}
