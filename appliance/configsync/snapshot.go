package configsync

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"ftnas/appliance/store"
	"ftnas/kernel/tickle"
)

// Version is the snapshot format.
const Version = 1

// MaxSnapshot bounds one frame.
const MaxSnapshot = 16 << 20

// Snapshot is the master's configuration.
type Snapshot struct {
	Version int           `json:"version"`
	Shares  []store.Share `json:"shares"`
	Users   []store.User  `json:"users"`
	// Conns are the clients' TCP connections to the VIP's file services
	// as the master last saw them: after a takeover the standby tickles
	// them so the clients reconnect at once.
	Conns []tickle.Conn `json:"conns,omitempty"`
	// WriteGen is the master's NFS write generation (store.WriteGen.Gen)
	// and Epoch the epoch it serves at: a standby that later takes over by
	// a hand-off keeps the generation only if it holds the one of the
	// master's epoch. Epoch 0: not sent (an older master).
	WriteGen uint64 `json:"write_gen,omitempty"`
	Epoch    uint64 `json:"epoch,omitempty"`
}

// MaxConns bounds the connection list of a snapshot.
const MaxConns = 16384

// Write frames s onto w.
func Write(w io.Writer, s Snapshot) error {
	s.Version = Version
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("configsync: encode: %w", err)
	}
	if len(b) > MaxSnapshot {
		return fmt.Errorf("configsync: snapshot of %d bytes is over %d", len(b), MaxSnapshot)
	}
	frame := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(b)), uint32(len(b)))
	if _, err := w.Write(append(frame, b...)); err != nil {
		return fmt.Errorf("configsync: send: %w", err)
	}
	return nil
}

// Read reads and checks one frame.
func Read(r io.Reader) (Snapshot, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Snapshot{}, fmt.Errorf("configsync: read frame header: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > MaxSnapshot {
		return Snapshot{}, fmt.Errorf("configsync: frame of %d bytes (want 1..%d)", n, MaxSnapshot)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return Snapshot{}, fmt.Errorf("configsync: read frame: %w", err)
	}
	return Decode(b)
}

// Decode parses and validates a snapshot: known version, every
// share and user valid, names, FSIDs and UIDs unique.
func Decode(b []byte) (Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return Snapshot{}, fmt.Errorf("configsync: decode snapshot: %w", err)
	}
	if s.Version != Version {
		return Snapshot{}, fmt.Errorf("configsync: snapshot version %d, this nasd reads %d", s.Version, Version)
	}
	names, fsids := map[string]bool{}, map[uint64]bool{}
	for _, sh := range s.Shares {
		if err := store.ValidateShareForReplica(sh); err != nil {
			return Snapshot{}, fmt.Errorf("configsync: %w", err)
		}
		k := store.ShareKey(sh.Name)
		if names[k] || fsids[sh.FSID] {
			return Snapshot{}, fmt.Errorf("configsync: share %q: name or fsid %d given twice", sh.Name, sh.FSID)
		}
		names[k], fsids[sh.FSID] = true, true
	}
	if len(s.Conns) > MaxConns {
		return Snapshot{}, fmt.Errorf("configsync: %d connections (at most %d)", len(s.Conns), MaxConns)
	}
	for _, c := range s.Conns {
		if !c.VIP.IsValid() || !c.Client.IsValid() || c.VIP.Port() == 0 || c.Client.Port() == 0 {
			return Snapshot{}, fmt.Errorf("configsync: connection %v <- %v is not two addresses with ports", c.VIP, c.Client)
		}
	}
	users, uids := map[string]bool{}, map[uint32]bool{}
	for _, u := range s.Users {
		if err := store.ValidateUserForReplica(u); err != nil {
			return Snapshot{}, fmt.Errorf("configsync: %w", err)
		}
		if users[u.Name] || uids[u.UID] {
			return Snapshot{}, fmt.Errorf("configsync: user %q: name or uid %d given twice", u.Name, u.UID)
		}
		users[u.Name], uids[u.UID] = true, true
	}
	return s, nil
}

// Plan is what a standby changes to match a snapshot.
type Plan struct {
	AddShares, UpdateShares []store.Share
	RemoveShares            []string
	AddUsers, UpdateUsers   []store.User
	RemoveUsers             []string
}

func (p Plan) Empty() bool {
	return len(p.AddShares)+len(p.UpdateShares)+len(p.RemoveShares)+len(p.AddUsers)+len(p.UpdateUsers)+len(p.RemoveUsers) == 0
}

// PlanFor compares the standby's configuration with the master's. A
// share or user whose FSID or UID differs is removed and added again (the
// master's numbers win: handles and file owners must agree).
func PlanFor(have, want Snapshot) Plan {
	var p Plan
	haveSh := map[string]store.Share{}
	for _, sh := range have.Shares {
		haveSh[store.ShareKey(sh.Name)] = sh
	}
	wantSh := map[string]bool{}
	for _, sh := range want.Shares {
		k := store.ShareKey(sh.Name)
		wantSh[k] = true
		old, ok := haveSh[k]
		switch {
		case !ok:
			p.AddShares = append(p.AddShares, sh)
		case old.FSID != sh.FSID || old.Name != sh.Name:
			p.RemoveShares = append(p.RemoveShares, old.Name)
			p.AddShares = append(p.AddShares, sh)
		case !sameShare(old, sh):
			p.UpdateShares = append(p.UpdateShares, sh)
		}
	}
	for k, sh := range haveSh {
		if !wantSh[k] {
			p.RemoveShares = append(p.RemoveShares, sh.Name)
		}
	}
	haveU := map[string]store.User{}
	for _, u := range have.Users {
		haveU[u.Name] = u
	}
	wantU := map[string]bool{}
	for _, u := range want.Users {
		wantU[u.Name] = true
		old, ok := haveU[u.Name]
		switch {
		case !ok:
			p.AddUsers = append(p.AddUsers, u)
		case old.UID != u.UID || old.GID != u.GID:
			p.RemoveUsers = append(p.RemoveUsers, old.Name)
			p.AddUsers = append(p.AddUsers, u)
		case old.PasswordHash != u.PasswordHash || old.NTHash != u.NTHash:
			p.UpdateUsers = append(p.UpdateUsers, u)
		}
	}
	for name := range haveU {
		if !wantU[name] {
			p.RemoveUsers = append(p.RemoveUsers, name)
		}
	}
	slices.Sort(p.RemoveShares)
	slices.Sort(p.RemoveUsers)
	return p
}

func sameShare(a, b store.Share) bool {
	return a.Path == b.Path && a.NFS == b.NFS && a.SMB == b.SMB && a.ReadOnly == b.ReadOnly &&
		a.RootSquash == b.RootSquash && a.SyncReplication == b.SyncReplication && slices.Equal(a.Clients, b.Clients)
}
