//lint:file-ignore U1000 the share checks are used by the Linux implementation

package nfs3

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"ftnas/appliance/fileid"
)

// Share is one export as the NFS server sees it.
type Share struct {
	Name       string
	FSID       uint64
	Path       string // volume-relative, cleaned; "." is the whole volume
	ReadOnly   bool
	RootSquash bool
	Clients    []netip.Prefix // empty: every client
	// Durable: a COMMIT, a stable WRITE or a namespace change (CREATE,
	// MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK) waits for
	// Options.Durable before it is answered (a sync-replicated share).
	Durable bool
}

// Export is the path a client mounts: "/NAME".
func (s Share) Export() string { return "/" + s.Name }

// contains reports whether the volume-relative path rel lies in the share.
func (s Share) contains(rel string) bool {
	if s.Path == "." || s.Path == rel {
		return true
	}
	return strings.HasPrefix(rel, s.Path+"/")
}

// allows reports whether a client at addr may use the share.
func (s Share) allows(addr net.Addr) bool {
	if len(s.Clients) == 0 {
		return true
	}
	ip, ok := addrIP(addr)
	if !ok {
		return false
	}
	for _, p := range s.Clients {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func addrIP(a net.Addr) (netip.Addr, bool) {
	switch v := a.(type) {
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(v.IP)
		return ip.Unmap(), ok
	case *net.UDPAddr:
		ip, ok := netip.AddrFromSlice(v.IP)
		return ip.Unmap(), ok
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// Exports is the live list of shares; the appliance swaps it when the
// configuration changes.
type Exports interface {
	ByFSID(fsid uint64) (Share, bool)
	ByName(name string) (Share, bool)
	List() []Share
}

// Observer receives one record per NFS call, for metrics.
type Observer func(proc uint32, status Status, readBytes, writeBytes int)

// ContentObserver is told of every change the server makes to a file's
// contents (the master's replication ships such writes with their data).
// BeginChange comes before the syscall, with the file's Stamp, and exactly
// one End call with its id after it: EndWrite when all of data was written
// at off (data is the request's buffer: copy it), EndTruncate for a new
// size, EndUnknown when the change failed, was partial or is not
// described. The changes of one file are begun one at a time where the
// server can (WRITEs are serialized per file). Born tells that the server
// created the file st empty.
type ContentObserver interface {
	BeginChange(st fileid.Stamp) uint64
	EndWrite(st fileid.Stamp, id uint64, off int64, data []byte)
	EndTruncate(st fileid.Stamp, id uint64, size int64)
	EndUnknown(st fileid.Stamp, id uint64)
	Born(st fileid.Stamp)
}

// Options configure a Server.
// ErrPending, wrapped by a Durable hook's error, says the change is not
// yet safe but may be soon (the standby is slow, or being outdated): a
// namespace change's reply waits and the hook is called again.
var ErrPending = errors.New("nfs3: the change is not yet durable")

type Options struct {
	Log      *slog.Logger
	Exports  Exports
	Verifier [8]byte // the initial write verifier (see Server.SetVerifier)
	Observe  Observer
	// MaxOpenFiles bounds the descriptor cache used by READ and WRITE.
	MaxOpenFiles int
	// Durable, if set, runs for shares marked Durable after a COMMIT, a
	// stable WRITE or a namespace change reached the disk and before the
	// reply, with the share's FSID: a sync-replicated share waits there
	// until its standby has the change. An error answers NFS3ERR_JUKEBOX
	// to COMMIT and WRITE, so the client retries. A namespace change is
	// not retried by the client (a retry of it would not be idempotent):
	// while the hook's error matches ErrPending it is called again (the
	// reply waits, as a client of a slow server does); on any other error
	// (the node stopped serving) it is made here but answered JUKEBOX, so
	// the client asks again where the service went, which makes the
	// change or finds it made. A namespace procedure failing on the
	// namespace's state (NOENT, EXIST, NOTEMPTY) waits the same way: the
	// state it reports may hold a change the standby lacks.
	Durable func(fsid uint64) error
	// Content, if set, is told of every change to a file's contents.
	Content ContentObserver
}
