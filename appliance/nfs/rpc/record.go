package rpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Record marking (RFC 5531 §11): each fragment is preceded by a 4-byte
// header whose top bit marks the last fragment of a record and whose low
// 31 bits give the fragment length.
const (
	lastFragment   = 1 << 31
	fragmentLenMax = lastFragment - 1
)

// errRecordTooBig is wrapped by readRecord when a record exceeds the limit.
var errRecordTooBig = errors.New("record too big")

// readRecord reads one record from r into buf[:0], growing buf as needed,
// and returns it. hdr is scratch space for fragment headers. It returns
// io.EOF when r ends cleanly before a record starts, and an error naming
// the problem for a truncated record or one bigger than max bytes (the
// check is made on each fragment header, before reading its data).
func readRecord(r io.Reader, hdr *[4]byte, buf []byte, max int) ([]byte, error) {
	buf = buf[:0]
	for frag := 0; ; frag++ {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF && frag == 0 {
				return buf, io.EOF
			}
			return buf, fmt.Errorf("rpc: truncated header of fragment %d after %d record bytes: %w", frag, len(buf), noEOF(err))
		}
		h := binary.BigEndian.Uint32(hdr[:])
		n := int(h & fragmentLenMax)
		if len(buf)+n > max {
			return buf, fmt.Errorf("rpc: fragment %d of %d bytes makes the record %d bytes, over the %d-byte limit: %w",
				frag, n, len(buf)+n, max, errRecordTooBig)
		}
		l := len(buf)
		buf = slices.Grow(buf, n)[:l+n]
		if _, err := io.ReadFull(r, buf[l:]); err != nil {
			return buf[:l], fmt.Errorf("rpc: truncated fragment %d: want %d bytes: %w", frag, n, noEOF(err))
		}
		if h&lastFragment != 0 {
			return buf, nil
		}
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// putRecordMark writes the single-fragment record mark for a reply of n
// bytes into b[0:4].
func putRecordMark(b []byte, n int) {
	binary.BigEndian.PutUint32(b, lastFragment|uint32(n))
}
