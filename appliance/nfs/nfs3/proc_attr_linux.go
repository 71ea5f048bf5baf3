package nfs3

import (
	"strconv"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

func (k *call) getattr() Status {
	ref, a, st := k.handleAttrs()
	if st != OK {
		return st
	}
	ref.Close()
	k.w.Uint32(uint32(OK))
	putFattr(k.w, a)
	return OK
}

func (k *call) setattr() Status {
	ref, st := k.handle()
	sa, ok := getSattr(k.r)
	check := k.r.Bool()
	var guard unix.Timespec
	if check {
		guard = unix.Timespec{Sec: int64(k.r.Uint32()), Nsec: int64(k.r.Uint32())}
	}
	k.args()
	if !ok {
		if ref != nil {
			ref.Close()
		}
		panic(garbage{})
	}
	if st != OK {
		return k.failWcc(st, wcc{}, nil)
	}
	defer ref.Close()
	pre, err := k.stat(ref)
	if err != nil {
		return k.failWcc(statusOf(err), wcc{}, nil)
	}
	if st := k.writable(); st != OK {
		return k.failWcc(st, wccOf(pre), pre)
	}
	if check && (pre.st.Ctim.Sec != guard.Sec || pre.st.Ctim.Nsec != guard.Nsec) {
		return k.failWcc(ErrNotSync, wccOf(pre), pre)
	}
	err = asCaller(k.cred, func() error { return applySattr(ref, pre, sa, sizeHint{k.s.content, ref.Stamp, false}) })
	post, _ := k.stat(ref)
	if err != nil {
		return k.failWcc(statusOf(err), wccOf(pre), post)
	}
	if sa.size != nil {
		k.s.files.drop(ref.Stamp) // a later WRITE reopens with fresh state
	}
	k.w.Uint32(uint32(OK))
	putWcc(k.w, wccOf(pre), post)
	return OK
}

// failWcc answers a call whose result is status + wcc_data.
func (k *call) failWcc(st Status, pre wcc, post *attrs) Status {
	k.w.Uint32(uint32(st))
	putWcc(k.w, pre, post)
	return st
}

// sizeHint is whom applySattr tells of a size change: obs (if set) about
// the file st (if not zero), as a truncate or, if unknown, as a change it
// does not describe.
type sizeHint struct {
	obs     ContentObserver
	st      fileid.Stamp
	unknown bool
}

// truncate sets the size of fd, telling h.
func (h sizeHint) truncate(fd int, size int64) error {
	if h.obs == nil || h.st.IsZero() {
		return unix.Ftruncate(fd, size)
	}
	id := h.obs.BeginChange(h.st)
	err := unix.Ftruncate(fd, size)
	if err != nil || h.unknown {
		h.obs.EndUnknown(h.st, id)
	} else {
		h.obs.EndTruncate(h.st, id, size)
	}
	return err
}

// applySattr changes attributes of a resolved file, never following a
// symlink at its name: size, then mode, then owner, then times.
func applySattr(ref *fileid.Ref, pre *attrs, sa sattr, sh sizeHint) error {
	isLink := pre.st.Mode&unix.S_IFMT == unix.S_IFLNK
	if sa.size != nil {
		switch pre.st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
		case unix.S_IFDIR:
			return unix.EISDIR
		default:
			return unix.EINVAL
		}
		fd, err := unix.Openat(ref.Dir, ref.Name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		err = sh.truncate(fd, int64(*sa.size))
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	if sa.mode != nil && !isLink {
		// Through an O_PATH descriptor of the object itself, so a name
		// swapped for a symlink meanwhile is not followed.
		fd, err := unix.Openat(ref.Dir, ref.Name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err = unix.Fstat(fd, &st); err == nil && st.Mode&unix.S_IFMT != unix.S_IFLNK {
			err = unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), *sa.mode&0o7777)
		}
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	if sa.uid != nil || sa.gid != nil {
		uid, gid := -1, -1
		if sa.uid != nil {
			uid = int(*sa.uid)
		}
		if sa.gid != nil {
			gid = int(*sa.gid)
		}
		if err := unix.Fchownat(ref.Dir, ref.Name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	if sa.atimeHow != dontChange || sa.mtimeHow != dontChange {
		ts := []unix.Timespec{timeArg(sa.atimeHow, sa.atime), timeArg(sa.mtimeHow, sa.mtime)}
		if err := unix.UtimesNanoAt(ref.Dir, ref.Name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

func timeArg(how uint32, t unix.Timespec) unix.Timespec {
	switch how {
	case setToServer:
		return unix.Timespec{Nsec: unix.UTIME_NOW}
	case setToClient:
		return t
	}
	return unix.Timespec{Nsec: unix.UTIME_OMIT}
}

func (k *call) access() Status {
	ref, st := k.handle()
	want := k.r.Uint32()
	k.args()
	if st != OK {
		k.w.Uint32(uint32(st))
		k.w.Bool(false)
		return st
	}
	defer ref.Close()
	a, err := k.stat(ref)
	if err != nil {
		st = statusOf(err)
		k.w.Uint32(uint32(st))
		k.w.Bool(false)
		return st
	}
	isDir := a.st.Mode&unix.S_IFMT == unix.S_IFDIR
	var got uint32
	_ = asCaller(k.cred, func() error {
		can := func(mode uint32) bool {
			return unix.Faccessat(ref.Dir, ref.Name, mode, unix.AT_EACCESS|unix.AT_SYMLINK_NOFOLLOW) == nil
		}
		if want&accessRead != 0 && can(unix.R_OK) {
			got |= accessRead
		}
		if want&(accessLookup|accessExecute) != 0 && can(unix.X_OK) {
			got |= want & (accessLookup | accessExecute)
		}
		if want&(accessModify|accessExtend|accessDelete) != 0 && !k.share.ReadOnly {
			m := uint32(unix.W_OK)
			if isDir {
				m |= unix.X_OK
			}
			if can(m) {
				got |= want & (accessModify | accessExtend | accessDelete)
			}
		}
		return nil
	})
	if !isDir {
		got &^= accessLookup | accessDelete
	}
	k.w.Uint32(uint32(OK))
	putPostOp(k.w, a)
	k.w.Uint32(got)
	return OK
}

func (k *call) readlink() Status {
	ref, st := k.handle()
	if st != OK {
		k.w.Uint32(uint32(st))
		k.w.Bool(false)
		return st
	}
	defer ref.Close()
	a, err := k.stat(ref)
	if err == nil && a.st.Mode&unix.S_IFMT != unix.S_IFLNK {
		err = unix.EINVAL
	}
	var buf [maxPath]byte
	n := 0
	if err == nil {
		n, err = unix.Readlinkat(ref.Dir, ref.Name, buf[:])
	}
	if err != nil {
		st = statusOf(err)
		k.w.Uint32(uint32(st))
		putPostOp(k.w, a)
		return st
	}
	k.w.Uint32(uint32(OK))
	putPostOp(k.w, a)
	k.w.Opaque(buf[:n])
	return OK
}

func (k *call) fsstat() Status {
	ref, a, st := k.handleAttrs()
	if st != OK {
		return st
	}
	defer ref.Close()
	var fs unix.Statfs_t
	if err := unix.Fstatfs(ref.Dir, &fs); err != nil {
		st = statusOf(err)
		k.w.Uint32(uint32(st))
		putPostOp(k.w, a)
		return st
	}
	bs := uint64(fs.Bsize)
	k.w.Uint32(uint32(OK))
	putPostOp(k.w, a)
	k.w.Uint64(fs.Blocks * bs)
	k.w.Uint64(fs.Bfree * bs)
	k.w.Uint64(fs.Bavail * bs)
	k.w.Uint64(fs.Files)
	k.w.Uint64(fs.Ffree)
	k.w.Uint64(fs.Ffree)
	k.w.Uint32(0) // invarsec
	return OK
}

func (k *call) fsinfo() Status {
	ref, a, st := k.handleAttrs()
	if st != OK {
		return st
	}
	ref.Close()
	k.w.Uint32(uint32(OK))
	putPostOp(k.w, a)
	k.w.Uint32(maxIO)  // rtmax
	k.w.Uint32(prefIO) // rtpref
	k.w.Uint32(4096)   // rtmult
	k.w.Uint32(maxIO)  // wtmax
	k.w.Uint32(prefIO) // wtpref
	k.w.Uint32(4096)   // wtmult
	k.w.Uint32(64 << 10)
	k.w.Uint64(1<<63 - 1) // maxfilesize
	k.w.Uint32(0)         // time_delta: 1 ns
	k.w.Uint32(1)
	k.w.Uint32(0x1 | 0x2 | 0x8 | 0x10) // LINK, SYMLINK, HOMOGENEOUS, CANSETTIME
	return OK
}

func (k *call) pathconf() Status {
	ref, a, st := k.handleAttrs()
	if st != OK {
		return st
	}
	ref.Close()
	k.w.Uint32(uint32(OK))
	putPostOp(k.w, a)
	k.w.Uint32(65000)   // linkmax
	k.w.Uint32(maxName) // name_max
	k.w.Bool(true)      // no_trunc
	k.w.Bool(true)      // chown_restricted
	k.w.Bool(false)     // case_insensitive
	k.w.Bool(true)      // case_preserving
	return OK
}
