package main

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// Program numbers and procedures (RFC 1833, RFC 1813).
const (
	progPortmap = 100000
	progMount   = 100005
	progNFS     = 100003

	pmapGetport = 3
	ipProtoTCP  = 6

	mountProcMnt  = 1
	mountProcUmnt = 3

	nfsProcNull    = 0
	nfsProcGetattr = 1
	nfsProcLookup  = 3
	nfsProcRead    = 6
	nfsProcWrite   = 7
	nfsProcCreate  = 8
	nfsProcMkdir   = 9
	nfsProcFsinfo  = 19
	nfsProcCommit  = 21

	stableUnstable = 0
	stableFileSync = 2

	createUnchecked = 0
	createGuarded   = 1

	fhSizeMax  = 64
	fattr3Size = 84
)

var nfsStatNames = map[uint32]string{
	1: "NFS3ERR_PERM", 2: "NFS3ERR_NOENT", 5: "NFS3ERR_IO", 6: "NFS3ERR_NXIO",
	13: "NFS3ERR_ACCES", 17: "NFS3ERR_EXIST", 18: "NFS3ERR_XDEV", 19: "NFS3ERR_NODEV",
	20: "NFS3ERR_NOTDIR", 21: "NFS3ERR_ISDIR", 22: "NFS3ERR_INVAL", 27: "NFS3ERR_FBIG",
	28: "NFS3ERR_NOSPC", 30: "NFS3ERR_ROFS", 31: "NFS3ERR_MLINK", 63: "NFS3ERR_NAMETOOLONG",
	66: "NFS3ERR_NOTEMPTY", 69: "NFS3ERR_DQUOT", 70: "NFS3ERR_STALE", 71: "NFS3ERR_REMOTE",
	10001: "NFS3ERR_BADHANDLE", 10002: "NFS3ERR_NOT_SYNC", 10003: "NFS3ERR_BAD_COOKIE",
	10004: "NFS3ERR_NOTSUPP", 10005: "NFS3ERR_TOOSMALL", 10006: "NFS3ERR_SERVERFAULT",
	10007: "NFS3ERR_BADTYPE", 10008: "NFS3ERR_JUKEBOX",
}

var mountStatNames = map[uint32]string{
	1: "MNT3ERR_PERM", 2: "MNT3ERR_NOENT", 5: "MNT3ERR_IO", 13: "MNT3ERR_ACCES",
	20: "MNT3ERR_NOTDIR", 22: "MNT3ERR_INVAL", 63: "MNT3ERR_NAMETOOLONG",
	10004: "MNT3ERR_NOTSUPP", 10006: "MNT3ERR_SERVERFAULT",
}

// statusError is an NFS or MOUNT procedure that returned an error status.
type statusError struct {
	proc   string
	status uint32
	names  map[uint32]string
}

func (e *statusError) Error() string {
	name := e.names[e.status]
	if name == "" {
		name = "unknown status"
	}
	return fmt.Sprintf("%s: %s (%d)", e.proc, name, e.status)
}

// fattr is the part of fattr3 the benchmark looks at.
type fattr struct {
	Type   uint32
	Size   uint64
	FileID uint64
}

func decodeFattr(d *decoder) fattr {
	var a fattr
	a.Type = d.uint32()
	d.skip("fattr3 mode..gid", 16)
	a.Size = d.uint64()
	d.skip("fattr3 used..fsid", 24)
	a.FileID = d.uint64()
	d.skip("fattr3 times", 24)
	return a
}

// decodePostOpAttr returns the attributes if present.
func decodePostOpAttr(d *decoder) (fattr, bool) {
	if d.bool() {
		return decodeFattr(d), true
	}
	return fattr{}, false
}

func skipWcc(d *decoder) {
	if d.bool() { // pre_op_attr
		d.skip("wcc_attr", 24)
	}
	decodePostOpAttr(d)
}

// checkStatus reads an nfsstat3 and, on error, the failure body is ignored.
func checkStatus(d *decoder, proc string) error {
	st := d.uint32()
	if d.err != nil {
		return fmt.Errorf("%s reply: %w", proc, d.err)
	}
	if st != 0 {
		return &statusError{proc: proc, status: st, names: nfsStatNames}
	}
	return nil
}

func finish(d *decoder, proc string) error {
	if d.err != nil {
		return fmt.Errorf("%s reply: %w", proc, d.err)
	}
	return nil
}

// getPort asks the portmapper at host:111 for a program's TCP port.
func getPort(host string, prog, vers uint32, cred authSysCred, timeout time.Duration) (int, error) {
	c, err := dialRPC(net.JoinHostPort(host, "111"), cred, timeout)
	if err != nil {
		return 0, fmt.Errorf("portmap GETPORT %d v%d: %w", prog, vers, err)
	}
	defer c.Close()
	res, err := c.call(progPortmap, 2, pmapGetport, 16, func(e *encoder) {
		e.uint32(prog)
		e.uint32(vers)
		e.uint32(ipProtoTCP)
		e.uint32(0)
	})
	if err != nil {
		return 0, fmt.Errorf("portmap GETPORT %d v%d: %w", prog, vers, err)
	}
	d := decoder{b: res}
	port := d.uint32()
	if d.err != nil {
		return 0, fmt.Errorf("portmap GETPORT %d v%d reply: %w", prog, vers, d.err)
	}
	if port == 0 || port > 65535 {
		return 0, fmt.Errorf("portmap GETPORT: program %d v%d over TCP is not registered at %s (port %d)", prog, vers, host, port)
	}
	return int(port), nil
}

// decodeMountReply decodes a MNT reply: the root handle and the accepted
// auth flavors.
func decodeMountReply(res []byte, path string) ([]byte, []uint32, error) {
	d := decoder{b: res}
	st := d.uint32()
	if d.err != nil {
		return nil, nil, fmt.Errorf("MNT %s reply: %w", path, d.err)
	}
	if st != 0 {
		return nil, nil, &statusError{proc: "MNT " + path, status: st, names: mountStatNames}
	}
	fh := d.opaque(fhSizeMax)
	n := d.uint32()
	if d.err == nil && n > 64 {
		return nil, nil, fmt.Errorf("MNT %s reply: %d auth flavors", path, n)
	}
	var flavors []uint32
	for i := uint32(0); i < n && d.err == nil; i++ {
		flavors = append(flavors, d.uint32())
	}
	if d.err != nil {
		return nil, nil, fmt.Errorf("MNT %s reply: %w", path, d.err)
	}
	return append([]byte(nil), fh...), flavors, nil
}

// mount runs MOUNT v3 MNT and checks AUTH_SYS is accepted.
func mount(host string, port int, path string, cred authSysCred, timeout time.Duration) ([]byte, error) {
	c, err := dialRPC(net.JoinHostPort(host, strconv.Itoa(port)), cred, timeout)
	if err != nil {
		return nil, fmt.Errorf("MNT %s: %w", path, err)
	}
	defer c.Close()
	res, err := c.call(progMount, 3, mountProcMnt, len(path)+8, func(e *encoder) { e.string(path) })
	if err != nil {
		return nil, fmt.Errorf("MNT %s: %w", path, err)
	}
	fh, flavors, err := decodeMountReply(res, path)
	if err != nil {
		return nil, err
	}
	ok := len(flavors) == 0
	for _, f := range flavors {
		if f == authSys {
			ok = true
		}
	}
	if !ok {
		return nil, fmt.Errorf("MNT %s: export does not accept AUTH_SYS (flavors %v)", path, flavors)
	}
	return fh, nil
}

// unmount runs MOUNT v3 UMNT; errors are returned for the caller to log.
func unmount(host string, port int, path string, cred authSysCred, timeout time.Duration) error {
	c, err := dialRPC(net.JoinHostPort(host, strconv.Itoa(port)), cred, timeout)
	if err != nil {
		return fmt.Errorf("UMNT %s: %w", path, err)
	}
	defer c.Close()
	if _, err := c.call(progMount, 3, mountProcUmnt, len(path)+8, func(e *encoder) { e.string(path) }); err != nil {
		return fmt.Errorf("UMNT %s: %w", path, err)
	}
	return nil
}

// nfsConn is one NFSv3 connection.
type nfsConn struct {
	*client
}

func dialNFS(host string, port int, cred authSysCred, timeout time.Duration) (*nfsConn, error) {
	c, err := dialRPC(net.JoinHostPort(host, strconv.Itoa(port)), cred, timeout)
	if err != nil {
		return nil, fmt.Errorf("nfs: %w", err)
	}
	return &nfsConn{c}, nil
}

func (c *nfsConn) nfs(proc uint32, name string, sizeHint int, args func(*encoder)) (*decoder, error) {
	res, err := c.call(progNFS, 3, proc, sizeHint, args)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	d := &decoder{b: res}
	if err := checkStatus(d, name); err != nil {
		return nil, err
	}
	return d, nil
}

func (c *nfsConn) null() error {
	if _, err := c.call(progNFS, 3, nfsProcNull, 0, nil); err != nil {
		return fmt.Errorf("NFS NULL: %w", err)
	}
	return nil
}

// fsinfo is the part of FSINFO3resok the benchmark uses.
type fsinfo struct {
	RTMax, RTPref, WTMax, WTPref uint32
}

func decodeFsinfo(d *decoder) fsinfo {
	var f fsinfo
	decodePostOpAttr(d)
	f.RTMax = d.uint32()
	f.RTPref = d.uint32()
	d.uint32() // rtmult
	f.WTMax = d.uint32()
	f.WTPref = d.uint32()
	d.skip("fsinfo wtmult..properties", 4+4+8+8+4)
	return f
}

func (c *nfsConn) fsinfo(fh []byte) (fsinfo, error) {
	d, err := c.nfs(nfsProcFsinfo, "FSINFO", len(fh)+8, func(e *encoder) { e.opaque(fh) })
	if err != nil {
		return fsinfo{}, err
	}
	f := decodeFsinfo(d)
	if err := finish(d, "FSINFO"); err != nil {
		return fsinfo{}, err
	}
	if f.RTMax == 0 || f.WTMax == 0 {
		return fsinfo{}, fmt.Errorf("FSINFO: server reports rtmax %d, wtmax %d", f.RTMax, f.WTMax)
	}
	return f, nil
}

func (c *nfsConn) getattr(fh []byte) (fattr, error) {
	d, err := c.nfs(nfsProcGetattr, "GETATTR", len(fh)+8, func(e *encoder) { e.opaque(fh) })
	if err != nil {
		return fattr{}, err
	}
	a := decodeFattr(d)
	return a, finish(d, "GETATTR")
}

func (c *nfsConn) lookup(dir []byte, name string) ([]byte, error) {
	proc := "LOOKUP " + name
	d, err := c.nfs(nfsProcLookup, proc, len(dir)+len(name)+16, func(e *encoder) {
		e.opaque(dir)
		e.string(name)
	})
	if err != nil {
		return nil, err
	}
	fh := d.opaque(fhSizeMax)
	if err := finish(d, proc); err != nil {
		return nil, err
	}
	return append([]byte(nil), fh...), nil
}

// encodeSattrMode appends a sattr3 that sets the mode and, if truncate, the
// size to zero.
func encodeSattrMode(e *encoder, mode uint32, truncate bool) {
	e.bool(true)
	e.uint32(mode)
	e.bool(false) // uid
	e.bool(false) // gid
	e.bool(truncate)
	if truncate {
		e.uint64(0)
	}
	e.uint32(0) // atime DONT_CHANGE
	e.uint32(0) // mtime DONT_CHANGE
}

// decodeNewObject decodes CREATE3resok / MKDIR3resok: the handle, if the
// server returned one.
func decodeNewObject(d *decoder) ([]byte, bool) {
	var fh []byte
	follows := d.bool()
	if follows {
		fh = d.opaque(fhSizeMax)
	}
	decodePostOpAttr(d)
	skipWcc(d)
	return fh, follows
}

// create runs CREATE with the given mode (UNCHECKED truncates to zero).
// If the server returns no handle it is looked up, as a client would.
func (c *nfsConn) create(dir []byte, name string, how uint32) ([]byte, error) {
	proc := "CREATE " + name
	d, err := c.nfs(nfsProcCreate, proc, len(dir)+len(name)+64, func(e *encoder) {
		e.opaque(dir)
		e.string(name)
		e.uint32(how)
		encodeSattrMode(e, 0o644, how == createUnchecked)
	})
	if err != nil {
		return nil, err
	}
	fh, ok := decodeNewObject(d)
	if err := finish(d, proc); err != nil {
		return nil, err
	}
	if !ok {
		return c.lookup(dir, name)
	}
	return append([]byte(nil), fh...), nil
}

func (c *nfsConn) mkdir(dir []byte, name string) ([]byte, error) {
	proc := "MKDIR " + name
	d, err := c.nfs(nfsProcMkdir, proc, len(dir)+len(name)+64, func(e *encoder) {
		e.opaque(dir)
		e.string(name)
		encodeSattrMode(e, 0o755, false)
	})
	if err != nil {
		return nil, err
	}
	fh, ok := decodeNewObject(d)
	if err := finish(d, proc); err != nil {
		return nil, err
	}
	if !ok {
		return c.lookup(dir, name)
	}
	return append([]byte(nil), fh...), nil
}

// writeReply is WRITE3resok.
type writeReply struct {
	Count     uint32
	Committed uint32
	Verf      [8]byte
}

func decodeWriteReply(d *decoder) writeReply {
	var w writeReply
	skipWcc(d)
	w.Count = d.uint32()
	w.Committed = d.uint32()
	copy(w.Verf[:], d.fixed(8))
	return w
}

// write sends one WRITE; fill appends exactly n data bytes to the request.
func (c *nfsConn) write(fh []byte, off uint64, n int, stable uint32, fill func(dst []byte) []byte) (writeReply, error) {
	d, err := c.nfs(nfsProcWrite, "WRITE", len(fh)+n+32, func(e *encoder) {
		e.opaque(fh)
		e.uint64(off)
		e.uint32(uint32(n))
		e.uint32(stable)
		e.uint32(uint32(n))
		e.b = fill(e.b)
		e.pad(n)
	})
	if err != nil {
		return writeReply{}, fmt.Errorf("%w (offset %d)", err, off)
	}
	w := decodeWriteReply(d)
	return w, finish(d, "WRITE")
}

func decodeReadReply(d *decoder, max int) (data []byte, eof bool) {
	decodePostOpAttr(d)
	count := d.uint32()
	eof = d.bool()
	data = d.opaque(max)
	if d.err == nil && int(count) != len(data) {
		d.err = fmt.Errorf("READ count %d but %d data bytes", count, len(data))
	}
	return data, eof
}

func (c *nfsConn) read(fh []byte, off uint64, n uint32) ([]byte, bool, error) {
	d, err := c.nfs(nfsProcRead, "READ", len(fh)+24, func(e *encoder) {
		e.opaque(fh)
		e.uint64(off)
		e.uint32(n)
	})
	if err != nil {
		return nil, false, fmt.Errorf("%w (offset %d)", err, off)
	}
	data, eof := decodeReadReply(d, int(n))
	return data, eof, finish(d, "READ")
}

// commit runs COMMIT of the whole file and returns the verifier.
func (c *nfsConn) commit(fh []byte) ([8]byte, error) {
	var v [8]byte
	d, err := c.nfs(nfsProcCommit, "COMMIT", len(fh)+24, func(e *encoder) {
		e.opaque(fh)
		e.uint64(0)
		e.uint32(0)
	})
	if err != nil {
		return v, err
	}
	skipWcc(d)
	copy(v[:], d.fixed(8))
	return v, finish(d, "COMMIT")
}
