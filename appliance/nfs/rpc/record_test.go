package rpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func frag(last bool, data string) []byte {
	h := uint32(len(data))
	if last {
		h |= lastFragment
	}
	return append(binary.BigEndian.AppendUint32(nil, h), data...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestReadRecord(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		max     int
		want    []string // records in order
		wantErr string   // error after the records ("EOF" for a clean end)
	}{
		{"single", frag(true, "abcd"), 100, []string{"abcd"}, "EOF"},
		{"two records", cat(frag(true, "ab"), frag(true, "cdef")), 100, []string{"ab", "cdef"}, "EOF"},
		{"multi fragment", cat(frag(false, "ab"), frag(false, "c"), frag(true, "defg")), 100, []string{"abcdefg"}, "EOF"},
		{"empty fragments", cat(frag(false, ""), frag(false, "xy"), frag(true, "")), 100, []string{"xy"}, "EOF"},
		{"empty record", frag(true, ""), 100, []string{""}, "EOF"},
		{"exactly max", frag(true, "12345678"), 8, []string{"12345678"}, "EOF"},
		{"fragment over max", frag(true, "123456789"), 8, nil, "fragment 0 of 9 bytes makes the record 9 bytes, over the 8-byte limit"},
		{"fragments add up over max", cat(frag(false, "12345"), frag(true, "6789")), 8, nil, "fragment 1 of 4 bytes makes the record 9 bytes"},
		{"huge fragment header", []byte{0x7f, 0xff, 0xff, 0xff}, 1 << 20, nil, "fragment 0 of 2147483647 bytes"},
		{"huge last fragment header", []byte{0xff, 0xff, 0xff, 0xff, 1, 2}, 1 << 20, nil, "over the 1048576-byte limit"},
		{"truncated header", cat(frag(true, "ok"), []byte{0x80, 0}), 100, []string{"ok"}, "truncated header of fragment 0 after 0 record bytes: unexpected EOF"},
		{"truncated data", frag(true, "abcd")[:6], 100, nil, "truncated fragment 0: want 4 bytes: unexpected EOF"},
		{"missing last fragment", frag(false, "abcd"), 100, nil, "truncated header of fragment 1 after 4 record bytes: unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bytes.NewReader(tt.in)
			var hdr [4]byte
			var buf []byte
			var got []string
			var err error
			for {
				buf, err = readRecord(r, &hdr, buf, tt.max)
				if err != nil {
					break
				}
				got = append(got, string(buf))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Errorf("records %q, want %q", got, tt.want)
			}
			if tt.wantErr == "EOF" {
				if err != io.EOF {
					t.Errorf("err %v, want io.EOF", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err %v, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(tt.wantErr, "limit") {
				if !errors.Is(err, errRecordTooBig) {
					t.Errorf("err %v does not wrap errRecordTooBig", err)
				}
				if cap(buf) > tt.max+64 {
					t.Errorf("allocated %d bytes for a rejected record", cap(buf))
				}
			}
		})
	}
}

func TestReadRecordReusesBuffer(t *testing.T) {
	in := cat(frag(false, "abcd"), frag(true, "efgh"))
	buf := make([]byte, 0, 64)
	var hdr [4]byte
	allocs := testing.AllocsPerRun(50, func() {
		var err error
		buf, err = readRecord(bytes.NewReader(in), &hdr, buf, 100)
		if err != nil || string(buf) != "abcdefgh" {
			t.Fatalf("readRecord = %q, %v", buf, err)
		}
	})
	if allocs > 1 { // the bytes.Reader
		t.Fatalf("%v allocations per record", allocs)
	}
}
