package journal

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// Resolver finds files by Stamp on one volume and keeps its index current;
// *fileid.Tree is one.
type Resolver interface {
	Resolve(st fileid.Stamp) (*fileid.Ref, error)
	Moved(st, newDir fileid.Stamp, newName string)
	Removed(st fileid.Stamp)
	RootFD() int
}

// FSApplierConfig configures an FSApplier.
type FSApplierConfig struct {
	// Tree is the standby's volume. Its root must carry the master's root
	// Stamp (the initial sync copies it).
	Tree Resolver
	// Position is where the applied position is kept.
	Position *PositionFile
	// BlockSize is the delta block size (default DefaultBlockSize).
	BlockSize uint32
	Logger    *slog.Logger
}

// FSApplier applies records to the standby's volume (the Applier of a
// Receiver). Files get the master's Stamps, so handles agree on both nodes.
//
// Nothing half-applied shows under a file's final name: new entries are
// made under a temporary name, fully set up, then renamed into place; new
// contents are built in an anonymous copy of the file (a reflink clone where
// the file system can, else a copy), patched with the master's changed
// blocks, given the master's mode, owner, times and xattrs, made durable
// and then renamed over the file. Three exceptions: a file whose batch
// wrote a few small ranges of it is patched in place once the patch is in
// a redo log that a restart replays (patch_linux.go), so a crash leaves it
// patched, not half-patched; a larger write to a file with several hard
// links is patched in place (a rename would split its links); and
// truncate and single-attribute changes are applied in place because they
// are atomic.
//
// A batch (ApplyBatch, batch_linux.go) applies namespace records in order
// as they come, and defers what needs a fetch (writes without data, setattrs
// without values) to its end: one fetch per file however many records name
// it, fetched by several workers at once, the new copies made durable by one
// syncfs and then renamed into place. A prune record (prune_linux.go)
// removes the entries of a directory that the master's rescan did not list;
// the fetches deferred before it are done first.
//
// A standby that followed an older log applies a new one from its start
// over what it has: an entry already carrying the record's Stamp is kept,
// or moved to the record's name if it is elsewhere (move_linux.go);
// one in the way of a new entry (a directory, or an entry of another type,
// that the master replaced while the standby was away) is parked until the
// prune of its directory, so a record further on may still move it; a name
// holding a copy of a file that a link record names becomes a link to it.
type FSApplier struct {
	cfg    FSApplierConfig
	log    *slog.Logger
	syncFD int
	seq    atomic.Uint64 // temporary names
	tag    string        // temporary names: this applier's, random (tempName)
	cur    *pending      // the batch being applied (ApplyBatch's goroutine)
	inline *inlineSet    // its open working copies (inline_linux.go)
	pre    prefetches    // ranges fetched ahead of their batch (prefetch_linux.go)
	key    SumKey        // keys the delta's checksums; random, never stored
	// redo logs in-place patches (patch_linux.go); committed is the last
	// position committed, which its segments follow; patched: patches
	// were applied since.
	redo      redoLog
	committed Position
	patched   bool
	patchHeld atomic.Int64 // bytes of the patches the chunk being prepared holds

	mu        sync.Mutex
	stats     FSApplyStats
	holdUntil time.Time // see Hold
}

// FSApplyStats count what an FSApplier did.
type FSApplyStats struct {
	Records      uint64 // records applied
	Fetches      uint64 // fetch round trips
	BytesFetched uint64 // content bytes received
	Clones       uint64 // working copies made by reflink
	Copies       uint64 // working copies made by copying
	InlineCopies uint64 // working copies opened for inline writes (one per file and batch)
	Vanished     uint64 // records skipped because the master's file is gone
	Pruned       uint64 // entries removed by prunes or cleared out of a new entry's way (each below a directory too)
	Moved        uint64 // entries a create record found under another name and moved to its name (move_linux.go)
	Linked       uint64 // hard-linked files a create record found under another name and linked at its name
	Parked       uint64 // entries in a new entry's way renamed aside until their directory's prune (clearWay)
	Prefetched   uint64 // content bytes a batch took from prefetches (prefetch_linux.go)
	Patched      uint64 // files patched in place through the redo log (patch_linux.go)
}

// tempPrefix names the short-lived entries of the applier.
const tempPrefix = ".ftnas-apply."

// NewFSApplier returns an applier for cfg.
func NewFSApplier(cfg FSApplierConfig) (*FSApplier, error) {
	if cfg.Tree == nil || cfg.Position == nil {
		return nil, errors.New("journal: fs applier: tree and position are required")
	}
	if cfg.BlockSize == 0 {
		cfg.BlockSize = DefaultBlockSize
	}
	if !validBlockSize(cfg.BlockSize) {
		return nil, fmt.Errorf("journal: fs applier: block size %d: not a power of two in 4096..1048576", cfg.BlockSize)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	fd, err := unix.Openat(cfg.Tree.RootFD(), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("journal: fs applier: open volume root: %w", err)
	}
	a := &FSApplier{cfg: cfg, log: cfg.Logger, syncFD: fd, redo: redoLog{path: cfg.Position.path + ".redo", fd: -1}}
	var tag [8]byte
	_, err = rand.Read(a.key[:])
	if err == nil {
		_, err = rand.Read(tag[:])
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("journal: fs applier: random key and tag: %w", err)
	}
	a.tag = strconv.FormatUint(binary.BigEndian.Uint64(tag[:]), 36)
	if a.committed, err = cfg.Position.Load(); err == nil {
		err = a.replayRedo()
	}
	if err != nil {
		a.redo.close()
		unix.Close(fd)
		return nil, fmt.Errorf("journal: fs applier: %w", err)
	}
	return a, nil
}

// Close releases the applier's descriptors.
func (a *FSApplier) Close() error {
	a.redo.close()
	return unix.Close(a.syncFD)
}

// Stats returns the applier's counters.
func (a *FSApplier) Stats() FSApplyStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

func (a *FSApplier) count(f func(s *FSApplyStats)) {
	a.mu.Lock()
	f(&a.stats)
	a.mu.Unlock()
}

// Position implements Applier.
func (a *FSApplier) Position() (Position, error) { return a.cfg.Position.Load() }

// Commit implements Applier: it makes everything applied durable (syncfs of
// the volume), then saves pos.
func (a *FSApplier) Commit(pos Position) error {
	if err := unix.Syncfs(a.syncFD); err != nil {
		return fmt.Errorf("journal: fs applier: syncfs: %w", err)
	}
	if err := a.cfg.Position.Save(pos); err != nil {
		return err
	}
	// The redo log's segments follow the old position: stale now.
	a.committed, a.redo.off, a.patched = pos, 0, false
	return nil
}

// Apply implements Applier: a batch of one record.
func (a *FSApplier) Apply(ctx context.Context, rec Record, f Fetcher) error {
	_, err := a.ApplyBatch(ctx, []Record{rec}, f)
	return err
}

// applyNow applies rec at once (every record but those a batch defers).
func (a *FSApplier) applyNow(ctx context.Context, rec Record, f Fetcher) error {
	var err error
	switch rec.Op {
	case OpCreate, OpMkdir, OpSymlink:
		err = a.create(rec)
	case OpLink:
		err = a.link(rec)
	case OpRemove, OpRmdir:
		err = a.remove(rec)
	case OpRename:
		err = a.rename(rec)
	case OpWrite:
		err = a.write(rec)
	case OpTruncate:
		err = a.truncate(rec)
	case OpSetAttr:
		err = a.setAttr(ctx, rec, f)
	case OpSetXattr, OpRemoveXattr:
		err = a.xattr(ctx, rec, f)
	case OpPrune:
		err = a.prune(rec)
	case OpRescan:
		err = fmt.Errorf("rescan of share %d: the file-system applier cannot rescan: %w", rec.Share, ErrResync)
	default:
		err = fmt.Errorf("unknown op %d", rec.Op)
	}
	contentOp := rec.Op == OpWrite || rec.Op == OpTruncate || rec.Op == OpSetAttr || rec.Op == OpSetXattr || rec.Op == OpRemoveXattr
	if errors.Is(err, ErrNotFound) || contentOp && errors.Is(err, fileid.ErrStale) {
		// The master's file is gone; a later record removes it here.
		// A change to a file this standby no longer has (its stamp
		// resolves nowhere) is skipped like a deferred fetch of it
		// (batch_linux.go), not retried forever (chaos seed 98: an
		// inline write to such a file stopped replication).
		a.count(func(s *FSApplyStats) { s.Vanished++ })
		a.log.Debug("journal apply: file gone on the master", "seq", rec.Seq, "op", rec.Op, "file", rec.File)
		err = nil
	}
	if err != nil {
		return fmt.Errorf("journal: apply %s of %s: %w", rec.Op, rec.File, err)
	}
	return nil
}

// openDir opens the directory carrying st (O_PATH).
func (a *FSApplier) openDir(st fileid.Stamp) (int, error) {
	ref, err := a.cfg.Tree.Resolve(st)
	if err != nil {
		return -1, fmt.Errorf("directory %s: %w", st, err)
	}
	defer ref.Close()
	fd, err := unix.Openat(ref.Dir, ref.Name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open directory %s (%s): %w", st, ref.Rel, err)
	}
	return fd, nil
}

// stampOf reads the Stamp of name in dir; a missing entry or one without a
// Stamp is the zero Stamp.
func stampOf(dir int, name string) (fileid.Stamp, bool, error) {
	st, err := fileid.ReadStamp(dir, name)
	switch {
	case err == nil:
		return st, true, nil
	case errors.Is(err, fileid.ErrNoStamp):
		return fileid.Stamp{}, true, nil
	case errors.Is(err, unix.ENOENT):
		return fileid.Stamp{}, false, nil
	}
	return fileid.Stamp{}, false, err
}

// tempName is a new temporary name: this applier's random tag and a
// counter, so that names a dead applier left (made, not yet renamed into
// place, when the standby lost power) are never in the way of its
// successor's.
func (a *FSApplier) tempName() string {
	return tempPrefix + a.tag + "." + strconv.FormatUint(a.seq.Add(1), 36)
}

func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

func procAt(dir int, name string) string { return procFD(dir) + "/" + name }

// create makes a new entry under a temporary name, sets its Stamp, owner and
// mode, and renames it to its name; an entry the standby holds with the
// Stamp under another name is moved there instead (moveHeld).
func (a *FSApplier) create(rec Record) error {
	dir, err := a.openDir(rec.Parent)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	if st, _, err := stampOf(dir, rec.Name); err != nil {
		return err
	} else if st == rec.File {
		a.cfg.Tree.Moved(rec.File, rec.Parent, rec.Name)
		return nil // applied before
	}
	if moved, err := a.moveHeld(dir, rec); err != nil || moved {
		return err // held under another name: moved here (move_linux.go)
	}
	tmp := a.tempName()
	switch {
	case rec.Op == OpMkdir:
		err = unix.Mkdirat(dir, tmp, 0o700)
	case rec.Op == OpSymlink:
		err = unix.Symlinkat(rec.Target, dir, tmp)
	case rec.Mode&ModeType == ModeReg:
		var fd int
		fd, err = unix.Openat(dir, tmp, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			err = unix.Close(fd)
		}
	default:
		err = unix.Mknodat(dir, tmp, rec.Mode&ModeType|0o600, int(rec.Rdev))
	}
	if err != nil {
		return fmt.Errorf("make %s: %w", rec.Name, err)
	}
	undo := func(err error) error {
		flags := 0
		if rec.Op == OpMkdir {
			flags = unix.AT_REMOVEDIR
		}
		unix.Unlinkat(dir, tmp, flags)
		return err
	}
	p := procAt(dir, tmp)
	if err := unix.Lsetxattr(p, fileid.XattrName, rec.File.MarshalBinary(), 0); err != nil {
		return undo(fmt.Errorf("stamp %s: %w", rec.Name, err))
	}
	if err := unix.Fchownat(dir, tmp, int(rec.UID), int(rec.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return undo(fmt.Errorf("chown %s: %w", rec.Name, err))
	}
	if rec.Op != OpSymlink {
		if err := unix.Fchmodat(dir, tmp, rec.Mode&ModePerm, 0); err != nil {
			return undo(fmt.Errorf("chmod %s: %w", rec.Name, err))
		}
	}
	// Read again: moveHeld may have parked what was there.
	if cur, _, err := stampOf(dir, rec.Name); err != nil {
		return undo(err)
	} else if _, err := a.park(dir, rec.Name, cur, rec.File); err != nil {
		return undo(err)
	}
	err = unix.Renameat(dir, tmp, dir, rec.Name)
	if inTheWay(err) {
		// A directory, or an entry of another type, that the standby
		// kept from an older log (see clearWay).
		if cerr := a.clearWay(dir, rec.Name); cerr != nil {
			return undo(cerr)
		}
		err = unix.Renameat(dir, tmp, dir, rec.Name)
	}
	if err != nil {
		return undo(fmt.Errorf("rename into place as %s: %w", rec.Name, err))
	}
	a.cfg.Tree.Moved(rec.File, rec.Parent, rec.Name)
	return nil
}

func (a *FSApplier) link(rec Record) error {
	dir, err := a.openDir(rec.Parent)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	st, _, err := stampOf(dir, rec.Name)
	if err != nil {
		return err
	}
	ref, err := a.cfg.Tree.Resolve(rec.File)
	if err != nil {
		return fmt.Errorf("link source: %w", err)
	}
	defer ref.Close()
	if st == rec.File {
		if sameFile(ref.Dir, ref.Name, dir, rec.Name) {
			return nil // linked before
		}
		// A copy of the file that the standby kept from an older log
		// (a new log makes the file again at its first name): the
		// link takes its place, so the names stay one file.
		if err := a.linkHeld(ref, dir, rec.Name); err != nil {
			return fmt.Errorf("link %s over the copy at %s: %w", ref.Rel, rec.Name, err)
		}
		return nil
	}
	err = unix.Linkat(ref.Dir, ref.Name, dir, rec.Name, 0)
	if err == unix.EEXIST {
		// Another file the standby kept from an older log (see clearWay).
		if cerr := a.clearWay(dir, rec.Name, ref.Dir); cerr != nil {
			return cerr
		}
		err = unix.Linkat(ref.Dir, ref.Name, dir, rec.Name, 0)
	}
	if err != nil {
		return fmt.Errorf("link %s to %s: %w", ref.Rel, rec.Name, err)
	}
	return nil
}

// sameFile reports whether two entries are the same inode.
func sameFile(dirA int, nameA string, dirB int, nameB string) bool {
	var a, b unix.Stat_t
	return unix.Fstatat(dirA, nameA, &a, unix.AT_SYMLINK_NOFOLLOW) == nil &&
		unix.Fstatat(dirB, nameB, &b, unix.AT_SYMLINK_NOFOLLOW) == nil &&
		a.Dev == b.Dev && a.Ino == b.Ino
}

func (a *FSApplier) remove(rec Record) error {
	dir, err := a.openDir(rec.Parent)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	st, exists, err := stampOf(dir, rec.Name)
	if err != nil {
		return err
	}
	if !exists {
		return nil // removed before
	}
	if st != rec.File {
		a.log.Warn("journal apply: not removing an entry that is another file", "name", rec.Name, "has", st, "want", rec.File)
		return nil
	}
	var sb unix.Stat_t
	if err := unix.Fstatat(dir, rec.Name, &sb, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat %s: %w", rec.Name, err)
	}
	flags := 0
	if rec.Op == OpRmdir {
		flags = unix.AT_REMOVEDIR
	}
	if err := unix.Unlinkat(dir, rec.Name, flags); err != nil {
		return fmt.Errorf("remove %s: %w", rec.Name, err)
	}
	if rec.Op == OpRmdir || sb.Nlink <= 1 {
		a.removed(rec.File)
	}
	return nil
}

func (a *FSApplier) rename(rec Record) error {
	from, err := a.openDir(rec.Parent)
	if err != nil {
		return err
	}
	defer unix.Close(from)
	to, err := a.openDir(rec.NewParent)
	if err != nil {
		return err
	}
	defer unix.Close(to)
	st, _, err := stampOf(from, rec.Name)
	if err != nil {
		return err
	}
	if st != rec.File {
		if dst, _, err := stampOf(to, rec.NewName); err == nil && dst == rec.File {
			a.cfg.Tree.Moved(rec.File, rec.NewParent, rec.NewName)
			return nil // renamed before
		}
		return fmt.Errorf("rename: %s is not %s here (it is %q)", rec.Name, rec.File, st)
	}
	victim, _, err := stampOf(to, rec.NewName)
	if err != nil {
		return fmt.Errorf("rename %s to %s: %w", rec.Name, rec.NewName, err)
	}
	if victim == rec.File && (rec.Parent != rec.NewParent || rec.Name != rec.NewName) && sameFile(from, rec.Name, to, rec.NewName) {
		// Two names of one file: a create applied again linked a
		// hard-linked file back at the old name (move_linux.go), and
		// rename(2) of one link over another does nothing. The record
		// moved the name: the old one goes.
		if err := unix.Unlinkat(from, rec.Name, 0); err != nil {
			return fmt.Errorf("rename %s to %s, one file: remove %s: %w", rec.Name, rec.NewName, rec.Name, err)
		}
		a.cfg.Tree.Moved(rec.File, rec.NewParent, rec.NewName)
		return nil
	}
	parked, err := a.park(to, rec.NewName, victim, rec.File)
	if err != nil {
		return fmt.Errorf("rename %s to %s: %w", rec.Name, rec.NewName, err)
	}
	var vsb unix.Stat_t
	victimLast := !parked && victim.ID != 0 && victim != rec.File &&
		unix.Fstatat(to, rec.NewName, &vsb, unix.AT_SYMLINK_NOFOLLOW) == nil && (vsb.Nlink <= 1 || vsb.Mode&unix.S_IFMT == unix.S_IFDIR)
	err = unix.Renameat(from, rec.Name, to, rec.NewName)
	if inTheWay(err) {
		// A directory, or an entry of another type, that the standby
		// kept from an older log (see clearWay).
		if cerr := a.clearWay(to, rec.NewName, from); cerr != nil {
			return cerr
		}
		victimLast = false
		err = unix.Renameat(from, rec.Name, to, rec.NewName)
	}
	if err != nil {
		return fmt.Errorf("rename %s to %s: %w", rec.Name, rec.NewName, err)
	}
	a.cfg.Tree.Moved(rec.File, rec.NewParent, rec.NewName)
	if victimLast {
		a.removed(victim)
	}
	return nil
}

func (a *FSApplier) truncate(rec Record) error {
	ref, err := a.cfg.Tree.Resolve(rec.File)
	if err != nil {
		return err
	}
	defer ref.Close()
	fd, err := unix.Openat(ref.Dir, ref.Name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", ref.Rel, err)
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, int64(rec.Size)); err != nil {
		return fmt.Errorf("truncate %s to %d: %w", ref.Rel, rec.Size, err)
	}
	return nil
}

func (a *FSApplier) fetch(ctx context.Context, f Fetcher, q *FetchRequest) (*FetchReply, error) {
	p, err := f.Fetch(ctx, q)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, b := range p.Blocks {
		n += len(b.Data)
	}
	a.count(func(s *FSApplyStats) { s.Fetches++; s.BytesFetched += uint64(n) })
	return p, nil
}

// write applies a write record carrying its data (FlagInline): the bytes
// go into a working copy that replaces the file once durable, kept open
// for the batch's later writes to the file (inline_linux.go). Writes
// without data are deferred to the end of the batch (batch_linux.go).
func (a *FSApplier) write(rec Record) error {
	if rec.Flags&FlagInline == 0 {
		return fmt.Errorf("write without data outside a batch")
	}
	return a.writeInline(rec)
}

// workingCopy makes an anonymous file in dir holding src's contents (size
// bytes).
func (a *FSApplier) workingCopy(dir, src int, rel string, size int64) (int, error) {
	fd, err := unix.Openat(dir, ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return -1, fmt.Errorf("make a working copy of %s: %w", rel, err)
	}
	if size == 0 {
		return fd, nil // nothing to copy
	}
	if err := unix.IoctlFileClone(fd, src); err == nil {
		a.count(func(s *FSApplyStats) { s.Clones++ })
		return fd, nil
	}
	var off int64
	for {
		n, err := unix.CopyFileRange(src, &off, fd, nil, 1<<30, 0)
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("copy %s: %w", rel, err)
		}
		if n == 0 {
			break
		}
	}
	a.count(func(s *FSApplyStats) { s.Copies++ })
	return fd, nil
}

// setMeta gives fd the master's owner, mode, xattrs and times, in the order
// that keeps each: chown clears set-id bits and capabilities, and writes
// move the times.
func setMeta(fd int, attr Attr, xattrs []Xattr) error {
	if err := unix.Fchown(fd, int(attr.UID), int(attr.GID)); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, attr.Mode&ModePerm); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := syncXattrs(fdXattrs(fd), xattrs); err != nil {
		return err
	}
	return setTimes(procFD(fd), attr.Atime, attr.Mtime, 0)
}

// copyMeta gives work the owner, mode, xattrs and times of src.
func copyMeta(src, work int, sb *unix.Stat_t) error {
	xs, err := listXattrs(fdXattrs(src))
	if err != nil {
		return err
	}
	attr := Attr{UID: sb.Uid, GID: sb.Gid, Mode: sb.Mode, Atime: sb.Atim.Nano(), Mtime: sb.Mtim.Nano()}
	return setMeta(work, attr, xs)
}

func setTimes(path string, atime, mtime int64, flags int) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime), unix.NsecToTimespec(mtime)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, flags); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// publish links the anonymous file fd into dir under a temporary name and
// renames it over name. The directory keeps its times: on the master, the
// contents changed, not the directory.
func (a *FSApplier) publish(dir, fd int, name string) error {
	var dsb unix.Stat_t
	dirErr := unix.Fstat(dir, &dsb)
	tmp := a.tempName()
	if err := unix.Linkat(unix.AT_FDCWD, procFD(fd), dir, tmp, unix.AT_SYMLINK_FOLLOW); err != nil {
		return fmt.Errorf("link the new copy of %s: %w", name, err)
	}
	if err := unix.Renameat(dir, tmp, dir, name); err != nil {
		unix.Unlinkat(dir, tmp, 0)
		return fmt.Errorf("rename the new copy over %s: %w", name, err)
	}
	if dirErr == nil {
		if err := unix.UtimesNanoAt(dir, ".", []unix.Timespec{dsb.Atim, dsb.Mtim}, 0); err != nil {
			return fmt.Errorf("keep the times of the directory of %s: %w", name, err)
		}
	}
	return nil
}

func (a *FSApplier) setAttr(ctx context.Context, rec Record, f Fetcher) error {
	ref, err := a.cfg.Tree.Resolve(rec.File)
	if err != nil {
		return err
	}
	defer ref.Close()
	var sb unix.Stat_t
	if err := unix.Fstatat(ref.Dir, ref.Name, &sb, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat %s: %w", ref.Rel, err)
	}
	isLink := sb.Mode&unix.S_IFMT == unix.S_IFLNK
	mask, attr := rec.AttrMask, Attr{Mode: rec.Mode, UID: rec.UID, GID: rec.GID, Atime: rec.Atime, Mtime: rec.Mtime}
	var xattrs []Xattr
	if mask == 0 {
		p, err := a.fetch(ctx, f, &FetchRequest{Share: rec.Share, File: rec.File, What: FetchAttr | FetchXattrs})
		if err != nil {
			return err
		}
		mask, attr, xattrs = knownAttrs, p.Attr, p.Xattrs
	}
	uid, gid := -1, -1
	if mask&AttrUID != 0 {
		uid = int(attr.UID)
	}
	if mask&AttrGID != 0 {
		gid = int(attr.GID)
	}
	if uid != -1 || gid != -1 {
		if err := unix.Fchownat(ref.Dir, ref.Name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %s: %w", ref.Rel, err)
		}
	}
	if mask&AttrMode != 0 && !isLink {
		if err := unix.Fchmodat(ref.Dir, ref.Name, attr.Mode&ModePerm, 0); err != nil {
			return fmt.Errorf("chmod %s: %w", ref.Rel, err)
		}
	}
	if xattrs != nil {
		if err := syncXattrs(pathXattrs(ref.ProcPath()), xattrs); err != nil {
			return fmt.Errorf("%s: %w", ref.Rel, err)
		}
	}
	if mask&(AttrAtime|AttrMtime) != 0 {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		if mask&AttrAtime != 0 {
			ts[0] = unix.NsecToTimespec(attr.Atime)
		}
		if mask&AttrMtime != 0 {
			ts[1] = unix.NsecToTimespec(attr.Mtime)
		}
		if err := unix.UtimesNanoAt(ref.Dir, ref.Name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times of %s: %w", ref.Rel, err)
		}
	}
	return nil
}

func (a *FSApplier) xattr(ctx context.Context, rec Record, f Fetcher) error {
	if rec.Name == fileid.XattrName {
		return nil // the stamp is this package's, never a record's
	}
	ref, err := a.cfg.Tree.Resolve(rec.File)
	if err != nil {
		return err
	}
	defer ref.Close()
	p := ref.ProcPath()
	value, present := rec.Data, rec.Op == OpSetXattr
	if rec.Op == OpSetXattr && rec.Flags&FlagInline == 0 {
		rep, err := a.fetch(ctx, f, &FetchRequest{Share: rec.Share, File: rec.File, What: FetchXattrs})
		if err != nil {
			return err
		}
		present = false
		for _, x := range rep.Xattrs {
			if x.Name == rec.Name {
				value, present = x.Value, true
			}
		}
	}
	if present {
		if err := unix.Lsetxattr(p, rec.Name, value, 0); err != nil {
			return fmt.Errorf("set xattr %s of %s: %w", rec.Name, ref.Rel, err)
		}
		return nil
	}
	if err := unix.Lremovexattr(p, rec.Name); err != nil && err != unix.ENODATA {
		return fmt.Errorf("remove xattr %s of %s: %w", rec.Name, ref.Rel, err)
	}
	return nil
}

// xattrOps reach the extended attributes of one file, by descriptor or by
// path (not following a final symlink).
type xattrOps struct {
	list   func(dest []byte) (int, error)
	get    func(name string, dest []byte) (int, error)
	set    func(name string, value []byte) error
	remove func(name string) error
}

func pathXattrs(p string) xattrOps {
	return xattrOps{
		list:   func(d []byte) (int, error) { return unix.Llistxattr(p, d) },
		get:    func(n string, d []byte) (int, error) { return unix.Lgetxattr(p, n, d) },
		set:    func(n string, v []byte) error { return unix.Lsetxattr(p, n, v, 0) },
		remove: func(n string) error { return unix.Lremovexattr(p, n) },
	}
}

func fdXattrs(fd int) xattrOps {
	return xattrOps{
		list:   func(d []byte) (int, error) { return unix.Flistxattr(fd, d) },
		get:    func(n string, d []byte) (int, error) { return unix.Fgetxattr(fd, n, d) },
		set:    func(n string, v []byte) error { return unix.Fsetxattr(fd, n, v, 0) },
		remove: func(n string) error { return unix.Fremovexattr(fd, n) },
	}
}

// listXattrs returns a file's extended attributes without the Stamp, sorted
// by name.
func listXattrs(x xattrOps) ([]Xattr, error) {
	names, err := x.names()
	if err != nil {
		return nil, err
	}
	xs := make([]Xattr, 0, len(names))
	for _, n := range names {
		if n == fileid.XattrName {
			continue
		}
		v, err := x.value(n)
		if err == unix.ENODATA {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("get xattr %s: %w", n, err)
		}
		xs = append(xs, Xattr{Name: n, Value: v})
	}
	SortXattrs(xs)
	if len(xs) > MaxXattrs {
		return nil, fmt.Errorf("%d xattrs exceed %d", len(xs), MaxXattrs)
	}
	return xs, nil
}

func (x xattrOps) names() ([]string, error) {
	for {
		n, err := x.list(nil)
		if err != nil {
			return nil, fmt.Errorf("list xattrs: %w", err)
		}
		buf := make([]byte, n)
		n, err = x.list(buf)
		if err == unix.ERANGE {
			continue // grew meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list xattrs: %w", err)
		}
		var names []string
		start := 0
		for i, c := range buf[:n] {
			if c == 0 {
				if i > start {
					names = append(names, string(buf[start:i]))
				}
				start = i + 1
			}
		}
		return names, nil
	}
}

func (x xattrOps) value(name string) ([]byte, error) {
	for {
		n, err := x.get(name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = x.get(name, buf)
		if err == unix.ERANGE {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// syncXattrs makes a file's xattrs (the Stamp aside) exactly want.
func syncXattrs(x xattrOps, want []Xattr) error {
	have, err := listXattrs(x)
	if err != nil {
		return err
	}
	keep := make(map[string]bool, len(want))
	for _, w := range want {
		keep[w.Name] = true
	}
	for _, h := range have {
		if !keep[h.Name] {
			if err := x.remove(h.Name); err != nil && err != unix.ENODATA {
				return fmt.Errorf("remove xattr %s: %w", h.Name, err)
			}
		}
	}
	for _, w := range want {
		if w.Name == fileid.XattrName {
			continue
		}
		if err := x.set(w.Name, w.Value); err != nil {
			return fmt.Errorf("set xattr %s: %w", w.Name, err)
		}
	}
	return nil
}

// fdReaderAt reads a descriptor with pread.
type fdReaderAt int

func (fd fdReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := unix.Pread(int(fd), p, off)
	if err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
