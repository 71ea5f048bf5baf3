package capture

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// xattrArgs is the kernel's struct xattr_args (getxattrat(2)): value is an
// __aligned_u64 holding the buffer's address. Declared as a pointer so the
// buffer stays visible to the garbage collector and the stack copier; only
// used where a pointer is 8 bytes (see stampReader).
type xattrArgs struct {
	value *byte
	size  uint32
	flags uint32
}

// stampReader reads Stamps by directory descriptor and name with
// getxattrat(2) (Linux 6.13): the kernel resolves the name relative to the
// descriptor, where fileid.ReadStamp goes through /proc/self/fd/N/name,
// whose walk through procfs costs more than the read itself. On a kernel
// without it (ENOSYS) or a 32-bit platform it falls back to
// fileid.ReadStamp for good. Safe for concurrent use.
type stampReader struct {
	fallback atomic.Bool
}

// read returns the Stamp of name in dfd (a symlink's own), or an error
// matching fileid.ErrNoStamp if it has none (or one that does not parse).
func (r *stampReader) read(dfd int, name string) (fileid.Stamp, error) {
	if !r.fallback.Load() {
		st, there, err := r.readAt(dfd, name)
		if there {
			return st, err
		}
		r.fallback.Store(true)
	}
	return fileid.ReadStamp(dfd, name)
}

// readAt is read with getxattrat; there is false where the kernel (or
// the platform) has none.
func (r *stampReader) readAt(dfd int, name string) (st fileid.Stamp, there bool, err error) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		return fileid.Stamp{}, false, nil
	}
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return fileid.Stamp{}, true, err
	}
	xn, err := unix.BytePtrFromString(fileid.XattrName)
	if err != nil {
		return fileid.Stamp{}, true, err
	}
	var buf [64]byte
	args := xattrArgs{value: &buf[0], size: uint32(len(buf))}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_GETXATTRAT, uintptr(dfd), uintptr(unsafe.Pointer(p)),
			unix.AT_SYMLINK_NOFOLLOW, uintptr(unsafe.Pointer(xn)), uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args))
		switch errno {
		case 0:
			st, perr := fileid.ParseStamp(buf[:n])
			if perr != nil {
				// Damaged or foreign: unstamped, as fileid reads it.
				return fileid.Stamp{}, true, errors.Join(fileid.ErrNoStamp, perr)
			}
			return st, true, nil
		case unix.EINTR:
			continue
		case unix.ENODATA, unix.ERANGE:
			return fileid.Stamp{}, true, fileid.ErrNoStamp
		case unix.ENOSYS:
			return fileid.Stamp{}, false, nil
		}
		return fileid.Stamp{}, true, fmt.Errorf("getxattrat %s: %w", name, errno)
	}
}
