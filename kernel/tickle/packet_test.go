package tickle

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestChecksumKnownHeader(t *testing.T) {
	// The classic IPv4 header example: checksum field b861.
	h := mustHex(t, "450000730000400040110000c0a80001c0a800c7")
	if got := checksum(0, h); got != 0xb861 {
		t.Fatalf("checksum = %#04x, want 0xb861", got)
	}
	h[10], h[11] = 0xb8, 0x61
	if got := checksum(0, h); got != 0 {
		t.Fatalf("checksum over header with checksum = %#04x, want 0", got)
	}
	// Odd length pads with a zero byte.
	if got, want := checksum(0, []byte{0x01, 0x02, 0x03}), checksum(0, []byte{0x01, 0x02, 0x03, 0x00}); got != want {
		t.Fatalf("odd length: %#04x != %#04x", got, want)
	}
}

// Golden packets were computed by an independent implementation
// (Python struct + RFC 1071) and cross-checked against the client kernel
// accepting them in the namespace test.
func TestBuildPacketGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		seg  segment
		want string
	}{
		{
			name: "tickle ACK",
			seg: segment{
				Src:   netip.MustParseAddrPort("10.77.0.100:445"),
				Dst:   netip.MustParseAddrPort("10.77.0.1:51234"),
				Flags: flagACK, Window: markWindow,
			},
			want: "4500002800004000400625d20a4d00640a4d000101bdc8220000000000000000501004d2cc240000",
		},
		{
			name: "RST ACK",
			seg: segment{
				Src: netip.MustParseAddrPort("192.168.1.10:2049"),
				Dst: netip.MustParseAddrPort("[::ffff:192.168.1.20]:800"),
				Seq: 0x89abcdef, Ack: 0x01234567,
				Flags: flagRST | flagACK, Window: markWindow,
			},
			want: "45000028000040004006b761c0a8010ac0a801140801032089abcdef01234567501404d27e490000",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := buildPacket(tc.seg)
			if err != nil {
				t.Fatal(err)
			}
			if want := mustHex(t, tc.want); !bytes.Equal(got, want) {
				t.Fatalf("packet\n got %x\nwant %x", got, want)
			}
			back, err := parsePacket(got)
			if err != nil {
				t.Fatal(err)
			}
			wantSeg := tc.seg
			wantSeg.Dst = unmap(wantSeg.Dst)
			if back != wantSeg {
				t.Fatalf("round trip: got %+v want %+v", back, wantSeg)
			}
		})
	}
}

func TestBuildPacketRejectsIPv6(t *testing.T) {
	_, err := buildPacket(segment{
		Src: netip.MustParseAddrPort("[2001:db8::1]:445"),
		Dst: netip.MustParseAddrPort("10.0.0.1:1000"),
	})
	if err == nil {
		t.Fatal("IPv6 source accepted")
	}
}

func TestParsePacketBad(t *testing.T) {
	good := mustHex(t, "4500002800004000400625d20a4d00640a4d000101bdc8220000000000000000501004d2cc240000")
	mod := func(f func(p []byte) []byte) []byte {
		p := append([]byte(nil), good...)
		return f(p)
	}
	for name, p := range map[string][]byte{
		"empty":         nil,
		"short ip":      good[:19],
		"short tcp":     good[:39],
		"ipv6":          mod(func(p []byte) []byte { p[0] = 0x60; return p }),
		"udp":           mod(func(p []byte) []byte { p[9] = 17; return p }),
		"ihl too small": mod(func(p []byte) []byte { p[0] = 0x44; return p }),
		"ihl past end":  mod(func(p []byte) []byte { p[0] = 0x4f; return p }),
		"fragment":      mod(func(p []byte) []byte { p[7] = 0x08; return p }),
		"tcp off small": mod(func(p []byte) []byte { p[32] = 0x40; return p }),
	} {
		if _, err := parsePacket(p); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	// IP options are skipped.
	opt := append(append([]byte{0x46}, good[1:20]...), 1, 1, 1, 0)
	opt = append(opt, good[20:]...)
	s, err := parsePacket(opt)
	if err != nil || s.Src.Port() != 445 || s.Dst.Port() != 51234 {
		t.Fatalf("with IP options: %+v %v", s, err)
	}
}

func TestResetFor(t *testing.T) {
	c := Conn{VIP: netip.MustParseAddrPort("10.0.0.100:445"), Client: netip.MustParseAddrPort("10.0.0.1:40000")}
	answer := segment{Src: c.Client, Dst: c.VIP, Seq: 1000, Ack: 2000, Flags: flagACK, Window: 500}
	rst, ok := resetFor(c, answer)
	if !ok {
		t.Fatal("answer not recognised")
	}
	want := segment{Src: c.VIP, Dst: c.Client, Seq: 2000, Ack: 1000, Flags: flagRST | flagACK, Window: markWindow}
	if rst != want {
		t.Fatalf("rst = %+v, want %+v", rst, want)
	}
	for name, s := range map[string]segment{
		"other client port": {Src: netip.MustParseAddrPort("10.0.0.1:40001"), Dst: c.VIP, Flags: flagACK},
		"other vip port":    {Src: c.Client, Dst: netip.MustParseAddrPort("10.0.0.100:446"), Flags: flagACK},
		"no ack":            {Src: c.Client, Dst: c.VIP},
		"rst":               {Src: c.Client, Dst: c.VIP, Flags: flagRST | flagACK},
		"syn":               {Src: c.Client, Dst: c.VIP, Flags: flagSYN | flagACK},
	} {
		if _, ok := resetFor(c, s); ok {
			t.Errorf("%s: answered with RST", name)
		}
	}
}

func FuzzParsePacket(f *testing.F) {
	f.Add(mustHex(f, "4500002800004000400625d20a4d00640a4d000101bdc8220000000000000000501004d2cc240000"))
	f.Add(mustHex(f, "45000028000040004006b761c0a8010ac0a801140801032089abcdef01234567501404d27e490000"))
	f.Add([]byte{0x4f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		s, err := parsePacket(p)
		if err != nil {
			return
		}
		if !s.Src.Addr().Is4() || !s.Dst.Addr().Is4() {
			t.Fatalf("non-IPv4 addresses from %x", p)
		}
		// What parses rebuilds into a packet that parses the same.
		q, err := buildPacket(s)
		if err != nil {
			t.Fatal(err)
		}
		if s2, err := parsePacket(q); err != nil || s2 != s {
			t.Fatalf("rebuild: %+v %v, want %+v", s2, err, s)
		}
		if checksum(0, q[:20]) != 0 {
			t.Fatal("bad IP checksum on rebuild")
		}
	})
}
