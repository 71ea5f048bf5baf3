package main

import (
	"encoding/binary"
	"fmt"
)

// encoder appends XDR (RFC 4506) items to a byte slice.
type encoder struct {
	b []byte
}

func (e *encoder) uint32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }

func (e *encoder) uint64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }

func (e *encoder) bool(v bool) {
	if v {
		e.uint32(1)
	} else {
		e.uint32(0)
	}
}

// fixed appends fixed-length opaque data, padded to a multiple of 4.
func (e *encoder) fixed(p []byte) {
	e.b = append(e.b, p...)
	e.pad(len(p))
}

// opaque appends variable-length opaque data: length, bytes, padding.
func (e *encoder) opaque(p []byte) {
	e.uint32(uint32(len(p)))
	e.fixed(p)
}

func (e *encoder) string(s string) {
	e.uint32(uint32(len(s)))
	e.b = append(e.b, s...)
	e.pad(len(s))
}

func (e *encoder) pad(n int) {
	for i := n; i%4 != 0; i++ {
		e.b = append(e.b, 0)
	}
}

// decoder reads XDR items from a byte slice. The first error sticks: later
// reads return zero values, so callers check err once at the end of a
// structure.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(what string, n int) {
	if d.err == nil {
		d.err = fmt.Errorf("xdr: short buffer reading %s: need %d bytes at offset %d, have %d", what, n, d.off, len(d.b)-d.off)
	}
}

func (d *decoder) take(what string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b)-d.off < n {
		d.fail(what, n)
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *decoder) uint32() uint32 {
	p := d.take("uint32", 4)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

func (d *decoder) uint64() uint64 {
	p := d.take("uint64", 8)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

func (d *decoder) bool() bool {
	v := d.uint32()
	if v > 1 && d.err == nil {
		d.err = fmt.Errorf("xdr: bool at offset %d is %d, want 0 or 1", d.off-4, v)
	}
	return v == 1
}

// fixed reads n bytes of fixed-length opaque data plus padding. The result
// aliases the decoder's buffer.
func (d *decoder) fixed(n int) []byte {
	p := d.take("opaque data", n)
	if p == nil {
		return nil
	}
	if r := n % 4; r != 0 {
		d.take("opaque padding", 4-r)
	}
	if d.err != nil {
		return nil
	}
	return p
}

// opaque reads variable-length opaque data of at most max bytes.
func (d *decoder) opaque(max int) []byte {
	n := d.uint32()
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(max) {
		d.err = fmt.Errorf("xdr: opaque length %d at offset %d exceeds limit %d", n, d.off-4, max)
		return nil
	}
	return d.fixed(int(n))
}

func (d *decoder) skip(what string, n int) { d.take(what, n) }

// rest returns the undecoded remainder.
func (d *decoder) rest() []byte {
	if d.err != nil {
		return nil
	}
	return d.b[d.off:]
}
