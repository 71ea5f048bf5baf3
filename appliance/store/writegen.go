package store

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"
)

// keyWriteGen holds the NFS write generation (WriteGen).
const keyWriteGen = "write_gen"

// WriteGen is the pair's data-loss generation as this node holds it: the
// NFS write verifier is derived from Gen, which changes only when
// acknowledged but uncommitted writes may have been lost (the appliance
// decides when; see its writegen.go).
type WriteGen struct {
	// Gen is the generation.
	Gen uint64
	// Epoch is the serving epoch of the peer this node took Gen from
	// (config sync), or 0 when Gen is this node's own.
	Epoch uint64
	// Dirty: this node serves, or served and did not stop cleanly, so
	// writes it acknowledged may only be in its page cache.
	Dirty bool
}

// WriteGen returns the stored generation (the zero WriteGen if none).
func (s *Store) WriteGen() (WriteGen, error) {
	var w WriteGen
	err := s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket([]byte(bucketSettings)).Get([]byte(keyWriteGen))
		switch {
		case raw == nil:
			return nil
		case len(raw) != 17 || raw[16] > 1:
			return fmt.Errorf("store: write generation: %d bytes %x, want 17 (gen, epoch, dirty flag)", len(raw), raw)
		}
		w = WriteGen{Gen: binary.BigEndian.Uint64(raw), Epoch: binary.BigEndian.Uint64(raw[8:]), Dirty: raw[16] == 1}
		return nil
	})
	return w, err
}

// PutWriteGen stores w durably (bbolt syncs on commit).
func (s *Store) PutWriteGen(w WriteGen) error {
	raw := binary.BigEndian.AppendUint64(nil, w.Gen)
	raw = binary.BigEndian.AppendUint64(raw, w.Epoch)
	var dirty byte
	if w.Dirty {
		dirty = 1
	}
	raw = append(raw, dirty)
	if err := s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketSettings)).Put([]byte(keyWriteGen), raw)
	}); err != nil {
		return fmt.Errorf("store: write generation: %w", err)
	}
	return nil
}
