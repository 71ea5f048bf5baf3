package fileid

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Stamping: giving files their identity and keeping the index told of
// their names.

// StampAt returns the Stamp of name in the directory dirFD (whose own Stamp
// is dir), stamping the file if it has none yet, re-issuing a Stamp copied
// from another file, and recording the location in the index.
func (t *Tree) StampAt(dirFD int, dir Stamp, name string) (Stamp, error) {
	st, _, err := t.stampAt(dirFD, dir, name)
	return st, err
}

// StampAtFresh is StampAt that also says whether the Stamp was given or
// re-issued just now (not yet on stable storage: see SyncStamp), for a
// caller that syncs many at once.
func (t *Tree) StampAtFresh(dirFD int, dir Stamp, name string) (Stamp, bool, error) {
	return t.stampAt(dirFD, dir, name)
}

// StampAtSync is StampAt for an identity about to be handed out in an NFS
// file handle: a Stamp given or re-issued here is on stable storage before
// it returns, so a power cut cannot give the file another identity at the
// next start (its handles would go stale). A Stamp the file already had
// costs nothing more.
func (t *Tree) StampAtSync(dirFD int, dir Stamp, name string) (Stamp, error) {
	st, fresh, err := t.stampAt(dirFD, dir, name)
	if err == nil && fresh {
		err = SyncStamp(dirFD, name)
	}
	if err != nil {
		return Stamp{}, err
	}
	return st, nil
}

// SyncStamp puts the Stamp just written on name (in dirFD) on stable
// storage: an fsync of the file or directory itself, or of the whole file
// system for other types (a symlink cannot be opened to fsync, a device
// must not be opened).
func SyncStamp(dirFD int, name string) error {
	var sb unix.Stat_t
	if err := unix.Fstatat(dirFD, name, &sb, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("fileid: sync the stamp of %s: %w", name, err)
	}
	if t := sb.Mode & unix.S_IFMT; t == unix.S_IFREG || t == unix.S_IFDIR {
		fd, err := unix.Openat(dirFD, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Fsync(fd)
			unix.Close(fd)
		}
		if err != nil {
			return fmt.Errorf("fileid: sync the stamp of %s: %w", name, err)
		}
		return nil
	}
	// dirFD may be O_PATH, which syncfs refuses: open the directory.
	dfd, err := unix.Openat(dirFD, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		err = unix.Syncfs(dfd)
		unix.Close(dfd)
	}
	if err != nil {
		return fmt.Errorf("fileid: sync the stamp of %s: %w", name, err)
	}
	return nil
}

func (t *Tree) stampAt(dirFD int, dir Stamp, name string) (Stamp, bool, error) {
	st, err := readStamp(dirFD, name)
	if errors.Is(err, ErrNoStamp) {
		st, err = t.stampNew(dirFD, name)
		if err != nil {
			return Stamp{}, false, err
		}
		t.idx.Put(st.ID, Loc{Parent: dir.ID, Name: name})
		return st, true, nil
	}
	if err != nil {
		return Stamp{}, false, err
	}
	loc, ok, err := t.idx.Get(st.ID)
	if err != nil {
		return Stamp{}, false, err
	}
	here := Loc{Parent: dir.ID, Name: name}
	if ok && loc == here {
		return st, false, nil
	}
	if ok && st != t.rootSt {
		// Does the indexed location still carry st? Then this is a hard
		// link (same inode: keep) or a copy that kept the xattr (re-issue).
		if rel, perr := t.indexPath(st.ID); perr == nil {
			if ref, still := t.verify(rel, st); still {
				same := sameInode(ref.Dir, ref.Name, dirFD, name)
				ref.Close()
				if same {
					return st, false, nil
				}
				nst, err := t.restamp(dirFD, name)
				if err != nil {
					return Stamp{}, false, err
				}
				t.log.Info("re-issued a copied file identity", "old", st, "new", nst, "name", name)
				t.idx.Put(nst.ID, here)
				return nst, true, nil
			}
		}
	}
	// Moved outside nasd (or the index lost it): record where it is now.
	t.idx.Put(st.ID, here)
	return st, false, nil
}

// Stamp gives a file just created by nasd a new identity and indexes it.
func (t *Tree) Stamp(dirFD int, dir Stamp, name string) (Stamp, error) {
	st, err := t.stampNew(dirFD, name)
	if err != nil {
		return Stamp{}, err
	}
	t.idx.Put(st.ID, Loc{Parent: dir.ID, Name: name})
	return st, nil
}

// StampNew is StampAt for a file that is likely new to the volume (one the
// change log just saw created, or moved in): it stamps the file unless it
// has a Stamp (XATTR_CREATE) and only then reads the Stamp, as StampAt
// does. A new file costs one system call instead of StampAt's two; one that
// has a Stamp costs a failed write more.
func (t *Tree) StampNew(dirFD int, dir Stamp, name string) (Stamp, error) {
	st, err := t.alloc.New()
	if err != nil {
		return Stamp{}, err
	}
	err = writeStamp(dirFD, name, st.MarshalBinary(), unix.XATTR_CREATE)
	if errors.Is(err, unix.EEXIST) {
		t.alloc.Unused(st)
		return t.StampAt(dirFD, dir, name)
	}
	if err != nil {
		return Stamp{}, fmt.Errorf("fileid: set %s on %s: %w", XattrName, name, err)
	}
	t.idx.Put(st.ID, Loc{Parent: dir.ID, Name: name})
	return st, nil
}

// Moved records a rename done by nasd.
func (t *Tree) Moved(st Stamp, newDir Stamp, newName string) {
	t.gone.remove(st)
	t.idx.Put(st.ID, Loc{Parent: newDir.ID, Name: newName})
}

// Removed records that the last name of st is gone: resolving st answers
// ErrStale from then on without scanning the volume, until Moved puts it
// somewhere again.
func (t *Tree) Removed(st Stamp) {
	t.gone.add(st)
	t.idx.Delete(st.ID)
}

// Gone reports whether the last name of st was removed (Removed), and st
// not put anywhere since.
func (t *Tree) Gone(st Stamp) bool { return t.gone.has(st) }

// stampNew gives name a new Stamp unless it has one: two stampers in one
// process (the NFS server that made the file, and the change-log capture
// that saw it appear) race for a new file, and the first one's Stamp must
// win, or the file would change identity under the other's feet. The
// loser adopts the winner's Stamp.
func (t *Tree) stampNew(dirFD int, name string) (Stamp, error) {
	return t.setStamp(dirFD, name, unix.XATTR_CREATE)
}

// restamp replaces name's Stamp (a copy that carried another file's).
func (t *Tree) restamp(dirFD int, name string) (Stamp, error) {
	return t.setStamp(dirFD, name, unix.XATTR_REPLACE)
}

func (t *Tree) setStamp(dirFD int, name string, flags int) (Stamp, error) {
	st, err := t.alloc.New()
	if err != nil {
		return Stamp{}, err
	}
	err = writeStamp(dirFD, name, st.MarshalBinary(), flags)
	if errors.Is(err, unix.EEXIST) {
		return readStamp(dirFD, name)
	}
	if err != nil {
		return Stamp{}, fmt.Errorf("fileid: set %s on %s: %w", XattrName, name, err)
	}
	return st, nil
}
