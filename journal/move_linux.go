package journal

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// Moves on create. A create, mkdir or symlink record names a file by its
// Stamp; when the standby already holds that Stamp under another name, the
// record is applied by moving that entry to the record's name, contents,
// children and all, instead of making a new, empty one there:
//
//   - a new log describes the master's volume from its start; a file the
//     master renamed while this standby was away or behind is described at
//     its new name, and the rescan's prune then removes the old one. A new
//     empty entry lost the file's data on the standby until the deferred
//     fetch refilled it, and for good if the master died first (chaos
//     seed 89: a master renamed a file, then died before the fetch);
//   - a standby that crashed before its commit applies a create record
//     again after a rename that moved its file on: the record moves it back
//     (the rename applied again moves it on), and no second, empty entry
//     carries the Stamp.
//
// The entry is found through the index alone (no scan of the volume for a
// Stamp that is new, as most created ones are). It is moved only when it is
// what the record makes: of the same type, a symbolic link with the same
// target, a device with the same number, and a directory not to go below
// itself. Otherwise the record makes a new entry, as it always did. A
// regular file with several links is not moved but linked at the record's
// name: its other names are for the description's link records to keep
// and its prunes to remove, and until then they hold the same contents
// (made anew, the file was empty under its new name until the fetch, and
// for good had the master died first). The record's owner and mode are
// applied before the move, so the entry shows under its new name as the
// record says; an entry in the way at the name is replaced or cleared as
// for a new entry.

// lookuper finds a Stamp through its index alone (*fileid.Tree): Resolve
// would scan the whole volume for every new Stamp.
type lookuper interface {
	Lookup(st fileid.Stamp) (*fileid.Ref, error)
}

// recType is the file type (S_IFMT bits) a create, mkdir or symlink record
// makes.
func recType(rec Record) uint32 {
	switch rec.Op {
	case OpMkdir:
		return unix.S_IFDIR
	case OpSymlink:
		return unix.S_IFLNK
	}
	return rec.Mode & ModeType
}

// moveHeld applies a create, mkdir or symlink record by moving the entry
// that already carries rec.File to rec.Name in dir (the directory rec.Parent,
// which holds no entry carrying rec.File under that name). It reports
// whether it did; false with no error leaves the record to make a new entry.
func (a *FSApplier) moveHeld(dir int, rec Record) (bool, error) {
	l, ok := a.cfg.Tree.(lookuper)
	if !ok {
		return false, nil
	}
	ref, err := l.Lookup(rec.File)
	if errors.Is(err, fileid.ErrStale) {
		return false, nil // new here, as most are
	}
	if err != nil {
		a.log.Warn("journal apply: cannot look up a created file; making it anew", "file", rec.File, "name", rec.Name, "err", err)
		return false, nil
	}
	defer ref.Close()
	if ref.Name == "." {
		return false, nil // the volume root is never moved
	}
	var sb unix.Stat_t
	if err := unix.Fstatat(ref.Dir, ref.Name, &sb, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, fmt.Errorf("stat %s to move it to %s: %w", ref.Rel, a.relAt(dir, rec.Name), err)
	}
	if why := unmovable(ref, &sb, rec); why != "" {
		a.log.Debug("journal apply: not moving the entry holding a created file", "file", rec.File,
			"from", ref.Rel, "to", rec.Name, "parent", rec.Parent, "because", why)
		return false, nil
	}
	from, to := ref.Rel, a.relAt(dir, rec.Name)
	linked := sb.Mode&unix.S_IFMT == unix.S_IFREG && sb.Nlink > 1
	// The record's owner and mode, before the entry shows under its new
	// name (as a new entry gets them before its rename into place).
	if err := unix.Fchownat(ref.Dir, ref.Name, int(rec.UID), int(rec.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, fmt.Errorf("chown %s to move it to %s: %w", from, to, err)
	}
	if rec.Op != OpSymlink {
		if err := unix.Fchmodat(ref.Dir, ref.Name, rec.Mode&ModePerm, 0); err != nil {
			return false, fmt.Errorf("chmod %s to move it to %s: %w", from, to, err)
		}
	}
	victim, _, err := stampOf(dir, rec.Name)
	if err != nil {
		return false, fmt.Errorf("move %s to %s: %w", from, to, err)
	}
	parked, err := a.park(dir, rec.Name, victim, rec.File)
	if err != nil {
		return false, fmt.Errorf("move %s to %s: %w", from, to, err)
	}
	var vsb unix.Stat_t
	victimLast := !parked && victim.ID != 0 && victim != rec.File &&
		unix.Fstatat(dir, rec.Name, &vsb, unix.AT_SYMLINK_NOFOLLOW) == nil && (vsb.Nlink <= 1 || vsb.Mode&unix.S_IFMT == unix.S_IFDIR)
	if linked {
		err = a.linkHeld(ref, dir, rec.Name)
	} else {
		err = unix.Renameat(ref.Dir, ref.Name, dir, rec.Name)
	}
	if !linked && inTheWay(err) {
		// A directory, or an entry of another type, kept from an older
		// log. It may hold the entry being moved: that goes out of it
		// first, to a temporary name beside it.
		victimLast = false
		err = a.moveOverWay(ref, dir, rec.Name, to)
	}
	switch {
	case err == unix.EINVAL || err == unix.EXDEV:
		// A directory cannot go below itself, nor an entry to another
		// file system (a mount below the volume): the record makes a
		// new entry, as before.
		a.log.Debug("journal apply: cannot move the entry holding a created file", "file", rec.File, "from", from, "to", to, "err", err)
		return false, nil
	case err != nil:
		return false, fmt.Errorf("move %s to %s: %w", from, to, err)
	}
	a.cfg.Tree.Moved(rec.File, rec.Parent, rec.Name)
	if victimLast {
		a.removed(victim)
	}
	if linked {
		a.count(func(s *FSApplyStats) { s.Linked++ })
		a.log.Debug("journal apply: linked the hard-linked file holding a created file", "file", rec.File, "from", from, "to", to, "links", sb.Nlink)
		return true, nil
	}
	a.count(func(s *FSApplyStats) { s.Moved++ })
	a.log.Debug("journal apply: moved the entry holding a created file", "file", rec.File, "from", from, "to", to)
	return true, nil
}

// linkHeld gives the regular file ref one more name, name in dir, through a
// temporary name beside it, replacing what is at name (an entry in the way
// that a rename cannot replace is cleared first). EXDEV links nothing and
// is returned as it is.
func (a *FSApplier) linkHeld(ref *fileid.Ref, dir int, name string) error {
	tmp := a.tempName()
	if err := unix.Linkat(ref.Dir, ref.Name, dir, tmp, 0); err != nil {
		if err == unix.EXDEV {
			return err
		}
		return fmt.Errorf("link to a temporary name: %w", err)
	}
	err := unix.Renameat(dir, tmp, dir, name)
	if inTheWay(err) {
		if err = a.clearWay(dir, name); err == nil {
			err = unix.Renameat(dir, tmp, dir, name)
		}
	}
	if err != nil {
		unix.Unlinkat(dir, tmp, 0)
		return fmt.Errorf("link from a temporary name: %w", err)
	}
	return nil
}

// moveOverWay moves ref to name in dir, where an entry that a rename cannot
// replace is in the way: the entry goes to a temporary name in dir, what is
// in the way is cleared, and the temporary name becomes name. EINVAL (a
// directory that would go below itself) and EXDEV move nothing and are
// returned as they are. Should a later step fail, the entry goes back where
// it was.
func (a *FSApplier) moveOverWay(ref *fileid.Ref, dir int, name, to string) error {
	tmp := a.tempName()
	if err := unix.Renameat(ref.Dir, ref.Name, dir, tmp); err != nil {
		if err == unix.EINVAL || err == unix.EXDEV {
			return err
		}
		return fmt.Errorf("to a temporary name beside %s: %w", to, err)
	}
	if err := a.clearWay(dir, name); err != nil {
		return a.moveBack(ref, dir, tmp, err)
	}
	if err := unix.Renameat(dir, tmp, dir, name); err != nil {
		return a.moveBack(ref, dir, tmp, fmt.Errorf("from a temporary name: %w", err))
	}
	return nil
}

// moveBack undoes moveOverWay's first step after err. An entry that cannot
// go back keeps its temporary name, which the index is told of, so the
// record applied again finds it.
func (a *FSApplier) moveBack(ref *fileid.Ref, dir int, tmp string, err error) error {
	if berr := unix.Renameat(dir, tmp, ref.Dir, ref.Name); berr != nil {
		if dst, _, serr := stampOf(dir, tmp); serr == nil && dst == ref.Stamp {
			if pst, perr := fileid.ReadStamp(dir, "."); perr == nil {
				a.cfg.Tree.Moved(ref.Stamp, pst, tmp)
			}
		}
		return fmt.Errorf("%w (and back to %s: %v)", err, ref.Rel, berr)
	}
	return err
}

// unmovable tells why the entry ref (stat sb) is not what rec makes, or ""
// when it is.
func unmovable(ref *fileid.Ref, sb *unix.Stat_t, rec Record) string {
	typ := sb.Mode & unix.S_IFMT
	if typ != recType(rec) {
		return fmt.Sprintf("type %o, the record makes %o", typ, recType(rec))
	}
	switch typ {
	case unix.S_IFCHR, unix.S_IFBLK:
		if sb.Rdev != rec.Rdev {
			return fmt.Sprintf("device %#x, the record makes %#x", sb.Rdev, rec.Rdev)
		}
	case unix.S_IFLNK:
		target, err := readlinkAt(ref.Dir, ref.Name)
		if err != nil {
			return fmt.Sprintf("target unreadable: %v", err)
		}
		if target != rec.Target {
			return fmt.Sprintf("target %q, the record's is %q", target, rec.Target)
		}
	}
	return ""
}

// readlinkAt reads the target of the symbolic link name in dir.
func readlinkAt(dir int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dir, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// relAt is the volume-relative path of name in dir, for messages; name alone
// if it cannot be told.
func (a *FSApplier) relAt(dir int, name string) string {
	root, err := readProcLink(a.cfg.Tree.RootFD())
	if err != nil {
		return name
	}
	p, err := readProcLink(dir)
	if err != nil {
		return name
	}
	if p == root {
		return name
	}
	rel, ok := strings.CutPrefix(p, root+"/")
	if !ok {
		return name
	}
	return path.Join(rel, name)
}
