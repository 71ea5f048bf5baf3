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
