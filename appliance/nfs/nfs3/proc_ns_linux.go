package nfs3

import (
	"errors"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// dirop reads diropargs3 and resolves the directory.
func (k *call) dirop() (*fileid.Ref, string, Status) {
	fh := k.r.Opaque(maxHandle)
	name := k.r.String(maxPath)
	k.args()
	ref, st := k.resolve(fh)
	if st != OK {
		return nil, name, st
	}
	return ref, name, OK
}

// dir is a directory opened for a namespace operation, with its attributes
// before the operation.
type dir struct {
	ref *fileid.Ref
	fd  int
	pre *attrs
}

func (k *call) openDirOp(ref *fileid.Ref) (*dir, Status) {
	fd, err := openDir(ref)
	if err != nil {
		return nil, statusOf(err)
	}
	d := &dir{ref: ref, fd: fd, pre: k.fstat(fd, ref.Stamp)}
	if d.pre == nil || d.pre.st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(fd)
		return nil, ErrNotDir
	}
	return d, OK
}

func (d *dir) close() {
	unix.Close(d.fd)
	d.ref.Close()
}

// commitDir makes the directories' changes durable before the reply (RFC
// 1813 requires it of every operation that changes the namespace),
// sharing each fsync with concurrent changes of the same directory; on a
// Durable share it then waits, once, for the standby to store them.
func (k *call) commitDir(ds ...*dir) error {
	for i, d := range ds {
		if i > 0 && d.ref.Stamp == ds[0].ref.Stamp {
			continue // a rename within one directory
		}
		if err := k.s.dirs.sync(d.ref.Stamp.ID, d.fd); err != nil {
			return err
		}
	}
	k.durableNS()
	return nil
}

// durableNS runs the Durable hook after a namespace change on a Durable
// share. The reply waits while the hook says ErrPending (the standby is
// slow or being outdated). On any other failure (this node stopped
// serving) the change is made here but may be missing where the service
// goes: the call is answered JUKEBOX (see call.notDurable), and the
// client's retry there either makes the change or finds it made.
func (k *call) durableNS() {
	if k.s.durable == nil || !k.share.Durable {
		return
	}
	for tries := 1; ; tries++ {
		err := k.s.durable(k.share.FSID)
		switch {
		case err == nil:
			return
		case errors.Is(err, ErrPending):
			if tries == 1 {
				k.s.log.Info("nfs: namespace change waits for the standby", "fsid", k.share.FSID, "err", err)
			}
			continue
		}
		// This node stopped serving meanwhile: the client is told to
		// ask again (JUKEBOX), where the service is now, rather than
		// that a change the standby may lack is done.
		k.s.log.Warn("nfs: namespace change not confirmed on the standby; asking the client to retry", "fsid", k.share.FSID, "err", err)
		k.notDurable = true
		return
	}
}

func (k *call) lookup() Status {
	ref, name, st := k.dirop()
	if st != OK {
		k.w.Uint32(uint32(st))
		k.w.Bool(false)
		return st
	}
	defer ref.Close()
	dfd, err := unix.Openat(ref.Dir, ref.Name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		st = statusOf(err)
		k.w.Uint32(uint32(st))
		k.w.Bool(false)
		return st
	}
	defer unix.Close(dfd)
	dirAttrs := k.fstat(dfd, ref.Stamp)
	fail := func(st Status) Status {
		k.w.Uint32(uint32(st))
		putPostOp(k.w, dirAttrs)
		return st
	}
	if len(name) > maxName {
		return fail(ErrNameTooLong)
	}
	var child fileid.Stamp
	var childAttrs *attrs
	switch {
	case name == "." || (name == ".." && (ref.Rel == k.share.Path || k.share.Path == "." && ref.Rel == ".")):
		// ".." of a share's root is the root: clients never leave the share.
		child, childAttrs = ref.Stamp, dirAttrs
	case name == "..":
		ps, err := fileid.ReadStamp(ref.Dir, ".")
		if err != nil {
			return fail(ErrStale)
		}
		child = ps
		childAttrs = k.statAt(ref.Dir, ".", ps)
	case checkName(name) != OK:
		return fail(checkName(name))
	default:
		var sb unix.Stat_t
		if err := asCaller(k.cred, func() error {
			return unix.Fstatat(dfd, name, &sb, unix.AT_SYMLINK_NOFOLLOW)
		}); err != nil {
			return fail(statusOf(err))
		}
		child, err = k.s.tree.StampAtSync(dfd, ref.Stamp, name)
		if err != nil {
			return fail(statusOf(err))
		}
		childAttrs = &attrs{st: sb, fileid: child.ID, fsid: k.share.FSID}
	}
	k.w.Uint32(uint32(OK))
	k.putHandle(child)
	putPostOp(k.w, childAttrs)
	putPostOp(k.w, dirAttrs)
	return OK
}

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

// forget updates the index and the descriptor cache after a name of st went
// away; links tells how many names it had before.
func (k *call) forget(st fileid.Stamp, links uint64) {
	if st.IsZero() {
		return
	}
	if links <= 1 {
		k.s.tree.Removed(st)
		k.s.files.drop(st)
	}
}

func (k *call) removeEntry(flags int) Status {
	ref, name, st := k.dirop()
	if st != OK {
		return k.failWcc(st, wcc{}, nil)
	}
	d, st := k.openDirOp(ref)
	if st != OK {
		ref.Close()
		return k.failWcc(st, wcc{}, nil)
	}
	defer d.close()
	if st := checkName(name); st != OK {
		return k.failWcc(st, wccOf(d.pre), d.pre)
	}
	if st := k.writable(); st != OK {
		return k.failWcc(st, wccOf(d.pre), d.pre)
	}
	victim, _ := fileid.ReadStamp(d.fd, name)
	var sb unix.Stat_t
	links := uint64(1)
	if unix.Fstatat(d.fd, name, &sb, unix.AT_SYMLINK_NOFOLLOW) == nil {
		links = uint64(sb.Nlink)
	}
	err := asCaller(k.cred, func() error { return unix.Unlinkat(d.fd, name, flags) })
	if err == nil {
		k.forget(victim, links)
		err = k.commitDir(d)
	}
	post := k.fstat(d.fd, d.ref.Stamp)
	if err != nil {
		return k.failWcc(statusOf(err), wccOf(d.pre), post)
	}
	k.w.Uint32(uint32(OK))
	putWcc(k.w, wccOf(d.pre), post)
	return OK
}

func (k *call) remove() Status { return k.removeEntry(0) }
func (k *call) rmdir() Status  { return k.removeEntry(unix.AT_REMOVEDIR) }

func (k *call) rename() Status {
	fromRef, from, st1 := k.dirop()
	toFH := k.r.Opaque(maxHandle)
	to := k.r.String(maxPath)
	k.args()
	fail := func(st Status, a, b *dir) Status {
		for _, d := range []*dir{a, b} {
			if d == nil {
				putWcc(k.w, wcc{}, nil)
			} else {
				putWcc(k.w, wccOf(d.pre), k.fstat(d.fd, d.ref.Stamp))
			}
		}
		return st
	}
	if st1 != OK {
		k.w.Uint32(uint32(st1))
		return fail(st1, nil, nil)
	}
	fd, st := k.openDirOp(fromRef)
	if st != OK {
		fromRef.Close()
		k.w.Uint32(uint32(st))
		return fail(st, nil, nil)
	}
	defer fd.close()
	toRef, st := k.resolve(toFH)
	if st != OK {
		k.w.Uint32(uint32(st))
		return fail(st, fd, nil)
	}
	td, st := k.openDirOp(toRef)
	if st != OK {
		toRef.Close()
		k.w.Uint32(uint32(st))
		return fail(st, fd, nil)
	}
	defer td.close()
	st = checkName(from)
	if st == OK {
		st = checkName(to)
	}
	if st == OK {
		st = k.writable()
	}
	if st != OK {
		k.w.Uint32(uint32(st))
		return fail(st, fd, td)
	}
	src, err := k.s.tree.StampAtSync(fd.fd, fd.ref.Stamp, from)
	if err != nil {
		st = statusOf(err)
		if errors.Is(err, fileid.ErrNoStamp) {
			st = ErrNoEnt
		}
		k.w.Uint32(uint32(st))
		return fail(st, fd, td)
	}
	victim, _ := fileid.ReadStamp(td.fd, to)
	var vsb unix.Stat_t
	links := uint64(0)
	if !victim.IsZero() && unix.Fstatat(td.fd, to, &vsb, unix.AT_SYMLINK_NOFOLLOW) == nil {
		links = uint64(vsb.Nlink)
	}
	err = asCaller(k.cred, func() error { return unix.Renameat(fd.fd, from, td.fd, to) })
	if err == nil {
		if victim != src {
			k.forget(victim, links)
		}
		k.s.tree.Moved(src, td.ref.Stamp, to)
		err = k.commitDir(fd, td)
	}
	if err != nil {
		st = statusOf(err)
		k.w.Uint32(uint32(st))
		return fail(st, fd, td)
	}
	k.w.Uint32(uint32(OK))
	return fail(OK, fd, td)
}

func (k *call) link() Status {
	fileFH := k.r.Opaque(maxHandle)
	dref, name, st := k.dirop()
	failNoFile := func(st Status, d *dir) Status {
		k.w.Uint32(uint32(st))
		k.w.Bool(false)
		if d == nil {
			putWcc(k.w, wcc{}, nil)
		} else {
			putWcc(k.w, wccOf(d.pre), k.fstat(d.fd, d.ref.Stamp))
		}
		return st
	}
	if st != OK {
		return failNoFile(st, nil)
	}
	d, st := k.openDirOp(dref)
	if st != OK {
		dref.Close()
		return failNoFile(st, nil)
	}
	defer d.close()
	fref, st := k.resolve(fileFH)
	if st != OK {
		return failNoFile(st, d)
	}
	defer fref.Close()
	if st := checkName(name); st != OK {
		return failNoFile(st, d)
	}
	if st := k.writable(); st != OK {
		return failNoFile(st, d)
	}
	err := asCaller(k.cred, func() error { return unix.Linkat(fref.Dir, fref.Name, d.fd, name, 0) })
	if err == nil {
		err = k.commitDir(d)
	}
	fa, _ := k.stat(fref)
	if err != nil {
		st = statusOf(err)
		k.w.Uint32(uint32(st))
		putPostOp(k.w, fa)
		putWcc(k.w, wccOf(d.pre), k.fstat(d.fd, d.ref.Stamp))
		return st
	}
	k.w.Uint32(uint32(OK))
	putPostOp(k.w, fa)
	putWcc(k.w, wccOf(d.pre), k.fstat(d.fd, d.ref.Stamp))
	return OK
}

// fdStamp is the Stamp of the open file fd (zero if it has none).
func fdStamp(fd int) fileid.Stamp {
	var buf [64]byte
	n, err := unix.Fgetxattr(fd, fileid.XattrName, buf[:])
	if err != nil {
		return fileid.Stamp{}
	}
	st, err := fileid.ParseStamp(buf[:n])
	if err != nil {
		return fileid.Stamp{}
	}
	return st
}
