package nfs3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"strings"
	"sync/atomic"

	"ftnas/appliance/fileid"
	"ftnas/appliance/nfs/rpc"
	"ftnas/appliance/nfs/xdr"

	"golang.org/x/sys/unix"
)

// Server is the NFSv3 program over one volume.
type Server struct {
	log     *slog.Logger
	tree    *fileid.Tree
	exports Exports
	verf    atomic.Pointer[[8]byte] // the write verifier (SetVerifier)
	observe Observer
	files   *fdCache
	dirs    *dirSyncer
	durable func(fsid uint64) error
	content ContentObserver // nil: none
}

// New returns a server for the volume tree. It sets the process umask to 0
// (see the package documentation).
func New(tree *fileid.Tree, o Options) *Server {
	unix.Umask(0)
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.MaxOpenFiles <= 0 {
		o.MaxOpenFiles = 512
	}
	s := &Server{
		log: o.Log, tree: tree, exports: o.Exports, observe: o.Observe, durable: o.Durable,
		files: newFDCache(o.MaxOpenFiles), dirs: newDirSyncer(), content: o.Content,
	}
	s.SetVerifier(o.Verifier)
	return s
}

// Close releases cached descriptors.
func (s *Server) Close() { s.files.closeAll() }

// Verifier returns the write verifier WRITE and COMMIT answer with.
func (s *Server) Verifier() [8]byte { return *s.verf.Load() }

// SetVerifier changes the write verifier: calls answered from now on carry
// v. The caller changes it when uncommitted data may have been lost, so
// clients send their uncommitted writes again.
func (s *Server) SetVerifier(v [8]byte) { s.verf.Store(&v) }

// ForgetOpenFiles closes the cached descriptors. A node that stops or
// starts serving calls it: while it did not serve, another node's changes
// may have replaced the files it had open.
func (s *Server) ForgetOpenFiles() { s.files.closeAll() }

// call is one request in progress.
type call struct {
	s     *Server
	c     *rpc.Call
	r     *xdr.Reader
	w     *xdr.Writer
	cred  cred
	rd    int // bytes read, for metrics
	wr    int // bytes written
	share Share
	// notDurable: a namespace change (or a failure reporting the
	// namespace) of a Durable share whose safety on the standby could
	// not be confirmed (this node stopped serving meanwhile): answered
	// JUKEBOX, so the client asks again where the service is now.
	notDurable bool
}

type procFunc func(*call) Status

var procs = [numProcs]procFunc{
	procGetattr: (*call).getattr, procSetattr: (*call).setattr, procLookup: (*call).lookup,
	procAccess: (*call).access, procReadlink: (*call).readlink, procRead: (*call).read,
	procWrite: (*call).write, procCreate: (*call).create, procMkdir: (*call).mkdir,
	procSymlink: (*call).symlink, procMknod: (*call).mknod, procRemove: (*call).remove,
	procRmdir: (*call).rmdir, procRename: (*call).rename, procLink: (*call).link,
	procReaddir: (*call).readdir, procReaddirplus: (*call).readdirplus, procFsstat: (*call).fsstat,
	procFsinfo: (*call).fsinfo, procPathconf: (*call).pathconf, procCommit: (*call).commit,
}

// putNamespaceFailure writes a namespace procedure's failure reply with
// no attributes: status, then the procedure's wcc_data (RENAME has two,
// LINK a post_op_attr first).
func putNamespaceFailure(w *xdr.Writer, proc uint32, st Status) {
	w.Uint32(uint32(st))
	switch proc {
	case procRename:
		putWcc(w, wcc{}, nil)
		putWcc(w, wcc{}, nil)
	case procLink:
		putPostOp(w, nil)
		putWcc(w, wcc{}, nil)
	default:
		putWcc(w, wcc{}, nil)
	}
}

// failedOnState: st is a namespace procedure's failure that describes the
// namespace (the name is gone, or there already), not the request.
func failedOnState(proc uint32, st Status) bool {
	switch proc {
	case procCreate, procMkdir, procSymlink, procMknod, procRemove, procRmdir, procRename, procLink:
		return st == ErrNoEnt || st == ErrExist || st == ErrNotEmpty
	}
	return false
}

// errGarbage marks arguments that do not decode.
type garbage struct{}

// ServeRPC implements rpc.Handler for program 100003 version 3.
func (s *Server) ServeRPC(ctx context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
	if c.Proc == procNull {
		return rpc.Success
	}
	if c.Proc >= numProcs {
		return rpc.ProcUnavail
	}
	k := &call{s: s, c: c, r: c.Args, w: w, cred: credOf(c)}
	start := w.Len()
	st, bad := k.run(procs[c.Proc])
	if bad {
		return rpc.GarbageArgs
	}
	if failedOnState(c.Proc, st) {
		// The failure tells the client about the namespace as it is
		// now, which may hold a change not yet on the standby: a
		// retransmitted REMOVE answered NOENT because its first
		// transmission removed the name, still waiting for the standby
		// (chaos seed 36: the client took that NOENT as done, the
		// master restarted, and the standby still had the name). So
		// the answer waits as a success would.
		k.durableNS()
	}
	if k.notDurable {
		w.Truncate(start)
		st = ErrJukebox
		putNamespaceFailure(w, c.Proc, st)
	}
	if s.observe != nil {
		s.observe(c.Proc, st, k.rd, k.wr)
	}
	return rpc.Success
}

func (k *call) run(fn procFunc) (st Status, bad bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(garbage); ok {
				bad = true
				return
			}
			panic(r)
		}
	}()
	return fn(k), false
}

// args checks that the arguments decoded; if not, the call is GARBAGE_ARGS.
func (k *call) args() {
	if k.r.Err() != nil {
		panic(garbage{})
	}
}

// credOf maps the RPC credentials to a file-system identity (before squashing,
// which depends on the share).
func credOf(c *rpc.Call) cred {
	if c.Flavor != rpc.FlavorSys || c.Unix == nil {
		return cred{uid: nobody, gid: nobody}
	}
	return cred{uid: c.Unix.UID, gid: c.Unix.GID, groups: c.Unix.GIDs}
}

// squash applies the share's root squashing.
func (k *call) squash() {
	if k.share.RootSquash && k.cred.uid == 0 {
		k.cred = cred{uid: nobody, gid: nobody}
	}
}

// handle reads an nfs_fh3 argument and resolves it to a file of a share the
// caller may use.
func (k *call) handle() (*fileid.Ref, Status) {
	b := k.r.Opaque(maxHandle)
	k.args()
	return k.resolve(b)
}

// enter decodes a handle and enters its share: the share must exist, be the
// same as the call's other handle (RENAME, LINK) and admit the client; the
// caller's identity is squashed as the share says.
func (k *call) enter(b []byte) (fileid.Handle, Status) {
	h, err := fileid.DecodeHandle(b)
	if err != nil {
		return h, ErrBadHandle
	}
	sh, ok := k.s.exports.ByFSID(h.FSID)
	if !ok {
		k.stale(b, "no share has its fsid")
		return h, ErrStale
	}
	if k.share.FSID != 0 && k.share.FSID != sh.FSID {
		return h, ErrXDev
	}
	if !sh.allows(k.c.Remote) {
		return h, ErrAcces
	}
	if k.share.FSID == 0 {
		k.share = sh
		k.squash()
	}
	return h, OK
}

func (k *call) resolve(b []byte) (*fileid.Ref, Status) {
	h, st := k.enter(b)
	if st != OK {
		return nil, st
	}
	sh := k.share
	ref, err := k.s.tree.Resolve(h.Stamp)
	if err != nil {
		if errors.Is(err, fileid.ErrStale) {
			k.stale(b, "no file carries its identity")
		}
		return nil, statusOf(err)
	}
	if !sh.contains(ref.Rel) {
		k.stale(b, "its file is outside the share: "+ref.Rel)
		ref.Close()
		return nil, ErrStale
	}
	return ref, OK
}

// stale logs a handle answered NFS3ERR_STALE and why: a client holding
// one is normal after a delete by another client, and a bug after a
// failover, which this line then shows.
func (k *call) stale(b []byte, why string) {
	h, _ := fileid.DecodeHandle(b)
	k.s.log.Info("nfs: stale handle", "client", k.c.Remote, "fsid", h.FSID, "id", h.Stamp.ID, "gen", h.Stamp.Gen, "why", why)
}

// putHandle writes an nfs_fh3 for a Stamp in the current share.
func (k *call) putHandle(st fileid.Stamp) {
	var buf [fileid.HandleLen]byte
	k.w.Opaque(fileid.Handle{FSID: k.share.FSID, Stamp: st}.AppendTo(buf[:0]))
}

// handleAttrs reads a handle and returns the file with its attributes; on
// failure it has answered status + post_op_attr and returns nil.
func (k *call) handleAttrs() (*fileid.Ref, *attrs, Status) {
	ref, st := k.handle()
	if st != OK {
		k.w.Uint32(uint32(st))
		k.w.Bool(false)
		return nil, nil, st
	}
	a, err := k.stat(ref)
	if err != nil {
		ref.Close()
		st = statusOf(err)
		k.w.Uint32(uint32(st))
		k.w.Bool(false)
		return nil, nil, st
	}
	return ref, a, OK
}

// stat returns the attributes of a resolved file.
func (k *call) stat(ref *fileid.Ref) (*attrs, error) {
	a := &attrs{fileid: ref.Stamp.ID, fsid: k.share.FSID}
	if err := unix.Fstatat(ref.Dir, ref.Name, &a.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, err
	}
	return a, nil
}

// statAt returns the attributes of name in the directory fd.
func (k *call) statAt(dirFD int, name string, st fileid.Stamp) *attrs {
	a := &attrs{fileid: st.ID, fsid: k.share.FSID}
	if unix.Fstatat(dirFD, name, &a.st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return nil
	}
	return a
}

// fstat returns the attributes of an open file.
func (k *call) fstat(fd int, st fileid.Stamp) *attrs {
	a := &attrs{fileid: st.ID, fsid: k.share.FSID}
	if unix.Fstat(fd, &a.st) != nil {
		return nil
	}
	return a
}

// writable fails modifying calls on a read-only share.
func (k *call) writable() Status {
	if k.share.ReadOnly {
		return ErrROFS
	}
	return OK
}

func checkName(n string) Status {
	switch {
	case n == "" || n == "." || n == "..":
		return ErrInval
	case len(n) > maxName:
		return ErrNameTooLong
	case strings.ContainsAny(n, "/\x00"):
		return ErrInval
	}
	return OK
}

// openDir opens a resolved directory for *at calls, as root (the *at calls
// then check the caller's permissions themselves).
func openDir(ref *fileid.Ref) (int, error) {
	return unix.Openat(ref.Dir, ref.Name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// MNT3 statuses MountRoot returns.
const (
	MountOK    = 0
	MountNoEnt = 2
	MountIO    = 5
	MountAcces = 13
)

// MountRoot resolves the export path "/NAME" for a client at remote to the
// share's root handle, for the MOUNT protocol.
func (s *Server) MountRoot(dirpath string, remote net.Addr) ([]byte, uint32) {
	name := strings.TrimPrefix(path.Clean("/"+dirpath), "/")
	sh, ok := s.exports.ByName(name)
	if !ok {
		return nil, MountNoEnt
	}
	if !sh.allows(remote) {
		return nil, MountAcces
	}
	st, err := s.shareRoot(sh)
	if err != nil {
		s.log.Warn("mount: share root unavailable", "share", sh.Name, "err", err)
		return nil, MountIO
	}
	return fileid.Handle{FSID: sh.FSID, Stamp: st}.Encode(), MountOK
}

// shareRoot returns the Stamp of a share's top directory, stamping the
// directories on the way if nobody has yet.
func (s *Server) shareRoot(sh Share) (fileid.Stamp, error) {
	st := s.tree.Root()
	if sh.Path == "." {
		return st, nil
	}
	dir := "."
	for _, comp := range strings.Split(sh.Path, "/") {
		fd, err := s.tree.OpenDir(dir, unix.O_PATH)
		if err != nil {
			return fileid.Stamp{}, fmt.Errorf("nfs3: open %s of share %s: %w", dir, sh.Name, err)
		}
		st, err = s.tree.StampAtSync(fd, st, comp)
		unix.Close(fd)
		if err != nil {
			return fileid.Stamp{}, fmt.Errorf("nfs3: stamp %s of share %s: %w", comp, sh.Name, err)
		}
		dir = path.Join(dir, comp)
	}
	return st, nil
}

// Exports returns the export list the server serves.
func (s *Server) Exports() Exports { return s.exports }
