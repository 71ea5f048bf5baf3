package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// Share is one shared folder of the volume.
type Share struct {
	// Name is the share's name: the NFS export "/Name" and SMB "\\host\Name".
	// Unique regardless of case.
	Name string `json:"name"`
	// Path is the folder relative to the volume, cleaned.
	Path string `json:"path"`
	// NFS and SMB say which protocols export the share; at least one is set.
	NFS      bool `json:"nfs"`
	SMB      bool `json:"smb"`
	ReadOnly bool `json:"read_only"`
	// FSID is the NFS filesystem ID, unique and never reused.
	FSID uint64 `json:"fsid"`
	// RootSquash maps NFS root to nobody. The store keeps what it is given;
	// callers set it (true is the product default).
	RootSquash bool `json:"root_squash"`
	// Clients is the NFS allow-list (IP addresses or CIDR prefixes); empty
	// means every client.
	Clients []string  `json:"clients"`
	Created time.Time `json:"created"`
	// SyncReplication: in a pair, an NFS COMMIT or stable WRITE is
	// answered only once the standby has the data (RPO 0 for NFS);
	// otherwise the journal ships it asynchronously.
	SyncReplication bool `json:"sync_replication,omitempty"`
}

func shareKey(name string) []byte { return []byte(strings.ToLower(name)) }

// validateShare checks s and returns it with a clean path and a copy of
// its client list.
func validateShare(s Share) (Share, error) {
	if err := ValidateShareName(s.Name); err != nil {
		return s, err
	}
	p, err := CleanSharePath(s.Path)
	if err != nil {
		return s, fmt.Errorf("share %q: %w", s.Name, err)
	}
	s.Path = p
	if err := ValidateClients(s.Clients); err != nil {
		return s, fmt.Errorf("share %q: %w", s.Name, err)
	}
	s.Clients = append([]string{}, s.Clients...)
	if !s.NFS && !s.SMB {
		return s, fmt.Errorf("%w share %q: export it over NFS, SMB or both", ErrInvalid, s.Name)
	}
	return s, nil
}

func getShare(tx *bbolt.Tx, name string) (Share, bool, error) {
	var sh Share
	raw := tx.Bucket([]byte(bucketShares)).Get(shareKey(name))
	if raw == nil {
		return sh, false, nil
	}
	if err := json.Unmarshal(raw, &sh); err != nil {
		return sh, false, fmt.Errorf("decode share %q: %w", name, err)
	}
	return sh, true, nil
}

func putShare(tx *bbolt.Tx, sh Share) error {
	raw, err := json.Marshal(sh)
	if err != nil {
		return fmt.Errorf("encode share %q: %w", sh.Name, err)
	}
	return tx.Bucket([]byte(bucketShares)).Put(shareKey(sh.Name), raw)
}

func forEachShare(tx *bbolt.Tx, fn func(Share) error) error {
	return tx.Bucket([]byte(bucketShares)).ForEach(func(k, v []byte) error {
		var sh Share
		if err := json.Unmarshal(v, &sh); err != nil {
			return fmt.Errorf("decode share %q: %w", k, err)
		}
		return fn(sh)
	})
}

// AddShare validates and adds a share and returns it as stored. A name
// already taken in any case is ErrExists. A zero FSID is allocated from a
// counter that never goes back; a non-zero FSID (a replica applying its
// master's config) is kept when no other share has it, and the counter
// moves past it. A zero Created becomes now.
func (s *Store) AddShare(sh Share) (Share, error) {
	sh, err := validateShare(sh)
	if err != nil {
		return Share{}, err
	}
	if sh.Created.IsZero() {
		sh.Created = s.now().UTC()
	}
	err = s.update(func(tx *bbolt.Tx) error {
		old, ok, err := getShare(tx, sh.Name)
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("share %q: %w (as %q)", sh.Name, ErrExists, old.Name)
		}
		next := counter(tx, keyNextFSID, FirstFSID)
		if sh.FSID == 0 {
			sh.FSID = next
		} else {
			err := forEachShare(tx, func(o Share) error {
				if o.FSID == sh.FSID {
					return fmt.Errorf("share %q: fsid %d: %w (share %q)", sh.Name, sh.FSID, ErrExists, o.Name)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if sh.FSID >= next {
			if err := setCounter(tx, keyNextFSID, sh.FSID+1); err != nil {
				return err
			}
		}
		return putShare(tx, sh)
	})
	if err != nil {
		return Share{}, fmt.Errorf("store: add share: %w", err)
	}
	s.log.Info("share added", "share", sh.Name, "path", sh.Path, "fsid", sh.FSID, "nfs", sh.NFS, "smb", sh.SMB)
	return sh, nil
}

// UpdateShare replaces the share named sh.Name (any case) with sh and
// returns it as stored. FSID and Created cannot change: the stored values
// are kept whatever sh holds.
func (s *Store) UpdateShare(sh Share) (Share, error) {
	sh, err := validateShare(sh)
	if err != nil {
		return Share{}, err
	}
	err = s.update(func(tx *bbolt.Tx) error {
		old, ok, err := getShare(tx, sh.Name)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("share %q: %w", sh.Name, ErrNotFound)
		}
		sh.FSID, sh.Created = old.FSID, old.Created
		return putShare(tx, sh)
	})
	if err != nil {
		return Share{}, fmt.Errorf("store: update share: %w", err)
	}
	s.log.Info("share updated", "share", sh.Name, "path", sh.Path, "fsid", sh.FSID, "nfs", sh.NFS, "smb", sh.SMB)
	return sh, nil
}

// GetShare returns the share with this name (any case).
func (s *Store) GetShare(name string) (Share, error) {
	var sh Share
	err := s.db.View(func(tx *bbolt.Tx) error {
		var ok bool
		var err error
		if sh, ok, err = getShare(tx, name); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("share %q: %w", name, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return Share{}, fmt.Errorf("store: get share: %w", err)
	}
	return sh, nil
}

// ShareByFSID returns the share with this FSID.
func (s *Store) ShareByFSID(fsid uint64) (Share, error) {
	var found *Share
	err := s.db.View(func(tx *bbolt.Tx) error {
		return forEachShare(tx, func(sh Share) error {
			if sh.FSID == fsid {
				found = &sh
			}
			return nil
		})
	})
	if err != nil {
		return Share{}, fmt.Errorf("store: share by fsid: %w", err)
	}
	if found == nil {
		return Share{}, fmt.Errorf("store: share with fsid %d: %w", fsid, ErrNotFound)
	}
	return *found, nil
}

// ListShares returns every share, sorted by name regardless of case.
func (s *Store) ListShares() ([]Share, error) {
	shares := []Share{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return forEachShare(tx, func(sh Share) error {
			shares = append(shares, sh)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: list shares: %w", err)
	}
	return shares, nil
}

// RemoveShare removes the share's configuration (never its data). Its
// FSID is not reused.
func (s *Store) RemoveShare(name string) error {
	err := s.update(func(tx *bbolt.Tx) error {
		_, ok, err := getShare(tx, name)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("share %q: %w", name, ErrNotFound)
		}
		return tx.Bucket([]byte(bucketShares)).Delete(shareKey(name))
	})
	if err != nil {
		return fmt.Errorf("store: remove share: %w", err)
	}
	s.log.Info("share removed", "share", name)
	return nil
}
