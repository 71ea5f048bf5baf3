package btrfs

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Inode numbers of btrfs (fs/btrfs/btrfs_tree.h).
const (
	// SubvolRootIno is the inode number of every subvolume's root
	// directory (BTRFS_FIRST_FREE_OBJECTID).
	SubvolRootIno = 256
	// EmptySubvolDirIno is the inode number of the empty directory that
	// stands in a snapshot for a subvolume nested in its source
	// (BTRFS_EMPTY_SUBVOL_DIR_OBJECTID).
	EmptySubvolDirIno = 2
)

// From include/uapi/linux/btrfs.h.
const (
	ioctlMagic     = 0x94
	pathNameMax    = 4087 // BTRFS_PATH_NAME_MAX
	subvolNameMax  = 4039 // BTRFS_SUBVOL_NAME_MAX
	subvolRdonly   = 1 << 1
	volArgsSize    = 4096 // sizeof(struct btrfs_ioctl_vol_args)
	volArgsV2Size  = 4096 // sizeof(struct btrfs_ioctl_vol_args_v2)
	iocSnapCreate2 = 23
	iocSnapDestroy = 15
)

// volArgs is struct btrfs_ioctl_vol_args.
type volArgs struct {
	Fd   int64
	Name [pathNameMax + 1]byte
}

// volArgsV2 is struct btrfs_ioctl_vol_args_v2: fd, transid, flags, a union
// of 32 bytes (size and qgroup_inherit, unused here), then a union of the
// name and the devid or subvolid.
type volArgsV2 struct {
	Fd      int64
	Transid uint64
	Flags   uint64
	Unused  [4]uint64
	Name    [subvolNameMax + 1]byte
}

// iow is the kernel's _IOW(type, nr, size).
func iow(typ, nr, size uintptr) uintptr {
	const write = 1
	return write<<30 | size<<16 | typ<<8 | nr
}

// The ioctl numbers.
var (
	// BTRFS_IOC_SNAP_CREATE_V2 = _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2)
	iocSnapCreateV2 = iow(ioctlMagic, iocSnapCreate2, unsafe.Sizeof(volArgsV2{}))
	// BTRFS_IOC_SNAP_DESTROY = _IOW(0x94, 15, struct btrfs_ioctl_vol_args)
	iocSnapDestroyV1 = iow(ioctlMagic, iocSnapDestroy, unsafe.Sizeof(volArgs{}))
)

// IsSubvolRoot reports whether the directory open as fd is on btrfs and is
// the root of a subvolume; if not, why says why (for a log line).
func IsSubvolRoot(fd int) (ok bool, why string, err error) {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return false, "", fmt.Errorf("btrfs: statfs: %w", err)
	}
	if fs.Type != unix.BTRFS_SUPER_MAGIC {
		return false, fmt.Sprintf("not btrfs (file system magic %#x)", fs.Type), nil
	}
	var sb unix.Stat_t
	if err := unix.Fstat(fd, &sb); err != nil {
		return false, "", fmt.Errorf("btrfs: stat: %w", err)
	}
	if sb.Ino != SubvolRootIno {
		return false, fmt.Sprintf("not the root of a btrfs subvolume (inode %d)", sb.Ino), nil
	}
	return true, "", nil
}

func setName(dst []byte, name string) error {
	if name == "" || len(name) >= len(dst) || name == "." || name == ".." {
		return fmt.Errorf("btrfs: bad subvolume name %q", name)
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || name[i] == 0 {
			return fmt.Errorf("btrfs: bad subvolume name %q", name)
		}
	}
	copy(dst, name)
	return nil
}

// Snapshot makes a read-only snapshot of the subvolume whose root is open
// as src, named name in the directory open as dir (which must be on the
// same btrfs).
func Snapshot(src, dir int, name string) error {
	var a volArgsV2
	if err := setName(a.Name[:], name); err != nil {
		return err
	}
	a.Fd = int64(src)
	a.Flags = subvolRdonly
	if err := ioctl(dir, iocSnapCreateV2, unsafe.Pointer(&a)); err != nil {
		return fmt.Errorf("btrfs: snapshot %s: %w", name, err)
	}
	return nil
}

// Destroy deletes the subvolume (or snapshot) name in the directory open
// as dir, with its contents, read-only or not.
func Destroy(dir int, name string) error {
	var a volArgs
	if err := setName(a.Name[:], name); err != nil {
		return err
	}
	if err := ioctl(dir, iocSnapDestroyV1, unsafe.Pointer(&a)); err != nil {
		return fmt.Errorf("btrfs: destroy subvolume %s: %w", name, err)
	}
	return nil
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return e
	}
}
