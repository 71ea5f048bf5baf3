package main

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func TestPatternIsPositional(t *testing.T) {
	filler := newFiller()
	whole := appendPattern(nil, filler, 0, 3*patternBlock+100)
	if len(whole) != 3*patternBlock+100 {
		t.Fatalf("length %d", len(whole))
	}
	for blk := uint64(0); blk < 3; blk++ {
		if got := binary.BigEndian.Uint64(whole[blk*patternBlock:]); got != blk*patternBlock {
			t.Fatalf("block %d stamped %d", blk, got)
		}
	}
	// Any split, including ones inside a stamp, gives the same bytes.
	for _, cut := range []int{1, 5, 8, 9, patternBlock - 3, patternBlock + 4, 2*patternBlock + 7} {
		a := appendPattern(nil, filler, 0, cut)
		b := appendPattern(nil, filler, uint64(cut), len(whole)-cut)
		if !bytes.Equal(append(a, b...), whole) {
			t.Fatalf("split at %d differs", cut)
		}
	}
	// Blocks differ from each other (a misplaced block is caught).
	if bytes.Equal(whole[:patternBlock], whole[patternBlock:2*patternBlock]) {
		t.Fatal("blocks 0 and 1 identical")
	}
}

func TestCheckPattern(t *testing.T) {
	filler := newFiller()
	data := appendPattern(nil, filler, 8192, 5000)
	if _, err := checkPattern(data, filler, nil, 8192); err != nil {
		t.Fatal(err)
	}
	if _, err := checkPattern(data, filler, nil, 4096); err == nil {
		t.Fatal("data at the wrong offset passed")
	}
	data[4000] ^= 1
	_, err := checkPattern(data, filler, nil, 8192)
	if err == nil || !strings.Contains(err.Error(), "file offset 12192") {
		t.Fatalf("flipped byte: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"1GiB": 1 << 30, "1G": 1 << 30, "1gb": 1e9, "512MiB": 512 << 20, "4096": 4096,
		"10KB": 10000, "3 MiB": 3 << 20, "7B": 7,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "1.5GiB", "-1", "1XB", "99999999999999999999", "20000000000TiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}
