package journal

import (
	"errors"
	"fmt"
	"strings"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// Pruning (OpPrune): the standby removes the entries of a directory that
// the master's rescan did not list. Entries are removed without following
// symbolic links (a link is removed, never what it points to) and without
// leaving the directory's file system (a mount point below it is left
// alone, with a warning). The applier's temporary names in the prune's
// name range go too: between records there are none of its own in use,
// only entries it parked out of a new entry's way (clearWay) that no
// record claimed, and names an applier that died left. The directory
// keeps its times, as the master's did.
//
// The index is not told of pruned files: a pruned entry's Stamp may be the
// one this same rescan just gave a new name (a file renamed on the master
// while the standby was away is created again at its new name), and
// dropping it would make the next record naming it scan the volume. A
// stale index entry costs nothing until a lookup, which verifies it, and
// Reconcile drops it.

// maxPruneDepth bounds the recursion into a pruned directory (each level
// holds a descriptor).
const maxPruneDepth = 2048

// prune applies an OpPrune record.
func (a *FSApplier) prune(rec Record) error {
	if rec.File == a.rootStamp() {
		// The volume root holds the capture's and the applier's own
		// entries, which no record lists; the master never prunes it.
		a.log.Warn("journal apply: not pruning the volume root", "seq", rec.Seq)
		return nil
	}
	ref, err := a.cfg.Tree.Resolve(rec.File)
	if errors.Is(err, fileid.ErrStale) {
		return fmt.Errorf("directory %s: %w", rec.File, ErrNotFound) // nothing here to prune
	}
	if err != nil {
		return fmt.Errorf("directory %s: %w", rec.File, err)
	}
	defer ref.Close()
	dir, err := unix.Openat(ref.Dir, ref.Name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open directory %s (%s): %w", rec.File, ref.Rel, err)
	}
	defer unix.Close(dir)
	var dsb unix.Stat_t
	if err := unix.Fstat(dir, &dsb); err != nil {
		return fmt.Errorf("stat directory %s: %w", ref.Rel, err)
	}
	names, err := readDirNames(dir)
	if err != nil {
		return fmt.Errorf("list directory %s: %w", ref.Rel, err)
	}
	keep := make(map[string]bool)
	for _, n := range PruneNames(rec.Data) {
		keep[n] = true
	}
	removed := 0
	for _, name := range names {
		if name < rec.Name || rec.NewName != "" && name >= rec.NewName || keep[name] {
			continue
		}
		n, err := a.removeTree(dir, name, dsb.Dev, 0)
		removed += n
		if err != nil {
			a.count(func(s *FSApplyStats) { s.Pruned += uint64(removed) })
			return fmt.Errorf("prune %s/%s: %w", ref.Rel, name, err)
		}
		a.log.Debug("journal apply: pruned", "dir", ref.Rel, "name", name, "entries", n)
	}
	if removed == 0 {
		return nil
	}
	a.count(func(s *FSApplyStats) { s.Pruned += uint64(removed) })
	if err := unix.UtimesNanoAt(dir, ".", []unix.Timespec{dsb.Atim, dsb.Mtim}, 0); err != nil {
		return fmt.Errorf("keep the times of %s: %w", ref.Rel, err)
	}
	return nil
}

// rootStamp is the Stamp of the volume root, if the resolver tells it.
func (a *FSApplier) rootStamp() fileid.Stamp {
	if r, ok := a.cfg.Tree.(interface{ Root() fileid.Stamp }); ok {
		return r.Root()
	}
	return fileid.Stamp{}
}

// removeTree removes name in dir, a directory with everything below it,
// and returns how many entries it removed. It follows no symbolic link and
// stays on the file system dev: a directory of another one (a mount point)
// is left with a warning.
func (a *FSApplier) removeTree(dir int, name string, dev uint64, depth int) (int, error) {
	var sb unix.Stat_t
	if err := unix.Fstatat(dir, name, &sb, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return 0, nil
		}
		return 0, fmt.Errorf("stat %s: %w", name, err)
	}
	if sb.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := unix.Unlinkat(dir, name, 0); err != nil && err != unix.ENOENT {
			return 0, fmt.Errorf("remove %s: %w", name, err)
		}
		return 1, nil
	}
	if sb.Dev != dev {
		a.log.Warn("journal apply: not pruning a directory of another file system", "name", name)
		return 0, nil
	}
	if depth >= maxPruneDepth {
		return 0, fmt.Errorf("%s: deeper than %d", name, maxPruneDepth)
	}
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", name, err)
	}
	defer unix.Close(fd)
	var osb unix.Stat_t
	if err := unix.Fstat(fd, &osb); err != nil {
		return 0, fmt.Errorf("stat %s: %w", name, err)
	}
	if osb.Dev != sb.Dev || osb.Ino != sb.Ino {
		return 0, fmt.Errorf("%s changed while being pruned", name)
	}
	kids, err := readDirNames(fd)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", name, err)
	}
	n := 0
	for _, k := range kids {
		m, err := a.removeTree(fd, k, dev, depth+1)
		n += m
		if err != nil {
			return n, fmt.Errorf("%s/%w", name, err)
		}
	}
	if err := unix.Unlinkat(dir, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return n, fmt.Errorf("remove directory %s: %w", name, err)
	}
	return n + 1, nil
}

// readDirNames lists the directory fd (open for reading), without "." and
// "..".
func readDirNames(fd int) ([]string, error) {
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, err
	}
	var names []string
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// inTheWay reports whether a rename or link into a name failed because
// an entry is there that it cannot replace (a directory, or an entry of
// another type).
func inTheWay(err error) bool {
	return err == unix.EEXIST || err == unix.ENOTEMPTY || err == unix.EISDIR || err == unix.ENOTDIR
}

// clearWay clears name in dir, so that a record's new entry can take the
// name. The records name a place only when the master's model of the
// standby has it free: an entry there is one the standby kept from an
// older log (the master replaced it while the standby was away). It may
// still be needed: the master may have moved it elsewhere, and the
// description's create record for it there, further on, moves it (or a
// file below it) into place (move_linux.go) rather than making it anew,
// empty until a fetch and for good if the master died first. So a stamped
// entry is parked: renamed to a temporary name in dir, where the index
// finds it, until the rescan's prune of dir removes what is still parked
// there (prune: temporary names are the applier's leftovers between
// records). An entry with no stamp, which nothing can look up, is removed
// with everything below it; the directories keep (the source of a link or
// rename) must not lie below it.
func (a *FSApplier) clearWay(dir int, name string, keep ...int) error {
	if strings.HasPrefix(name, tempPrefix) {
		return fmt.Errorf("%s: the applier's own entry is in the way", name)
	}
	st, _, err := stampOf(dir, name)
	if err != nil {
		return err
	}
	if parked, err := a.park(dir, name, st, fileid.Stamp{}); err != nil || parked {
		return err
	}
	var dsb unix.Stat_t
	if err := unix.Fstat(dir, &dsb); err != nil {
		return fmt.Errorf("stat the directory of %s: %w", name, err)
	}
	base, err := readProcLink(dir)
	if err != nil {
		return err
	}
	victim := base + "/" + name
	for _, k := range keep {
		p, err := readProcLink(k)
		if err != nil {
			return err
		}
		if p == victim || strings.HasPrefix(p, victim+"/") {
			return fmt.Errorf("%s is in the way, and holds the record's source", name)
		}
	}
	n, err := a.removeTree(dir, name, dsb.Dev, 0)
	a.count(func(s *FSApplyStats) { s.Pruned += uint64(n) })
	if err != nil {
		return fmt.Errorf("clear %s out of the way: %w", name, err)
	}
	a.log.Info("journal apply: removed an entry of an older log in the way of a new one", "name", name, "entries", n)
	return nil
}

// park renames the entry name in dir, whose stamp the caller read as st,
// unless that is except, to a temporary name beside it and tells the
// index, and reports whether it did: not for no entry or an entry with no
// stamp (a zero st), nor in a directory with none or in the volume root,
// which no prune comes to clear (the directories on the way to a share's
// root are not pruned either: what is parked there stays, hidden, until
// it is cleared by hand).
//
// Besides clearWay, the records that put an entry at a name call it for
// what they would replace there (a rename over a file removes it): a
// file the master renamed away and replaced while the standby was away
// ("f" to "f~", then a new "f") is described at its new name further on,
// and is moved there from its parking instead of made anew.
func (a *FSApplier) park(dir int, name string, st, except fileid.Stamp) (bool, error) {
	if st.ID == 0 || st == except {
		return false, nil
	}
	dst, err := fileid.ReadStamp(dir, ".")
	if err != nil || dst == a.rootStamp() {
		return false, nil // the volume root is never pruned
	}
	tmp := a.tempName()
	if err := unix.Renameat(dir, name, dir, tmp); err != nil {
		return false, fmt.Errorf("park %s out of the way: %w", name, err)
	}
	a.cfg.Tree.Moved(st, dst, tmp)
	a.count(func(s *FSApplyStats) { s.Parked++ })
	a.log.Info("journal apply: parked an entry of an older log in the way of a new one until its directory's prune", "name", name, "as", tmp, "file", st)
	return true, nil
}

// readProcLink is the path of the directory open as fd.
func readProcLink(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlink(procFD(fd), buf)
	if err != nil {
		return "", fmt.Errorf("path of descriptor %d: %w", fd, err)
	}
	return string(buf[:n]), nil
}
