package btrfs

import "encoding/binary"

// File handle types of btrfs (include/linux/exportfs.h) and the offsets of
// struct btrfs_fid's fields (fs/btrfs/export.h, packed, native endian).
const (
	FileIDWithoutParent    = 0x4d // objectid, root, gen
	FileIDWithParent       = 0x4e // … and the parent's objectid and gen
	FileIDWithParentRoot   = 0x4f // … and the parent's root
	fidRootOff             = 8
	fidParentRootOff       = 32
	fidSizeNonConnectable  = 20
	fidSizeConnectable     = 28
	fidSizeConnectableRoot = 40
)

// Handle is the part of a btrfs file handle that names the inode.
type Handle struct {
	Objectid uint64 // the inode number
	Root     uint64 // the subvolume tree's id
	Gen      uint32 // the inode's generation
}

// ParseHandle reads a btrfs file handle of type typ; ok is false if it is
// not one (another file system's, or too short).
func ParseHandle(typ int32, b []byte) (Handle, bool) {
	if !isBtrfs(typ, b) {
		return Handle{}, false
	}
	return Handle{
		Objectid: binary.NativeEndian.Uint64(b[0:]),
		Root:     binary.NativeEndian.Uint64(b[fidRootOff:]),
		Gen:      binary.NativeEndian.Uint32(b[16:]),
	}, true
}

func isBtrfs(typ int32, b []byte) bool {
	switch typ {
	case FileIDWithoutParent:
		return len(b) >= fidSizeNonConnectable
	case FileIDWithParent:
		return len(b) >= fidSizeConnectable
	case FileIDWithParentRoot:
		return len(b) >= fidSizeConnectableRoot
	}
	return false
}

// ReRoot returns a copy of the btrfs file handle b (of type typ) naming
// the same inode in subvolume tree to instead of from: the handle of a
// file's copy in a snapshot of from, or back. ok is false if b is no btrfs
// handle or not one of subvolume from. A parent's root (type
// FileIDWithParentRoot) equal to from is replaced too.
func ReRoot(typ int32, b []byte, from, to uint64) (out []byte, ok bool) {
	h, ok := ParseHandle(typ, b)
	if !ok || h.Root != from {
		return nil, false
	}
	out = append([]byte(nil), b...)
	binary.NativeEndian.PutUint64(out[fidRootOff:], to)
	if typ == FileIDWithParentRoot && binary.NativeEndian.Uint64(out[fidParentRootOff:]) == from {
		binary.NativeEndian.PutUint64(out[fidParentRootOff:], to)
	}
	return out, true
}
