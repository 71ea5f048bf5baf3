package fileid

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// readStamp reads the Stamp of name in the directory dirFD without following
// a symlink at name: with getxattrat, or through /proc where the kernel has
// none.
func readStamp(dirFD int, name string) (Stamp, error) {
	var buf [64]byte
	n, there, err := getxattrAt(dirFD, name, XattrName, buf[:])
	if !there {
		return lreadStamp(procPath(dirFD, name))
	}
	return parseRead(buf[:n], name, err)
}

// parseRead is the Stamp in a value read from the xattr of file p, or the
// read's error.
func parseRead(v []byte, p string, err error) (Stamp, error) {
	if err == unix.ENODATA || err == unix.ERANGE {
		return Stamp{}, ErrNoStamp
	}
	if err != nil {
		return Stamp{}, fmt.Errorf("fileid: read %s of %s: %w", XattrName, p, err)
	}
	st, perr := ParseStamp(v)
	if perr != nil {
		// A damaged or foreign value: treat as unstamped, so it is
		// replaced rather than trusted.
		return Stamp{}, errors.Join(ErrNoStamp, perr)
	}
	return st, nil
}

// writeStamp sets the xattr of name in dirFD (not following a final
// symlink) to v: with setxattrat, or through /proc where the kernel has
// none.
func writeStamp(dirFD int, name string, v []byte, flags int) error {
	if there, err := setxattrAt(dirFD, name, XattrName, v, flags); there {
		return err
	}
	return unix.Lsetxattr(procPath(dirFD, name), XattrName, v, flags)
}

// lreadStamp reads the Stamp of the file at p, not following a final symlink.
func lreadStamp(p string) (Stamp, error) {
	var buf [64]byte
	for {
		n, err := unix.Lgetxattr(p, XattrName, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			n = 0
		}
		return parseRead(buf[:n], p, err)
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
