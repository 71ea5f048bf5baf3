package nfs3

import (
	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// CREATE, MKDIR, SYMLINK, MKNOD (proc_ns_linux.go: the directory
// operations' common part and LOOKUP).

// created answers CREATE, MKDIR, SYMLINK and MKNOD: post_op_fh3,
// post_op_attr, wcc_data of the directory.
func (k *call) created(d *dir, name string, st fileid.Stamp) Status {
	if err := k.commitDir(d); err != nil {
		return k.failWcc(statusOf(err), wccOf(d.pre), k.fstat(d.fd, d.ref.Stamp))
	}
	k.w.Uint32(uint32(OK))
	k.w.Bool(true)
	k.putHandle(st)
	putPostOp(k.w, k.statAt(d.fd, name, st))
	putWcc(k.w, wccOf(d.pre), k.fstat(d.fd, d.ref.Stamp))
	return OK
}

// startCreate resolves the directory of a CREATE-like call and checks the
// name and the share.
func (k *call) startCreate(ref *fileid.Ref, name string, st Status) (*dir, Status) {
	if st != OK {
		return nil, k.failWcc(st, wcc{}, nil)
	}
	d, st := k.openDirOp(ref)
	if st != OK {
		ref.Close()
		return nil, k.failWcc(st, wcc{}, nil)
	}
	if st := checkName(name); st != OK {
		d.close()
		return nil, k.failWcc(st, wccOf(d.pre), d.pre)
	}
	if st := k.writable(); st != OK {
		d.close()
		return nil, k.failWcc(st, wccOf(d.pre), d.pre)
	}
	return d, OK
}

func modeOr(sa sattr, def uint32) uint32 {
	if sa.mode != nil {
		return *sa.mode & 0o7777
	}
	return def
}

func (k *call) create() Status {
	ref, name, st := k.dirop()
	how := k.r.Uint32()
	var sa sattr
	var verf []byte
	switch how {
	case createUnchecked, createGuarded:
		var ok bool
		if sa, ok = getSattr(k.r); !ok {
			panic(garbage{})
		}
	case createExclusive:
		verf = k.r.FixedOpaque(8)
	default:
		panic(garbage{})
	}
	k.args()
	d, st := k.startCreate(ref, name, st)
	if st != OK {
		return st
	}
	defer d.close()

	flags := unix.O_RDWR | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	var fd int
	var existed bool
	err := asCaller(k.cred, func() error {
		var err error
		fd, err = unix.Openat(d.fd, name, flags, modeOr(sa, 0o644))
		if err == unix.EEXIST && how == createUnchecked {
			existed = true
			fd, err = unix.Openat(d.fd, name, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		}
		if err != nil {
			return err
		}
		if how == createExclusive {
			// As knfsd does: the verifier lives in atime and mtime until
			// the client's SETATTR that follows.
			return unix.UtimesNanoAt(d.fd, name, verfTimes(verf), unix.AT_SYMLINK_NOFOLLOW)
		}
		if sa.uid != nil || sa.gid != nil || sa.size != nil || sa.atimeHow != dontChange || sa.mtimeHow != dontChange {
			sa.mode = nil
			pre := k.fstat(fd, fileid.Stamp{})
			if pre == nil {
				return unix.EIO
			}
			// An existing file's new size is told as a change not
			// described (the name may lead elsewhere than fd);
			// a new file's once it is stamped.
			var sh sizeHint
			if existed && sa.size != nil && k.s.content != nil {
				sh = sizeHint{k.s.content, fdStamp(fd), true}
			}
			return applySattr(&fileid.Ref{Dir: d.fd, Name: name}, pre, sa, sh)
		}
		return nil
	})
	if err == unix.EEXIST && how == createExclusive {
		// A retransmitted exclusive create finds its own file.
		var sb unix.Stat_t
		want := verfTimes(verf)
		if unix.Fstatat(d.fd, name, &sb, unix.AT_SYMLINK_NOFOLLOW) == nil &&
			sb.Atim.Sec == want[0].Sec && sb.Mtim.Sec == want[1].Sec && sb.Mode&unix.S_IFMT == unix.S_IFREG {
			stamp, serr := k.s.tree.StampAtSync(d.fd, d.ref.Stamp, name)
			if serr == nil {
				return k.created(d, name, stamp)
			}
		}
	}
	if err != nil {
		if fd > 0 {
			unix.Close(fd)
		}
		return k.failWcc(statusOf(err), wccOf(d.pre), k.fstat(d.fd, d.ref.Stamp))
	}
	var stamp fileid.Stamp
	if existed {
		stamp, err = k.s.tree.StampAtSync(d.fd, d.ref.Stamp, name)
		k.s.files.drop(stamp)
	} else {
		stamp, err = k.s.tree.Stamp(d.fd, d.ref.Stamp, name)
		if err == nil {
			// The new file's identity is in its handle: on stable
			// storage before the reply, with the directory entry
			// (commitDir), or a power cut gives it another at the next
			// start and the client's handle goes stale.
			err = unix.Fsync(fd)
		}
	}
	if err != nil {
		unix.Close(fd)
		return k.failWcc(statusOf(err), wccOf(d.pre), k.fstat(d.fd, d.ref.Stamp))
	}
	if obs := k.s.content; obs != nil {
		switch {
		case existed && sa.size != nil, !existed && sa.size != nil && *sa.size != 0:
			// Sized before its Stamp was known here (also told before,
			// if it was readable then): fetch it.
			obs.EndUnknown(stamp, obs.BeginChange(stamp))
		case !existed:
			obs.Born(stamp)
		}
	}
	k.s.files.release(k.s.files.add(stamp, fd, true))
	return k.created(d, name, stamp)
}

func verfTimes(v []byte) []unix.Timespec {
	a := int64(v[0])<<24 | int64(v[1])<<16 | int64(v[2])<<8 | int64(v[3])
	m := int64(v[4])<<24 | int64(v[5])<<16 | int64(v[6])<<8 | int64(v[7])
	return []unix.Timespec{{Sec: a}, {Sec: m}}
}

// makeNode runs mk as the caller, stamps what it made and answers.
func (k *call) makeNode(d *dir, name string, sa sattr, mk func() error) Status {
	err := asCaller(k.cred, func() error {
		if err := mk(); err != nil {
			return err
		}
		if sa.uid != nil || sa.gid != nil || sa.atimeHow != dontChange || sa.mtimeHow != dontChange {
			sa.mode, sa.size = nil, nil
			pre := k.statAt(d.fd, name, fileid.Stamp{})
			if pre == nil {
				return unix.EIO
			}
			return applySattr(&fileid.Ref{Dir: d.fd, Name: name}, pre, sa, sizeHint{})
		}
		return nil
	})
	if err != nil {
		return k.failWcc(statusOf(err), wccOf(d.pre), k.fstat(d.fd, d.ref.Stamp))
	}
	stamp, err := k.s.tree.Stamp(d.fd, d.ref.Stamp, name)
	if err == nil {
		err = fileid.SyncStamp(d.fd, name) // as in create
	}
	if err != nil {
		return k.failWcc(statusOf(err), wccOf(d.pre), k.fstat(d.fd, d.ref.Stamp))
	}
	return k.created(d, name, stamp)
}

func (k *call) mkdir() Status {
	ref, name, st := k.dirop()
	sa, ok := getSattr(k.r)
	k.args()
	if !ok {
		panic(garbage{})
	}
	d, st := k.startCreate(ref, name, st)
	if st != OK {
		return st
	}
	defer d.close()
	return k.makeNode(d, name, sa, func() error { return unix.Mkdirat(d.fd, name, modeOr(sa, 0o755)) })
}

func (k *call) symlink() Status {
	ref, name, st := k.dirop()
	sa, ok := getSattr(k.r)
	target := k.r.String(maxPath)
	k.args()
	if !ok {
		panic(garbage{})
	}
	d, st := k.startCreate(ref, name, st)
	if st != OK {
		return st
	}
	defer d.close()
	if target == "" || len(target) > maxPath {
		return k.failWcc(ErrInval, wccOf(d.pre), d.pre)
	}
	return k.makeNode(d, name, sa, func() error { return unix.Symlinkat(target, d.fd, name) })
}

func (k *call) mknod() Status {
	ref, name, st := k.dirop()
	typ := k.r.Uint32()
	var sa sattr
	var major, minor uint32
	ok := true
	switch typ {
	case typeChr, typeBlk:
		sa, ok = getSattr(k.r)
		major, minor = k.r.Uint32(), k.r.Uint32()
	case typeSock, typeFifo:
		sa, ok = getSattr(k.r)
	}
	k.args()
	if !ok {
		panic(garbage{})
	}
	d, st := k.startCreate(ref, name, st)
	if st != OK {
		return st
	}
	defer d.close()
	var mode uint32
	switch typ {
	case typeChr:
		mode = unix.S_IFCHR
	case typeBlk:
		mode = unix.S_IFBLK
	case typeSock:
		mode = unix.S_IFSOCK
	case typeFifo:
		mode = unix.S_IFIFO
	default:
		return k.failWcc(ErrBadType, wccOf(d.pre), d.pre)
	}
	dev := int(unix.Mkdev(major, minor))
	return k.makeNode(d, name, sa, func() error { return unix.Mknodat(d.fd, name, mode|modeOr(sa, 0o644), dev) })
}
