package capture

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"ftnas/appliance/fileid"
	"ftnas/kernel/btrfs"

	"golang.org/x/sys/unix"
)

// Ways the description (the first batch) is made, as Stats.Description
// tells them.
const (
	DescribedSnapshot = "snapshot" // from a read-only btrfs snapshot of the volume
	DescribedWalk     = "walk"     // by walking the live volume
)

// snapName is the snapshot of the description of log id.
func snapName(logID uint64) string { return SnapPrefix + strconv.FormatUint(logID, 10) }

// openSnapshot makes a read-only snapshot of the volume for the
// description, if the volume is a btrfs subvolume's root; else (or if it
// fails) it returns nil and why, and the description walks the live
// volume.
func (c *Capture) openSnapshot() (*snapVolume, string) {
	if c.cfg.NoSnapshot {
		return nil, "Config.NoSnapshot"
	}
	ok, why, err := btrfs.IsSubvolRoot(c.vol.mountFD)
	if err != nil {
		return nil, err.Error()
	}
	if !ok {
		return nil, why
	}
	name := snapName(c.cfg.Log.ID())
	if err := btrfs.Snapshot(c.vol.mountFD, c.vol.mountFD, name); err != nil {
		return nil, err.Error()
	}
	sv, err := newSnapVolume(c.vol, name)
	if err != nil {
		if derr := btrfs.Destroy(c.vol.mountFD, name); derr != nil {
			c.log.Error("capture: snapshot left behind", "name", name, "err", derr)
		}
		return nil, err.Error()
	}
	return sv, ""
}

// removeSnapshots destroys the snapshots a crashed description left in the
// volume root. An entry with the prefix that is no subvolume is left, with
// a warning: it is no snapshot of the capture's.
func (c *Capture) removeSnapshots() {
	ents, err := os.ReadDir(c.vol.root)
	if err != nil {
		c.log.Warn("capture: list the volume root for old snapshots", "err", err)
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), SnapPrefix) {
			continue
		}
		var sb unix.Stat_t
		if err := unix.Fstatat(c.vol.mountFD, e.Name(), &sb, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		if sb.Mode&unix.S_IFMT != unix.S_IFDIR || sb.Ino != btrfs.SubvolRootIno {
			c.log.Warn("capture: not a snapshot, left alone", "name", e.Name())
			continue
		}
		if err := btrfs.Destroy(c.vol.mountFD, e.Name()); err != nil {
			c.log.Warn("capture: remove an old snapshot", "name", e.Name(), "err", err)
			continue
		}
		c.log.Info("capture: removed a snapshot left by an earlier run", "name", e.Name())
	}
}

// snapVolume is the Volume of the description made from a snapshot: the
// model's handles are the live volume's, and each one is turned into the
// same inode's handle in the snapshot (btrfs.ReRoot: a snapshot keeps the
// inode numbers and generations), so names, types, stamps and times are
// read from the snapshot, and the Objs it returns carry the live handles.
// The records name files by Stamp and directory entries by name, so they
// are the same as those of a walk of the live volume had it stood still.
//
// What the snapshot cannot give is read live: a file without a Stamp is
// stamped on the live volume (the snapshot is read-only), if it is still
// there under the same name (else it moved or went since the snapshot, and
// its events place it later); a subvolume nested in the volume, which a
// snapshot shows as an empty directory, is read live with all it holds;
// Locate (for parked entries) is the live volume's.
type snapVolume struct {
	live     *fsVolume
	name     string // the snapshot's name in the volume root
	liveRoot uint64 // subvolume tree ids
	snapRoot uint64
	dirs     map[string]int    // snapshot directories opened (O_PATH), by live FID
	seen     map[uint64]string // Stamp ID → live FID, of the stamps read from the snapshot
	nested   int               // nested subvolumes read live
	stamped  int               // files stamped on the live volume
}

func newSnapVolume(live *fsVolume, name string) (*snapVolume, error) {
	rootOf := func(dfd int, name string) (uint64, error) {
		h, _, err := unix.NameToHandleAt(dfd, name, 0)
		if err != nil {
			return 0, fmt.Errorf("capture: handle of the snapshot: %w", err)
		}
		bh, ok := btrfs.ParseHandle(h.Type(), h.Bytes())
		if !ok || bh.Objectid != btrfs.SubvolRootIno {
			return 0, fmt.Errorf("capture: handle of the snapshot: type %#x is not of a btrfs subvolume root", h.Type())
		}
		return bh.Root, nil
	}
	lr, err := rootOf(live.mountFD, ".")
	if err != nil {
		return nil, err
	}
	sr, err := rootOf(live.mountFD, name)
	if err != nil {
		return nil, err
	}
	if lr == sr {
		return nil, errors.New("capture: the snapshot has the volume's subvolume id")
	}
	return &snapVolume{live: live, name: name, liveRoot: lr, snapRoot: sr, dirs: map[string]int{}, seen: map[uint64]string{}}, nil
}

// Close destroys the snapshot.
func (v *snapVolume) Close() error {
	for fid, fd := range v.dirs {
		unix.Close(fd)
		delete(v.dirs, fid)
	}
	return btrfs.Destroy(v.live.mountFD, v.name)
}

// toSnap is the snapshot's handle of the live file fid; ok is false if
// the snapshot has no copy of it (a nested subvolume's).
func (v *snapVolume) toSnap(fid string) (*unix.FileHandle, bool) {
	typ, b, err := ParseFID(fid)
	if err != nil {
		return nil, false
	}
	sb, ok := btrfs.ReRoot(typ, b, v.liveRoot, v.snapRoot)
	if !ok {
		return nil, false
	}
	h := unix.NewFileHandle(typ, sb)
	return &h, true
}

// open opens the snapshot's copy of the live file fid; ok is false if it
// has none there.
func (v *snapVolume) open(h *unix.FileHandle, flags int) (int, bool, error) {
	fd, ok, err := openByHandle(v.live.mountFD, *h, flags)
	if err != nil {
		return -1, false, fmt.Errorf("in the snapshot: %w", err)
	}
	return fd, ok, nil
}

func (v *snapVolume) openDir(fid string, h *unix.FileHandle) (int, bool, error) {
	if fd, ok := v.dirs[fid]; ok {
		return fd, true, nil
	}
	fd, ok, err := v.open(h, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil || !ok {
		return -1, ok, err
	}
	if len(v.dirs) >= maxDirs {
		for k, d := range v.dirs {
			unix.Close(d)
			delete(v.dirs, k)
		}
	}
	v.dirs[fid] = fd
	return fd, true, nil
}

// Lookup implements Volume.
func (v *snapVolume) Lookup(dir DirRef, name string) (Obj, bool, error) {
	dh, ok := v.toSnap(dir.FID)
	if !ok {
		return v.live.Lookup(dir, name) // in a nested subvolume
	}
	dfd, ok, err := v.openDir(dir.FID, dh)
	if err != nil || !ok {
		return Obj{}, false, err
	}
	var sb unix.Stat_t
	if err := unix.Fstatat(dfd, name, &sb, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if gone(err) {
			return Obj{}, false, nil
		}
		return Obj{}, false, fmt.Errorf("stat %s in the snapshot: %w", name, err)
	}
	if sb.Mode&unix.S_IFMT == unix.S_IFDIR && sb.Ino == btrfs.EmptySubvolDirIno {
		v.nested++
		return v.live.Lookup(dir, name)
	}
	h, _, err := unix.NameToHandleAt(dfd, name, 0)
	if err != nil {
		return Obj{}, false, fmt.Errorf("handle of %s in the snapshot: %w", name, err)
	}
	lb, ok := btrfs.ReRoot(h.Type(), h.Bytes(), v.snapRoot, v.liveRoot)
	if !ok {
		return Obj{}, false, fmt.Errorf("handle of %s in the snapshot: not of the snapshot", name)
	}
	o := objOf(&sb)
	o.FID = FID(h.Type(), lb)
	if sb.Mode&unix.S_IFMT == unix.S_IFLNK {
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(dfd, name, buf)
		if err != nil {
			return Obj{}, false, fmt.Errorf("readlink %s in the snapshot: %w", name, err)
		}
		o.Target = string(buf[:n])
	}
	st, err := fileid.ReadStamp(dfd, name)
	if err == nil {
		if fid, ok := v.seen[st.ID]; !ok || fid == o.FID {
			v.seen[st.ID] = o.FID
			o.Stamp = st
			return o, true, nil
		}
		// Another file had this Stamp (a copy that kept the xattr): the
		// live volume's index tells which keeps it, as in a walk.
	} else if !errors.Is(err, fileid.ErrNoStamp) {
		return Obj{}, false, fmt.Errorf("stamp of %s in the snapshot: %w", name, err)
	}
	return v.stampLive(dir, name, o)
}

// stampLive stamps o (name in dir, read from the snapshot) on the live
// volume, as a walk would, if the live volume still has it at that name;
// ok is false if not (its events place it). The ctime is the live one
// after stamping, so the capture's own stamping gives no record later: the
// record shipping o has the standby fetch the live state, newer still.
func (v *snapVolume) stampLive(dir DirRef, name string, o Obj) (Obj, bool, error) {
	dfd, ok, err := v.live.openDir(dir.FID)
	if err != nil || !ok {
		return Obj{}, false, err
	}
	same := func() (bool, error) {
		h, _, err := unix.NameToHandleAt(dfd, name, 0)
		if err != nil {
			if gone(err) {
				return false, nil
			}
			return false, fmt.Errorf("handle of %s: %w", name, err)
		}
		return FID(h.Type(), h.Bytes()) == o.FID, nil
	}
	if ok, err := same(); err != nil || !ok {
		return Obj{}, false, err
	}
	st, err := v.live.tree.StampAt(dfd, dir.Stamp, name)
	if err != nil {
		if gone(err) {
			return Obj{}, false, nil
		}
		return Obj{}, false, fmt.Errorf("stamp %s: %w", name, err)
	}
	var sb unix.Stat_t
	if err := unix.Fstatat(dfd, name, &sb, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if gone(err) {
			return Obj{}, false, nil
		}
		return Obj{}, false, fmt.Errorf("stat %s: %w", name, err)
	}
	if ok, err := same(); err != nil || !ok {
		return Obj{}, false, err
	}
	v.stamped++
	v.seen[st.ID] = o.FID
	o.Stamp, o.Ctime = st, sb.Ctim.Nano()
	return o, true, nil
}

// List implements Volume.
func (v *snapVolume) List(dir DirRef) ([]string, bool, error) {
	h, ok := v.toSnap(dir.FID)
	if !ok {
		return v.live.List(dir)
	}
	fd, ok, err := v.open(h, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil || !ok {
		return nil, false, err
	}
	names, err := readNames(fd)
	if err != nil {
		return nil, false, fmt.Errorf("in the snapshot: %w", err)
	}
	return names, true, nil
}

// Inode implements Volume.
func (v *snapVolume) Inode(fid string) (Obj, bool, error) {
	h, ok := v.toSnap(fid)
	if !ok {
		return v.live.Inode(fid)
	}
	fd, ok, err := v.open(h, unix.O_PATH)
	if err != nil || !ok {
		return Obj{}, false, err
	}
	o, ok, err := statObj(fd, fid)
	if err != nil {
		return Obj{}, false, fmt.Errorf("in the snapshot: %w", err)
	}
	return o, ok, nil
}

// Locate implements Volume: where the live volume has the file (only
// parked entries, placed after the description, need it).
func (v *snapVolume) Locate(fid string) (string, string, string, bool, error) {
	return v.live.Locate(fid)
}

// Removed implements Volume.
func (v *snapVolume) Removed(st fileid.Stamp) { v.live.Removed(st) }
