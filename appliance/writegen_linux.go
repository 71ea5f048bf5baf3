package appliance

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
)

// The data-loss generation at run time (see writegen.go): the store holds
// it, the NFS server answers with the verifier derived from it.

// openWriteGen is the write verifier nasd starts with: the stored
// generation, bumped if the last run served and did not stop cleanly.
// serving (stand-alone) marks the store Dirty: this run serves from now
// on.
func (b *backend) openWriteGen(serving bool, log *slog.Logger) ([8]byte, error) {
	b.genMu.Lock()
	defer b.genMu.Unlock()
	cur, err := b.st.WriteGen()
	if err != nil {
		return [8]byte{}, err
	}
	fresh, err := randomGen()
	if err != nil {
		return [8]byte{}, err
	}
	next, bumped := restartGen(cur, fresh)
	if bumped {
		log.Warn("nfs: the last run served and did not stop cleanly: new write verifier (clients send their uncommitted writes again)", "generation", next.Gen)
	}
	next.Dirty = serving
	if next != cur {
		if err := b.st.PutWriteGen(next); err != nil {
			return [8]byte{}, err
		}
	}
	return writeVerifier(b.tree.Root().MarshalBinary(), next.Gen), nil
}

// startServingGen is run as this node starts serving in a pair, before any
// NFS call is answered: it keeps or bumps the generation (startServingGen)
// and gives the NFS server its verifier.
func (b *backend) startServingGen(why servingStart, log *slog.Logger) error {
	b.genMu.Lock()
	defer b.genMu.Unlock()
	fresh, err := randomGen()
	if err != nil {
		return err
	}
	cur, err := b.st.WriteGen()
	if err != nil {
		// Serve with a new verifier anyway: a wrong "same" is data loss,
		// a wrong "new" only a resend.
		log.Error("nfs: cannot read the write generation; serving with a new verifier", "err", err)
		why = servingStart{}
	}
	next, reason := startServingGen(cur, why, fresh)
	if err = b.st.PutWriteGen(next); err != nil && next.Gen == cur.Gen {
		next = bumpGen(cur, fresh)
		log.Error("nfs: cannot store the write generation; serving with a new verifier", "err", err)
	}
	b.nfs.srv.SetVerifier(writeVerifier(b.tree.Root().MarshalBinary(), next.Gen))
	level := slog.LevelInfo
	if next.Gen != cur.Gen {
		level = slog.LevelWarn
	}
	log.Log(context.Background(), level, "nfs: write verifier", "generation", next.Gen, "changed", next.Gen != cur.Gen, "why", reason)
	return err
}

// randomGen is a new generation.
func randomGen() (uint64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("nfs: new write generation: %w", err)
	}
	return binary.BigEndian.Uint64(b[:]), nil
}

// cleanStop syncs the volume and clears the store's Dirty flag: what this
// node acknowledged is on its disk.
func (b *backend) cleanStop(log *slog.Logger) {
	if err := syncVolume(b.cfg.Volume); err != nil {
		log.Error("nfs: sync the volume at stop; the next start will change the write verifier", "err", err)
		return
	}
	b.genMu.Lock()
	defer b.genMu.Unlock()
	cur, err := b.st.WriteGen()
	if err == nil && cur.Dirty {
		cur.Dirty = false
		err = b.st.PutWriteGen(cur)
	}
	if err != nil {
		log.Error("nfs: clear the write generation's dirty flag", "err", err)
	}
}

// followWriteGen keeps the master's generation (config sync), sent by the
// master serving at epoch.
func (b *backend) followWriteGen(gen, epoch uint64, log *slog.Logger) {
	b.genMu.Lock()
	defer b.genMu.Unlock()
	cur, err := b.st.WriteGen()
	if err == nil {
		if next := followGen(cur, gen, epoch); next != cur {
			err = b.st.PutWriteGen(next)
		}
	}
	if err != nil {
		log.Error("config sync: keep the master's write generation", "err", err)
	}
}

// handOffNote is the note this master's journal hand-off carries: the
// generation it served with at epoch (nil if the store cannot say).
func (b *backend) handOffNote(epoch uint64, log *slog.Logger) []byte {
	b.genMu.Lock()
	cur, err := b.st.WriteGen()
	b.genMu.Unlock()
	if err != nil || epoch == 0 {
		log.Warn("nfs: the hand-off goes without the write generation; the new master changes the verifier", "err", err, "epoch", epoch)
		return nil
	}
	return genNote(cur.Gen, epoch)
}

// takeHandOffGen keeps the generation the old master's hand-off carried
// (its note; nil: none), as config sync would have.
//
// It returns the epoch the old master served at, as the note says (0 if
// there is no note to take): the heartbeat's view of the peer's epoch may
// already be the new master's, which the peer adopts as soon as it hears
// it (a failback in the lab read it a few milliseconds too late, and the
// verifier changed for nothing).
func (b *backend) takeHandOffGen(note []byte, log *slog.Logger) uint64 {
	if note == nil {
		return 0
	}
	gen, epoch, err := parseGenNote(note)
	if err != nil {
		log.Warn("nfs: the old master's hand-off note is not taken; the verifier changes", "err", err)
		return 0
	}
	log.Info("nfs: the old master's hand-off brought its write generation", "generation", gen, "epoch", epoch)
	b.followWriteGen(gen, epoch, log)
	return epoch
}

// servingWriteGen is the generation this serving node uses and its epoch,
// for config sync's snapshots (epoch 0 while it does not serve).
func (b *backend) servingWriteGen() (gen, epoch uint64, err error) {
	rt := b.serving.Load()
	if rt == nil || !rt.serving.Load() {
		return 0, 0, nil
	}
	b.genMu.Lock()
	cur, err := b.st.WriteGen()
	b.genMu.Unlock()
	if err != nil {
		return 0, 0, err
	}
	return cur.Gen, rt.servingEpoch(), nil
}
