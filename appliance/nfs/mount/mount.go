package mount

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"

	"ftnas/appliance/nfs/rpc"
	"ftnas/appliance/nfs/xdr"
)

// Program and versions.
const (
	Prog  = 100005
	Vers  = 3
	Vers1 = 1
)

// Procedures.
const (
	ProcNull    = 0
	ProcMnt     = 1
	ProcDump    = 2
	ProcUmnt    = 3
	ProcUmntall = 4
	ProcExport  = 5
)

// Protocol limits.
const (
	MaxPath    = 1024 // MNTPATHLEN
	MaxName    = 255  // MNTNAMLEN
	MaxFHSize  = 64   // FHSIZE3
	maxMounts  = 10000
	maxArgPath = 1 << 16 // longest dirpath read before answering NAMETOOLONG
)

// Status is a MOUNT version 3 status (mountstat3).
type Status uint32

// Statuses.
const (
	OK             Status = 0     // MNT3_OK
	ErrPerm        Status = 1     // MNT3ERR_PERM
	ErrNoEnt       Status = 2     // MNT3ERR_NOENT
	ErrIO          Status = 5     // MNT3ERR_IO
	ErrAcces       Status = 13    // MNT3ERR_ACCES
	ErrNotDir      Status = 20    // MNT3ERR_NOTDIR
	ErrInval       Status = 22    // MNT3ERR_INVAL
	ErrNameTooLong Status = 63    // MNT3ERR_NAMETOOLONG
	ErrNotSupp     Status = 10004 // MNT3ERR_NOTSUPP
	ErrServerFault Status = 10006 // MNT3ERR_SERVERFAULT
)

func (s Status) String() string {
	switch s {
	case OK:
		return "MNT3_OK"
	case ErrPerm:
		return "MNT3ERR_PERM"
	case ErrNoEnt:
		return "MNT3ERR_NOENT"
	case ErrIO:
		return "MNT3ERR_IO"
	case ErrAcces:
		return "MNT3ERR_ACCES"
	case ErrNotDir:
		return "MNT3ERR_NOTDIR"
	case ErrInval:
		return "MNT3ERR_INVAL"
	case ErrNameTooLong:
		return "MNT3ERR_NAMETOOLONG"
	case ErrNotSupp:
		return "MNT3ERR_NOTSUPP"
	case ErrServerFault:
		return "MNT3ERR_SERVERFAULT"
	}
	return fmt.Sprintf("mountstat3(%d)", uint32(s))
}

// Export is one exported directory and the client groups allowed to
// mount it (names, netgroups or addresses, as the EXPORT reply shows
// them; empty means everyone).
type Export struct {
	Dir    string // like "/media"
	Groups []string
}

// Exports is what the MOUNT server serves: the lead's export table.
type Exports interface {
	// Mount resolves dirpath for the caller; returns the root file handle
	// and allowed auth flavors, or a MNT3 status.
	Mount(ctx context.Context, dirpath string, c *rpc.Call) (fh []byte, flavors []uint32, stat Status)
	List(ctx context.Context) []Export
}

// Entry is one recorded mount, as DUMP reports it.
type Entry struct {
	Host string // the client's address
	Dir  string
}

// Server serves MOUNT. It is safe for concurrent use.
type Server struct {
	exports Exports
	log     *slog.Logger
	mu      sync.Mutex
	mounts  []Entry // in mount order; at most maxMounts
}

// New returns a MOUNT server for e.
func New(e Exports, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{exports: e, log: log}
}

// Handler returns the rpc.Handler; register it for Vers (and Vers1).
func (s *Server) Handler() rpc.Handler { return rpc.HandlerFunc(s.serve) }

// Mounts returns the recorded mounts.
func (s *Server) Mounts() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mounts)
}

func (s *Server) record(e Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Contains(s.mounts, e) {
		return
	}
	if len(s.mounts) >= maxMounts {
		s.mounts = slices.Delete(s.mounts, 0, 1)
	}
	s.mounts = append(s.mounts, e)
}

func (s *Server) forget(match func(Entry) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mounts = slices.DeleteFunc(s.mounts, match)
}

// hostOf names the client for the mount list: its IP address.
func hostOf(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case *net.UDPAddr:
		return a.IP.String()
	case nil:
		return ""
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

// DecodeDirpath reads a dirpath argument. It returns ErrNameTooLong for a
// well-formed path longer than MaxPath, and an error for malformed
// arguments.
func DecodeDirpath(r *xdr.Reader) (string, Status, error) {
	b := r.StringBytes(maxArgPath)
	if err := r.Err(); err != nil {
		return "", 0, fmt.Errorf("mount: dirpath: %w", err)
	}
	if len(b) > MaxPath {
		return "", ErrNameTooLong, nil
	}
	return string(b), OK, nil
}

func (s *Server) serve(ctx context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
	switch c.Proc {
	case ProcNull:
		return rpc.Success
	case ProcMnt:
		if c.Vers != Vers {
			return rpc.ProcUnavail
		}
		return s.mnt(ctx, c, w)
	case ProcDump:
		for _, e := range s.Mounts() {
			w.Bool(true)
			w.String(truncate(e.Host, MaxName))
			w.String(e.Dir)
		}
		w.Bool(false)
		return rpc.Success
	case ProcUmnt:
		dir, st, err := DecodeDirpath(c.Args)
		if err != nil {
			s.log.Debug("mount: UMNT: bad arguments", "remote", fmt.Sprint(c.Remote), "err", err)
			return rpc.GarbageArgs
		}
		if st == OK {
			host := hostOf(c.Remote)
			s.forget(func(e Entry) bool { return e.Host == host && e.Dir == dir })
			s.log.Info("mount: unmounted", "host", host, "dir", dir)
		}
		return rpc.Success
	case ProcUmntall:
		host := hostOf(c.Remote)
		s.forget(func(e Entry) bool { return e.Host == host })
		s.log.Info("mount: unmounted all", "host", host)
		return rpc.Success
	case ProcExport:
		for _, e := range s.exports.List(ctx) {
			w.Bool(true)
			w.String(truncate(e.Dir, MaxPath))
			for _, g := range e.Groups {
				w.Bool(true)
				w.String(truncate(g, MaxName))
			}
			w.Bool(false)
		}
		w.Bool(false)
		return rpc.Success
	}
	return rpc.ProcUnavail
}

func (s *Server) mnt(ctx context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
	host := hostOf(c.Remote)
	dir, st, err := DecodeDirpath(c.Args)
	if err != nil {
		s.log.Debug("mount: MNT: bad arguments", "host", host, "err", err)
		return rpc.GarbageArgs
	}
	var fh []byte
	var flavors []uint32
	if st == OK {
		fh, flavors, st = s.exports.Mount(ctx, dir, c)
		if st == OK && (len(fh) == 0 || len(fh) > MaxFHSize) {
			s.log.Error("mount: export gave a file handle of bad length", "dir", dir, "bytes", len(fh))
			st = ErrServerFault
		}
	}
	w.Uint32(uint32(st))
	if st != OK {
		s.log.Info("mount: refused", "host", host, "dir", truncate(dir, 128), "status", st.String())
		return rpc.Success
	}
	w.Opaque(fh)
	if len(flavors) == 0 {
		flavors = []uint32{rpc.FlavorSys}
	}
	w.Uint32(uint32(len(flavors)))
	for _, f := range flavors {
		w.Uint32(f)
	}
	s.record(Entry{Host: host, Dir: dir})
	s.log.Info("mount: mounted", "host", host, "dir", dir)
	return rpc.Success
}

// truncate keeps s within an XDR string limit.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
