package heartbeat

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

var testKey = []byte("0123456789abcdef-test-key")

func sampleMsg() Msg {
	return Msg{
		ClusterID: 0x0102030405060708, NodeID: 0x0a0b0c0d, Path: 1, State: StatePrimarySlave,
		Flags: FlagYield | FlagRequest, Epoch: 9, Seq: 0x1122334455667788, Journal: 4242, Time: -5,
		Ack: 0x0807060504030201,
	}
}

func TestEncodeLayout(t *testing.T) {
	b := Encode(testKey, sampleMsg())
	if len(b) != MessageSize || MessageSize != 92 {
		t.Fatalf("size %d (MessageSize %d), want 92", len(b), MessageSize)
	}
	wantBody := "46544842" + "02" + "03" + "01" + "06" + // magic, version, state, path, flags
		"0102030405060708" + "0a0b0c0d" + "0000000000000009" + "1122334455667788" +
		"0000000000001092" + "fffffffffffffffb" + "0807060504030201"
	if got := hex.EncodeToString(b[:bodySize]); got != wantBody {
		t.Fatalf("body\n got  %s\n want %s", got, wantBody)
	}
}

// TestLegacyVersion: version 1 datagrams (no ack) from a node that still
// runs the older firmware decode, with Legacy set and no Ack; the legacy
// layout is the version 2 one without the ack.
func TestLegacyVersion(t *testing.T) {
	m := sampleMsg()
	m.Legacy = true
	b := Encode(testKey, m)
	if len(b) != LegacyMessageSize || LegacyMessageSize != 84 {
		t.Fatalf("legacy size %d (LegacyMessageSize %d), want 84", len(b), LegacyMessageSize)
	}
	cur := Encode(testKey, sampleMsg())
	if b[4] != 1 || !bytes.Equal(b[5:legacyBodySize], cur[5:legacyBodySize]) {
		t.Fatalf("legacy body %x, want version 1 and the fields of %x", b[:legacyBodySize], cur[:legacyBodySize])
	}
	got, err := Decode(testKey, b)
	if err != nil {
		t.Fatal(err)
	}
	m.Ack = 0
	if got != m {
		t.Fatalf("decoded %+v, want %+v", got, m)
	}
	// A version 1 header on a version 2 length (or the reverse) is refused.
	v1long := bytes.Clone(cur)
	v1long[4] = 1
	if _, err := Decode(testKey, v1long); !errors.Is(err, ErrLength) {
		t.Fatalf("version 1 with %d bytes: %v, want ErrLength", len(v1long), err)
	}
	v2short := bytes.Clone(b)
	v2short[4] = 2
	if _, err := Decode(testKey, v2short); !errors.Is(err, ErrLength) {
		t.Fatalf("version 2 with %d bytes: %v, want ErrLength", len(v2short), err)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, m := range []Msg{
		sampleMsg(),
		{ClusterID: 1, NodeID: 1},
		{ClusterID: ^uint64(0), NodeID: ^uint32(0), Path: MaxPaths - 1, State: StateSlave, Flags: knownFlags, Epoch: ^uint64(0), Seq: ^uint64(0), Journal: ^uint64(0), Time: 1 << 62, Ack: ^uint64(0)},
		{ClusterID: 3, NodeID: 4, State: StateMaster, Seq: 9, Legacy: true},
	} {
		got, err := Decode(testKey, Encode(testKey, m))
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", m, err)
		}
		if got != m {
			t.Fatalf("round trip %+v, want %+v", got, m)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	good := Encode(testKey, sampleMsg())
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	resign := func(m Msg) []byte { return Encode(testKey, m) }
	for _, tc := range []struct {
		name string
		key  []byte
		b    []byte
		want error
	}{
		{"empty", testKey, nil, ErrLength},
		{"short", testKey, good[:3], ErrLength},
		{"magic", testKey, mut(func(b []byte) []byte { b[0] = 'X'; return b }), ErrMagic},
		{"version", testKey, mut(func(b []byte) []byte { b[4] = 3; return b }), ErrVersion},
		{"version 0", testKey, mut(func(b []byte) []byte { b[4] = 0; return b }), ErrVersion},
		{"truncated", testKey, good[:MessageSize-1], ErrLength},
		{"trailing byte", testKey, append(bytes.Clone(good), 0), ErrLength},
		{"no key", nil, good, ErrKey},
		{"wrong key", []byte("another-key-0123456"), good, ErrMAC},
		{"flipped epoch bit", testKey, mut(func(b []byte) []byte { b[27] ^= 1; return b }), ErrMAC},
		{"flipped mac bit", testKey, mut(func(b []byte) []byte { b[MessageSize-1] ^= 0x80; return b }), ErrMAC},
		{"bad state", testKey, resign(Msg{ClusterID: 1, NodeID: 1, State: 4}), ErrField},
		{"bad path", testKey, resign(Msg{ClusterID: 1, NodeID: 1, Path: MaxPaths}), ErrField},
		{"unknown flag", testKey, resign(Msg{ClusterID: 1, NodeID: 1, Flags: 0x80}), ErrField},
		{"node 0", testKey, resign(Msg{ClusterID: 1}), ErrField},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.key, tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode: %v, want %v", err, tc.want)
			}
			if m != (Msg{}) {
				t.Fatalf("Decode returned %+v with an error", m)
			}
		})
	}
}

func TestFlagsString(t *testing.T) {
	for f, want := range map[Flags]string{0: "0", FlagPrimary: "primary", FlagPrimary | FlagRequest: "primary|request", 0x81: "primary|0x80"} {
		if got := f.String(); got != want {
			t.Errorf("Flags(%#x) = %q, want %q", uint8(f), got, want)
		}
	}
}

// FuzzDecode checks that Decode never panics, that whatever it accepts
// re-encodes to the same bytes, and that a Receiver agrees with Decode.
func FuzzDecode(f *testing.F) {
	f.Add(Encode(testKey, sampleMsg()))
	f.Add(Encode(testKey, Msg{ClusterID: 7, NodeID: 2, State: StateMaster, Epoch: 2, Seq: 1}))
	f.Add(Encode([]byte("some-other-key-xyz"), sampleMsg()))
	f.Add([]byte("FTHB"))
	f.Add([]byte("FTHB\x02"))
	f.Add(Encode(testKey, Msg{ClusterID: 7, NodeID: 2, State: StateSlave, Epoch: 2, Seq: 3, Legacy: true}))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, MessageSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(testKey, b)
		if err != nil {
			return
		}
		if again := Encode(testKey, m); !bytes.Equal(again, b) {
			t.Fatalf("accepted %x but re-encodes to %x", b, again)
		}
		r, _ := NewReceiver(testKey, m.ClusterID, m.NodeID)
		if got, err := r.Accept(int(m.Path), b); err != nil || got != m {
			t.Fatalf("receiver: %+v, %v; decode %+v", got, err, m)
		}
		if _, err := r.Accept(int(m.Path), b); !errors.Is(err, ErrReplay) {
			t.Fatalf("second copy: %v, want replay", err)
		}
	})
}
