package appliance

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"ftnas/appliance/store"
)

// The NFS write verifier (RFC 1813: WRITE and COMMIT return it) tells a
// client whether the server may have lost writes it acknowledged as
// UNSTABLE and the client has not committed yet: when it changes, the
// client sends them again. A pair answers on one address, so the verifier
// belongs to the pair, not to a process: it is derived from the volume
// root's identity (the pair's) and a data-loss generation kept in the
// store (store.WriteGen), which config sync carries from the master to the
// standby. A new generation is a random number, never a successor: two
// nodes that each bump the generation they last held (partitioned, or one
// of them restarted) must not arrive at the same one with different
// writes lost. The generation changes only when such writes may have been
// lost:
//
//   - a node that starts serving other than by a hand-off (its peer was
//     declared dead, the operator forced it, neither node served, no peer)
//     bumps it: the writes the old master acknowledged and had not shipped
//     are gone;
//   - a node that starts serving because its alive peer handed the service
//     over keeps it, if the old master's journal ended with a hand-off
//     (everything it had logged was acknowledged by this node) and this
//     node holds the generation the old master served with (the hand-off
//     carries it in its note, genNote; config sync brings it too, but on a
//     connection of its own, which may not have delivered it yet when a
//     failback follows a standby's return); else it bumps;
//   - nasd that starts with the store's Dirty flag set (it served and did
//     not stop cleanly: a crash, kill -9, power loss) bumps it before it
//     serves; a clean stop syncs the volume and clears the flag.

// servingStart is why this node starts serving.
type servingStart struct {
	// Handover: the peer, alive, handed the service over
	// (heartbeat.ReasonHandedOver).
	Handover bool
	// HandedOff: the old master's journal session ended with its
	// hand-off, after this node had applied everything it logged.
	HandedOff bool
	// PeerEpoch is the epoch the peer served at: its hand-off note's where
	// one came, else the heartbeat's view of it.
	PeerEpoch uint64
}

// startServingGen is the generation a node that starts serving uses, and
// why, for the log; fresh is a random number, the new generation if one
// is needed. The result is marked Dirty.
func startServingGen(cur store.WriteGen, s servingStart, fresh uint64) (store.WriteGen, string) {
	switch {
	case !s.Handover:
		return bumpGen(cur, fresh), "takeover: uncommitted writes may be lost"
	case !s.HandedOff:
		return bumpGen(cur, fresh), "handover without the old master's hand-off: its last changes may be missing"
	case cur.Epoch == 0 || cur.Epoch != s.PeerEpoch:
		return bumpGen(cur, fresh), "handover: the old master's generation was not received"
	}
	return store.WriteGen{Gen: cur.Gen, Dirty: true}, "handover: nothing lost"
}

// bumpGen is a new generation (fresh, unless that is cur's), this node's
// own, Dirty.
func bumpGen(cur store.WriteGen, fresh uint64) store.WriteGen {
	if fresh == cur.Gen {
		fresh++
	}
	return store.WriteGen{Gen: fresh, Dirty: true}
}

// restartGen is the generation nasd starts with: a new one (fresh, not
// Dirty) when the last run served and did not stop cleanly.
func restartGen(cur store.WriteGen, fresh uint64) (store.WriteGen, bool) {
	if !cur.Dirty {
		return cur, false
	}
	next := bumpGen(cur, fresh)
	next.Dirty = false
	return next, true
}

// followGen is what a standby keeps when its master, serving at epoch,
// sends generation gen: the master's. A generation of its own (bumped
// after a crash while it served) is of no use: whoever served after that
// crash did not take over by a hand-off, so it bumped too.
func followGen(cur store.WriteGen, gen, epoch uint64) store.WriteGen {
	return store.WriteGen{Gen: gen, Epoch: epoch, Dirty: cur.Dirty}
}

// writeVerifier derives the NFS write verifier from the volume root's
// identity and the generation.
func writeVerifier(root []byte, gen uint64) [8]byte {
	h := sha256.New()
	h.Write([]byte("ftnas nfs write verifier\x00"))
	h.Write(root)
	h.Write(binary.BigEndian.AppendUint64(nil, gen))
	var v [8]byte
	copy(v[:], h.Sum(nil))
	return v
}

// genNoteVersion is the first byte of a hand-off's note (genNote).
const genNoteVersion = 1

// genNoteLen is a note's length: version, generation, epoch.
const genNoteLen = 1 + 8 + 8

// genNote is the note a master's journal hand-off carries
// (replica.Master.HandOff): the generation it served with, at epoch.
func genNote(gen, epoch uint64) []byte {
	b := append(make([]byte, 0, genNoteLen), genNoteVersion)
	b = binary.BigEndian.AppendUint64(b, gen)
	return binary.BigEndian.AppendUint64(b, epoch)
}

// parseGenNote reads a note made by genNote. It came over the network:
// anything else is an error naming what is wrong, and the generation is
// then not taken (the new master bumps it: a resend, never a loss).
func parseGenNote(b []byte) (gen, epoch uint64, err error) {
	switch {
	case len(b) == 0:
		return 0, 0, errors.New("write generation note: empty")
	case b[0] != genNoteVersion:
		return 0, 0, fmt.Errorf("write generation note: unknown version %d", b[0])
	case len(b) != genNoteLen:
		return 0, 0, fmt.Errorf("write generation note: %d bytes, want %d", len(b), genNoteLen)
	}
	gen, epoch = binary.BigEndian.Uint64(b[1:9]), binary.BigEndian.Uint64(b[9:])
	if epoch == 0 {
		return 0, 0, errors.New("write generation note: epoch 0")
	}
	return gen, epoch, nil
}
