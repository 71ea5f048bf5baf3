package appliance

import (
	"fmt"
	"strings"
	"sync/atomic"

	"ftnas/appliance/nfs/nfs3"
	"ftnas/appliance/store"
)

// exports is the live NFS export list; Set swaps it whole, so a request
// sees either the old list or the new one.
type exports struct {
	list atomic.Pointer[[]nfs3.Share]
}

func (e *exports) Set(shares []store.Share) error {
	var out []nfs3.Share
	for _, s := range shares {
		if !s.NFS {
			continue
		}
		ns, err := nfsShare(s)
		if err != nil {
			return err
		}
		out = append(out, ns)
	}
	e.list.Store(&out)
	return nil
}

func nfsShare(s store.Share) (nfs3.Share, error) {
	ns := nfs3.Share{Name: s.Name, FSID: s.FSID, Path: s.Path, ReadOnly: s.ReadOnly, RootSquash: s.RootSquash, Durable: s.SyncReplication}
	for _, c := range s.Clients {
		p, err := store.ParseClient(c)
		if err != nil {
			return nfs3.Share{}, fmt.Errorf("share %s: client %q: %w", s.Name, c, err)
		}
		ns.Clients = append(ns.Clients, p)
	}
	return ns, nil
}

func (e *exports) get() []nfs3.Share {
	if p := e.list.Load(); p != nil {
		return *p
	}
	return nil
}

func (e *exports) ByFSID(fsid uint64) (nfs3.Share, bool) {
	for _, s := range e.get() {
		if s.FSID == fsid {
			return s, true
		}
	}
	return nfs3.Share{}, false
}

func (e *exports) ByName(name string) (nfs3.Share, bool) {
	for _, s := range e.get() {
		if strings.EqualFold(s.Name, name) {
			return s, true
		}
	}
	return nfs3.Share{}, false
}

func (e *exports) List() []nfs3.Share { return e.get() }
