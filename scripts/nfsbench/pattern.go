package main

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// patternBlock is the period of the data pattern. Each block starts with
// its absolute file offset (8 bytes, big endian) so that misplaced or stale
// blocks are caught; the rest is fixed pseudo-random filler.
const patternBlock = 4096

// newFiller returns the filler block (xorshift, fixed seed).
func newFiller() []byte {
	b := make([]byte, patternBlock)
	x := uint64(0x9e3779b97f4a7c15)
	for i := 0; i < len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(b[i:], x)
	}
	return b
}

// appendPattern appends the n pattern bytes that belong at file offset off.
func appendPattern(dst, filler []byte, off uint64, n int) []byte {
	end := off + uint64(n)
	for off < end {
		blk := off &^ (patternBlock - 1)
		var stamp [8]byte
		binary.BigEndian.PutUint64(stamp[:], blk)
		i, stop := off-blk, min(uint64(patternBlock), end-blk)
		for ; i < stop && i < 8; i++ {
			dst = append(dst, stamp[i])
		}
		if i < stop {
			dst = append(dst, filler[i:stop]...)
		}
		off = blk + stop
	}
	return dst
}

// checkPattern compares data read at offset off with the pattern, using
// scratch (grown as needed) and returns the (possibly grown) scratch.
func checkPattern(data, filler, scratch []byte, off uint64) ([]byte, error) {
	scratch = appendPattern(scratch[:0], filler, off, len(data))
	if string(scratch) == string(data) {
		return scratch, nil
	}
	for i := range data {
		if data[i] != scratch[i] {
			return scratch, fmt.Errorf("data mismatch at file offset %d: read %#02x, wrote %#02x", off+uint64(i), data[i], scratch[i])
		}
	}
	return scratch, nil
}

var sizeUnits = map[string]uint64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
}

// parseSize parses a byte count: a number with an optional unit, binary
// (K, KiB, M, MiB, G, GiB, T, TiB) or decimal (KB, MB, GB, TB).
func parseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(t)
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	n, err := strconv.ParseUint(t[:i], 10, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (KiB, MiB, GiB, KB, MB, GB)", s)
	}
	if n > ^uint64(0)/mult {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n * mult, nil
}
