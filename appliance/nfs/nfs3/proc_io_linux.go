package nfs3

import (
	"golang.org/x/sys/unix"
)

// openForIO returns a cached descriptor of the regular file a handle names
// with its attributes, holding a reference (release it). A file whose last
// name is gone is ErrStale: its handle must not keep working. A cached
// descriptor whose inode lost its last name may still be the handle's file
// under a new inode: the standby's applier renames a new copy over a file,
// with the file's identity, and a node that served before and serves again
// holds descriptors of the copies it replaced meanwhile. So the handle is
// resolved again before it counts as stale.
func (k *call) openForIO(b []byte) (*openFile, *attrs, Status) {
	h, st := k.enter(b)
	if st != OK {
		return nil, nil, st
	}
	if f := k.s.files.get(h.Stamp); f != nil {
		a := k.fstat(f.fd, f.stamp)
		if a == nil {
			k.s.files.release(f)
			return nil, nil, ErrIO
		}
		if a.st.Nlink > 0 {
			return f, a, OK
		}
		k.s.files.drop(f.stamp)
		k.s.files.release(f)
	}
	// A file replaced between its resolution and its open (the
	// applier's rename of a new copy over it, or a client's rename of
	// another file over it) is opened with no name left: resolve once
	// more, and only a handle whose file is still gone then is stale.
	for try := 0; ; try++ {
		f, st := k.open(b)
		if st != OK {
			return nil, nil, st
		}
		a, st := k.ioAttrs(f)
		if st == OK {
			return f, a, OK
		}
		k.s.files.release(f)
		if st != ErrStale || try == 1 {
			if st == ErrStale {
				k.stale(b, "its file has no name left")
			}
			return nil, nil, st
		}
	}
}

// open opens the regular file a handle names and caches the descriptor.
func (k *call) open(b []byte) (*openFile, Status) {
	ref, st := k.resolve(b)
	if st != OK {
		return nil, st
	}
	defer ref.Close()
	writable := true
	fd, err := unix.Openat(ref.Dir, ref.Name, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == unix.EACCES || err == unix.EROFS || err == unix.ETXTBSY || err == unix.EPERM {
		writable = false
		fd, err = unix.Openat(ref.Dir, ref.Name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		if err == unix.ELOOP {
			return nil, ErrInval // a symlink
		}
		return nil, statusOf(err)
	}
	var sb unix.Stat_t
	if err := unix.Fstat(fd, &sb); err != nil || sb.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		if err == nil && sb.Mode&unix.S_IFMT == unix.S_IFDIR {
			return nil, ErrIsDir
		}
		return nil, ErrInval
	}
	return k.s.files.add(ref.Stamp, fd, writable), OK
}

// ioAttrs returns the attributes of an open file, or ErrStale when its last
// name is gone (its handle must not keep working).
func (k *call) ioAttrs(f *openFile) (*attrs, Status) {
	a := k.fstat(f.fd, f.stamp)
	if a == nil {
		return nil, ErrIO
	}
	if a.st.Nlink == 0 {
		k.s.files.drop(f.stamp)
		return nil, ErrStale
	}
	return a, OK
}

// permits checks the caller against a file's mode the way knfsd does for
// READ and WRITE: the owner may always read and write (the client checked
// at open, and a file created read-only must stay writable for its
// creator), a file the caller may execute may be read.
func (k *call) permits(a *attrs, write bool) bool {
	c := k.cred
	if c.isRoot() || c.uid == a.st.Uid {
		return true
	}
	mode := a.st.Mode
	var bits uint32
	switch {
	case c.inGroup(a.st.Gid):
		bits = (mode >> 3) & 7
	default:
		bits = mode & 7
	}
	if write {
		return bits&2 != 0
	}
	return bits&(4|1) != 0
}

func (k *call) read() Status {
	fh := k.r.Opaque(maxHandle)
	off := k.r.Uint64()
	count := k.r.Uint32()
	k.args()
	start := k.w.Len()
	fail := func(st Status, a *attrs) Status {
		k.w.Truncate(start)
		k.w.Uint32(uint32(st))
		putPostOp(k.w, a)
		return st
	}
	f, a, st := k.openForIO(fh)
	if st != OK {
		return fail(st, nil)
	}
	defer k.s.files.release(f)
	if !k.permits(a, false) {
		return fail(ErrAcces, a)
	}
	count = min(count, maxIO)
	k.w.Uint32(uint32(OK))
	putPostOp(k.w, a)
	countOff := k.w.Len()
	k.w.Uint32(0) // count
	k.w.Uint32(0) // eof
	k.w.Uint32(0) // data length
	dataOff := k.w.Len()
	buf := k.w.Grow(int(count))
	n := 0
	for n < len(buf) {
		m, err := unix.Pread(f.fd, buf[n:], int64(off)+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fail(statusOf(err), a)
		}
		if m == 0 {
			break
		}
		n += m
	}
	eof := off+uint64(n) >= uint64(a.st.Size)
	k.w.Truncate(dataOff + n)
	k.w.Align()
	k.w.PutUint32At(countOff, uint32(n))
	if eof {
		k.w.PutUint32At(countOff+4, 1)
	}
	k.w.PutUint32At(countOff+8, uint32(n))
	k.rd = n
	return OK
}

func (k *call) write() Status {
	fh := k.r.Opaque(maxHandle)
	off := k.r.Uint64()
	count := k.r.Uint32()
	stable := k.r.Uint32()
	data := k.r.Opaque(maxIO)
	k.args()
	if int(count) > len(data) || stable > fileSync {
		panic(garbage{})
	}
	data = data[:count]
	f, pre, st := k.openForIO(fh)
	if st != OK {
		return k.failWcc(st, wcc{}, nil)
	}
	defer k.s.files.release(f)
	if st := k.writable(); st != OK {
		return k.failWcc(st, wccOf(pre), pre)
	}
	if !f.writable || !k.permits(pre, true) {
		return k.failWcc(ErrAcces, wccOf(pre), pre)
	}
	n, err := pwriteAll(f, data, int64(off), k.s.content)
	if err != nil {
		return k.failWcc(statusOf(err), wccOf(pre), k.fstat(f.fd, f.stamp))
	}
	committed := uint32(unstable)
	switch stable {
	case dataSync:
		if err := unix.Fdatasync(f.fd); err != nil {
			return k.failWcc(statusOf(err), wccOf(pre), k.fstat(f.fd, f.stamp))
		}
		if st := k.durable(); st != OK {
			return k.failWcc(st, wccOf(pre), k.fstat(f.fd, f.stamp))
		}
		committed = fileSync
	case fileSync:
		if err := unix.Fsync(f.fd); err != nil {
			return k.failWcc(statusOf(err), wccOf(pre), k.fstat(f.fd, f.stamp))
		}
		if st := k.durable(); st != OK {
			return k.failWcc(st, wccOf(pre), k.fstat(f.fd, f.stamp))
		}
		committed = fileSync
	}
	k.wr = n
	k.w.Uint32(uint32(OK))
	putWcc(k.w, wccOf(pre), k.fstat(f.fd, f.stamp))
	k.w.Uint32(uint32(n))
	k.w.Uint32(committed)
	verf := k.s.Verifier()
	k.w.FixedOpaque(verf[:])
	return OK
}

func (k *call) commit() Status {
	fh := k.r.Opaque(maxHandle)
	_ = k.r.Uint64() // offset
	_ = k.r.Uint32() // count
	k.args()
	f, pre, st := k.openForIO(fh)
	if st != OK {
		return k.failWcc(st, wcc{}, nil)
	}
	defer k.s.files.release(f)
	// The whole file: fsync has no range form that also commits metadata.
	if err := unix.Fsync(f.fd); err != nil {
		return k.failWcc(statusOf(err), wccOf(pre), pre)
	}
	if st := k.durable(); st != OK {
		return k.failWcc(st, wccOf(pre), pre)
	}
	k.w.Uint32(uint32(OK))
	putWcc(k.w, wccOf(pre), k.fstat(f.fd, f.stamp))
	verf := k.s.Verifier()
	k.w.FixedOpaque(verf[:])
	return OK
}

// durable runs the server's Durable hook for a Durable share.
func (k *call) durable() Status {
	if k.s.durable == nil || !k.share.Durable {
		return OK
	}
	if err := k.s.durable(k.share.FSID); err != nil {
		k.s.log.Warn("nfs: data not yet safe on the standby; asking the client to retry", "fsid", k.share.FSID, "err", err)
		return ErrJukebox
	}
	return OK
}

// pwriteAll writes all of data at off, one writer of the file at a time,
// and tells obs (if set).
func pwriteAll(f *openFile, data []byte, off int64, obs ContentObserver) (n int, err error) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if obs != nil && len(data) > 0 {
		id := obs.BeginChange(f.stamp)
		defer func() {
			if err == nil && n == len(data) {
				obs.EndWrite(f.stamp, id, off, data)
			} else {
				obs.EndUnknown(f.stamp, id)
			}
		}()
	}
	for n < len(data) {
		m, err := unix.Pwrite(f.fd, data[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}
