package appliance

import (
	"bytes"
	"strings"
	"testing"

	"ftnas/appliance/store"
)

func TestStartServingGen(t *testing.T) {
	const fresh = 0xfeed
	held := store.WriteGen{Gen: 5, Epoch: 9} // received from the peer serving at epoch 9
	own := store.WriteGen{Gen: 5}            // this node's own
	for _, c := range []struct {
		name string
		cur  store.WriteGen
		s    servingStart
		want uint64
	}{
		{"takeover after the peer was declared dead", held, servingStart{PeerEpoch: 9}, fresh},
		{"takeover even with a hand-off seen before", held, servingStart{HandedOff: true, PeerEpoch: 9}, fresh},
		{"planned handover, everything handed off", held, servingStart{Handover: true, HandedOff: true, PeerEpoch: 9}, 5},
		{"handover without the hand-off (demote of a lagging master)", held, servingStart{Handover: true, PeerEpoch: 9}, fresh},
		{"handover, generation from an older epoch of the peer", held, servingStart{Handover: true, HandedOff: true, PeerEpoch: 10}, fresh},
		{"handover, generation never received", own, servingStart{Handover: true, HandedOff: true, PeerEpoch: 9}, fresh},
		{"handover, nothing ever received (epoch 0)", store.WriteGen{}, servingStart{Handover: true, HandedOff: true}, fresh},
		{"takeover, the random number is the current generation", store.WriteGen{Gen: fresh}, servingStart{}, fresh + 1},
	} {
		got, why := startServingGen(c.cur, c.s, fresh)
		if got.Gen != c.want || !got.Dirty || got.Epoch != 0 || why == "" {
			t.Errorf("%s: %+v (%q), want generation %#x, Dirty, epoch 0", c.name, got, why, c.want)
		}
	}
}

func TestRestartGen(t *testing.T) {
	if got, bumped := restartGen(store.WriteGen{Gen: 3, Epoch: 7}, 99); bumped || got != (store.WriteGen{Gen: 3, Epoch: 7}) {
		t.Errorf("clean stop: %+v bumped=%v, want it kept", got, bumped)
	}
	if got, bumped := restartGen(store.WriteGen{Gen: 3, Epoch: 7, Dirty: true}, 99); !bumped || got != (store.WriteGen{Gen: 99}) {
		t.Errorf("crash while serving: %+v bumped=%v, want generation 99, own, clean", got, bumped)
	}
}

func TestFollowGen(t *testing.T) {
	if got := followGen(store.WriteGen{Gen: 3, Dirty: true}, 4, 11); got != (store.WriteGen{Gen: 4, Epoch: 11, Dirty: true}) {
		t.Errorf("master's generation: %+v", got)
	}
	if got := followGen(store.WriteGen{Gen: 6}, 4, 12); got != (store.WriteGen{Gen: 4, Epoch: 12}) {
		t.Errorf("own generation (bumped after a crash) replaced: %+v", got)
	}
}

// TestWriteGenScenarios plays role changes of a pair through the pure
// functions: what a client that wrote UNSTABLE under one verifier sees
// after each change.
func TestWriteGenScenarios(t *testing.T) {
	rnd := uint64(100)
	fresh := func() uint64 { rnd++; return rnd }
	var n1, n2 store.WriteGen
	// n1 serves at epoch 1 (pair start: not a handover); n2 follows.
	n1, _ = startServingGen(n1, servingStart{}, fresh())
	n2 = followGen(n2, n1.Gen, 1)
	served := n1.Gen
	// Planned failover to n2 (n1 handed off): same generation.
	n2, _ = startServingGen(n2, servingStart{Handover: true, HandedOff: true, PeerEpoch: 1}, fresh())
	if n2.Gen != served {
		t.Fatalf("planned handover changed the generation %d -> %d", served, n2.Gen)
	}
	n1 = followGen(n1, n2.Gen, 2)
	// n2 is killed; n1 takes over (peer dead): a new generation.
	n1, _ = startServingGen(n1, servingStart{PeerEpoch: 2}, fresh())
	if n1.Gen == served {
		t.Fatal("takeover after the peer died kept the generation")
	}
	// n2 restarts after its crash: its own bump; then follows n1.
	n2, _ = restartGen(n2, fresh())
	n2 = followGen(n2, n1.Gen, 3)
	// Both partitioned, each promoted on its own: never the same
	// generation, though both last held n1's.
	a, _ := startServingGen(n1, servingStart{PeerEpoch: 2}, fresh())
	b, _ := startServingGen(n2, servingStart{PeerEpoch: 3}, fresh())
	if a.Gen == b.Gen || a.Gen == n1.Gen || b.Gen == n1.Gen {
		t.Fatalf("independent takeovers: %d and %d from %d", a.Gen, b.Gen, n1.Gen)
	}
}

// TestGenNote: the generation a hand-off carries reads back; what is not
// a note is refused with the reason; and a standby that missed config
// sync keeps the old master's generation through the note alone (the
// failback CI once caught changing the verifier).
func TestGenNote(t *testing.T) {
	b := genNote(0xdeadbeef, 9)
	gen, epoch, err := parseGenNote(b)
	if err != nil || gen != 0xdeadbeef || epoch != 9 {
		t.Fatalf("parseGenNote(genNote(0xdeadbeef, 9)) = %#x, %d, %v", gen, epoch, err)
	}
	for _, c := range []struct {
		note []byte
		want string
	}{
		{nil, "empty"},
		{append([]byte{2}, b[1:]...), "unknown version 2"},
		{b[:10], "10 bytes, want 17"},
		{append(bytes.Clone(b), 0), "18 bytes, want 17"},
		{genNote(5, 0), "epoch 0"},
	} {
		if _, _, err := parseGenNote(c.note); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseGenNote(%x) = %v, want an error saying %q", c.note, err, c.want)
		}
	}

	// n2 rejoined (its own generation after a restart) and config sync
	// has not brought n1's yet; n1 hands the service back with its note.
	n2 := store.WriteGen{Gen: 77}
	if got, _ := startServingGen(n2, servingStart{Handover: true, HandedOff: true, PeerEpoch: 4}, 1); got.Gen == 5 {
		t.Fatal("without the note, the generation cannot be the old master's")
	}
	gen, epoch, err = parseGenNote(genNote(5, 4))
	if err != nil {
		t.Fatal(err)
	}
	n2 = followGen(n2, gen, epoch)
	if got, why := startServingGen(n2, servingStart{Handover: true, HandedOff: true, PeerEpoch: 4}, 1); got.Gen != 5 {
		t.Fatalf("with the hand-off's note: generation %d (%s), want the old master's 5", got.Gen, why)
	}
}

// FuzzParseGenNote: the note comes over the network; nothing panics, and
// what parses is exactly a note genNote makes.
func FuzzParseGenNote(f *testing.F) {
	f.Add(genNote(1, 2))
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		gen, epoch, err := parseGenNote(b)
		if err != nil {
			return
		}
		if !bytes.Equal(genNote(gen, epoch), b) {
			t.Fatalf("%x parsed as %d, %d, which is another note", b, gen, epoch)
		}
	})
}

func TestWriteVerifier(t *testing.T) {
	root := []byte{1, 2, 3}
	a, b := writeVerifier(root, 1), writeVerifier(root, 1)
	if a != b {
		t.Fatalf("verifier not a function of root and generation: %x, %x", a, b)
	}
	if writeVerifier(root, 2) == a {
		t.Error("a new generation kept the verifier")
	}
	if writeVerifier([]byte{1, 2, 4}, 1) == a {
		t.Error("another pair's volume has the same verifier")
	}
}
