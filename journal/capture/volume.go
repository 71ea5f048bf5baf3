package capture

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"ftnas/appliance/fileid"
	"ftnas/journal"
	"ftnas/kernel/changelog"
)

// Obj is the current state of one file on the master's volume.
type Obj struct {
	FID      string       // kernel file handle, as changelog.Change.FID
	Stamp    fileid.Stamp // zero from Volume.Inode
	Mode     uint32       // st_mode
	UID, GID uint32
	Rdev     uint64
	Size     int64
	Ctime    int64  // Unix nanoseconds
	Target   string // symbolic links
}

// IsDir reports whether o is a directory.
func (o Obj) IsDir() bool { return o.Mode&journal.ModeType == journal.ModeDir }

// DirRef names a directory of the volume by its handle and its Stamp.
type DirRef struct {
	FID   string
	Stamp fileid.Stamp
}

// Volume is the master's volume as the capture reads it: its window on the
// file system, so the translation is testable without one. Files are found
// by kernel handle, never by path, so a rename of a parent between an event
// and its translation does not lead astray. A file that is gone is ok ==
// false, not an error.
type Volume interface {
	// Lookup returns the entry name of directory dir, stamping it if it has
	// no Stamp yet. ok is false if the entry or the directory is gone.
	Lookup(dir DirRef, name string) (o Obj, ok bool, err error)
	// List returns the entry names of directory dir; ok is false if the
	// directory is gone.
	List(dir DirRef) (names []string, ok bool, err error)
	// Inode returns the state of the file with handle fid (without its
	// Stamp); ok is false if it has no name any more.
	Inode(fid string) (o Obj, ok bool, err error)
	// Locate returns a place the file with handle fid has now: the handle
	// of its directory, its name there and its volume-relative path. ok is
	// false if that cannot be told (gone, or not reachable below the
	// volume).
	Locate(fid string) (dirFID, name, rel string, ok bool, err error)
	// Removed tells the volume's index that the file with Stamp st is gone.
	Removed(st fileid.Stamp)
}

// FID encodes a kernel file handle the way changelog.Change.FID does.
func FID(handleType int32, handle []byte) string {
	return hex.EncodeToString([]byte(changelog.Handle{Type: handleType, Bytes: handle}.Key()))
}

// ParseFID decodes a FID into the handle's type and bytes.
func ParseFID(fid string) (int32, []byte, error) {
	b, err := hex.DecodeString(fid)
	if err != nil {
		return 0, nil, fmt.Errorf("capture: parse file handle %q: %w", fid, err)
	}
	if len(b) < 4 {
		return 0, nil, errors.New("capture: parse file handle: shorter than its type")
	}
	return int32(binary.LittleEndian.Uint32(b[:4])), b[4:], nil
}

// entryRef is an entry of a directory.
type entryRef struct {
	dir  DirRef
	name string
}

// prefetcher is a Volume that can look entries up ahead of the
// translation, several at once: every Lookup of each in the rest of the
// batch returns what was read then.
type prefetcher interface {
	Prefetch(entries []entryRef)
}

// prefetched is a Lookup's answer read ahead.
type prefetched struct {
	o  Obj
	ok bool
}

// inodeFetcher is a Volume that can read several files' inodes at once:
// Inodes returns what Inode would for each of fids, in their order.
type inodeFetcher interface {
	Inodes(fids []string) []inodeRead
}

// inodeRead is one answer of Inode.
type inodeRead struct {
	o   Obj
	ok  bool
	err error
}
