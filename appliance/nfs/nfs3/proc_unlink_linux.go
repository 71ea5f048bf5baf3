package nfs3

import (
	"errors"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// REMOVE, RMDIR, RENAME, LINK.

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
