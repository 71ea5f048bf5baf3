package fileid

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// readStamp reads the Stamp of name in the directory dirFD without following
// a symlink at name.
func readStamp(dirFD int, name string) (Stamp, error) {
	return lreadStamp(procPath(dirFD, name))
}

// lreadStamp reads the Stamp of the file at p, not following a final symlink.
func lreadStamp(p string) (Stamp, error) {
	var buf [64]byte
	for {
		n, err := unix.Lgetxattr(p, XattrName, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.ENODATA || err == unix.ERANGE {
			return Stamp{}, ErrNoStamp
		}
		if err != nil {
			return Stamp{}, fmt.Errorf("fileid: read %s of %s: %w", XattrName, p, err)
		}
		st, perr := ParseStamp(buf[:n])
		if perr != nil {
			// A damaged or foreign value: treat as unstamped, so it is
			// replaced rather than trusted.
			return Stamp{}, errors.Join(ErrNoStamp, perr)
		}
		return st, nil
	}
}

// ReadStamp reads the Stamp of name in the directory dirFD.
func ReadStamp(dirFD int, name string) (Stamp, error) { return readStamp(dirFD, name) }

func sameInode(dirA int, nameA string, dirB int, nameB string) bool {
	var a, b unix.Stat_t
	if unix.Fstatat(dirA, nameA, &a, unix.AT_SYMLINK_NOFOLLOW) != nil ||
		unix.Fstatat(dirB, nameB, &b, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}
