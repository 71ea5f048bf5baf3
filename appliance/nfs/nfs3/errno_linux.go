package nfs3

import (
	"errors"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// statusOf maps an error from the file system to the nfsstat3 a client
// understands; ENOTEMPTY is NFS3ERR_NOTEMPTY, not NFS3ERR_IO.
func statusOf(err error) Status {
	if err == nil {
		return OK
	}
	if errors.Is(err, fileid.ErrStale) {
		return ErrStale
	}
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return ErrIO
	}
	switch errno {
	case unix.EPERM:
		return ErrPerm
	case unix.ENOENT:
		return ErrNoEnt
	case unix.ENXIO:
		return ErrNXIO
	case unix.EACCES:
		return ErrAcces
	case unix.EEXIST:
		return ErrExist
	case unix.EXDEV:
		return ErrXDev
	case unix.ENODEV:
		return ErrNoDev
	case unix.ENOTDIR:
		return ErrNotDir
	case unix.EISDIR:
		return ErrIsDir
	case unix.EINVAL:
		return ErrInval
	case unix.EFBIG:
		return ErrFBig
	case unix.ENOSPC:
		return ErrNoSpc
	case unix.EROFS:
		return ErrROFS
	case unix.EMLINK:
		return ErrMLink
	case unix.ENAMETOOLONG:
		return ErrNameTooLong
	case unix.ENOTEMPTY:
		return ErrNotEmpty
	case unix.EDQUOT:
		return ErrDQuot
	case unix.ESTALE:
		return ErrStale
	case unix.ELOOP:
		// A symlink where the server resolved a directory: the path the
		// handle led to is not what it was.
		return ErrStale
	case unix.EOPNOTSUPP:
		return ErrNotSupp
	case unix.EAGAIN:
		return ErrJukebox
	case unix.EBADF:
		return ErrBadHandle
	}
	return ErrIO
}
