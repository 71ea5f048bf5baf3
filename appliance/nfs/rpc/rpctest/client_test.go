package rpctest

import (
	"bytes"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	msg := EncodeCall(5, 1, 2, 3, Sys("m", 1, 2), []byte{0, 0, 0, 1})
	for _, size := range []int{0, 1, 4, 5, len(msg), 1000} {
		framed := Frame(msg, size)
		got, err := ReadRecord(bytes.NewReader(framed))
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("fragment size %d: %v", size, err)
		}
	}
	if got := Frame(nil, 0); !bytes.Equal(got, []byte{0x80, 0, 0, 0}) {
		t.Fatalf("empty record framed as % x", got)
	}
}

func TestParseReply(t *testing.T) {
	accepted := []byte{0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4}
	r, err := ParseReply(accepted)
	if err != nil || r.XID != 7 || !r.Accepted || r.Stat != 2 || r.Low != 3 || r.High != 4 {
		t.Fatalf("%+v %v", r, err)
	}
	denied := []byte{0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5}
	r, err = ParseReply(denied)
	if err != nil || r.Accepted || r.Stat != 1 || r.AuthStat != 5 {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := ParseReply(denied[:10]); err == nil {
		t.Fatal("truncated reply parsed")
	}
	if _, err := ParseReply([]byte{0, 0, 0, 1, 0, 0, 0, 0}); err == nil {
		t.Fatal("a CALL parsed as a reply")
	}
}
