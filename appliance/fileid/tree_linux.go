package fileid

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// maxDepth bounds a walk up the index, guarding against loops in a damaged
// index.
const maxDepth = 4096

// Tree resolves Stamps to files on one volume and stamps new files.
type Tree struct {
	root   string
	rootFD int
	rootSt Stamp
	idx    *Index
	alloc  *Allocator
	log    *slog.Logger
	scanMu sync.Mutex
	gone   goneSet // removed by nasd: resolved without a scan (gone.go)
}

// Ref is a resolved file: an O_PATH descriptor of its parent directory and
// its name there, so every operation on it is relative to a directory the
// kernel resolved beneath the volume without following symlinks.
type Ref struct {
	Dir   int    // parent directory (O_PATH); the volume root's own fd for the root
	Name  string // name in Dir; "." for the volume root
	Rel   string // volume-relative path, "." for the root
	Stamp Stamp
	own   bool
}

// Close releases the parent directory descriptor.
func (r *Ref) Close() {
	if r.own && r.Dir >= 0 {
		unix.Close(r.Dir)
		r.Dir = -1
	}
}

// ProcPath names the file through its parent's descriptor, for the calls that
// have no *at form (lgetxattr, lsetxattr).
func (r *Ref) ProcPath() string { return procPath(r.Dir, r.Name) }

func procPath(dir int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dir) + "/" + name
}

// OpenTree opens the volume at root, stamping its top directory if needed.
func OpenTree(root string, idx *Index, alloc *Allocator, log *slog.Logger) (*Tree, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("fileid: open volume %s: %w", root, err)
	}
	fd, err := unix.Open(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("fileid: open volume %s: %w", abs, err)
	}
	t := &Tree{root: abs, rootFD: fd, idx: idx, alloc: alloc, log: log}
	st, err := readStamp(fd, ".")
	if errors.Is(err, ErrNoStamp) {
		st, err = t.stampNew(fd, ".")
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fileid: stamp volume root %s: %w", abs, err)
	}
	t.rootSt = st
	idx.Put(st.ID, Loc{Parent: 0, Name: "."})
	return t, nil
}

// Close releases the volume descriptor.
func (t *Tree) Close() error { return unix.Close(t.rootFD) }

// Root returns the volume root's Stamp.
func (t *Tree) Root() Stamp { return t.rootSt }

// RootFD is an O_PATH descriptor of the volume root.
func (t *Tree) RootFD() int { return t.rootFD }

// Path returns the absolute path of a volume-relative path.
func (t *Tree) Path(rel string) string { return filepath.Join(t.root, rel) }

// OpenDir opens the directory at rel beneath the volume, refusing symlinks in
// any component. flags are added to O_DIRECTORY|O_CLOEXEC.
func (t *Tree) OpenDir(rel string, flags int) (int, error) {
	return t.openBeneath(rel, flags|unix.O_DIRECTORY)
}

func (t *Tree) openBeneath(rel string, flags int) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(t.rootFD, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// Resolve finds the file carrying st and returns a Ref to it. It never returns
// a file carrying another Stamp: a location the index gives is checked against
// the file's xattr, and when it does not match the volume is scanned for st.
func (t *Tree) Resolve(st Stamp) (*Ref, error) {
	if st == t.rootSt {
		return &Ref{Dir: t.rootFD, Name: ".", Rel: ".", Stamp: st}, nil
	}
	rel, err := t.indexPath(st.ID)
	if err == nil {
		if ref, ok := t.verify(rel, st); ok {
			return ref, nil
		}
	} else if !errors.Is(err, ErrStale) {
		return nil, err
	} else if t.gone.has(st) {
		return nil, ErrStale // its last name was removed: nothing to scan for
	}
	// The index is stale (a change made outside nasd, or a crash): scan.
	rel, err = t.find(st)
	if err != nil {
		return nil, err
	}
	if ref, ok := t.verify(rel, st); ok {
		return ref, nil
	}
	return nil, ErrStale
}

// Lookup is Resolve without the scan: it finds st where the index says it
// is, and returns ErrStale when the index does not lead to a file carrying
// st. It is for callers that ask about Stamps most of which no file here
// carries (the standby's applier, asking whether it already holds a file a
// record creates), where Resolve would read the whole volume for each. The
// index is right after Reconcile and is kept right by nasd's own changes,
// so a file nasd knows is found.
func (t *Tree) Lookup(st Stamp) (*Ref, error) {
	if st == t.rootSt {
		return &Ref{Dir: t.rootFD, Name: ".", Rel: ".", Stamp: st}, nil
	}
	rel, err := t.indexPath(st.ID)
	if err != nil {
		return nil, err
	}
	if ref, ok := t.verify(rel, st); ok {
		return ref, nil
	}
	return nil, ErrStale
}

// verify opens rel's parent and checks the file there carries st.
func (t *Tree) verify(rel string, st Stamp) (*Ref, bool) {
	dir, name := path.Split(rel)
	if dir == "" {
		dir = "."
	}
	fd, err := t.OpenDir(dir, unix.O_PATH)
	if err != nil {
		return nil, false
	}
	got, err := readStamp(fd, name)
	if err != nil || got != st {
		unix.Close(fd)
		return nil, false
	}
	return &Ref{Dir: fd, Name: name, Rel: rel, Stamp: st, own: true}, true
}

// indexPath builds the volume-relative path of id from the index.
func (t *Tree) indexPath(id uint64) (string, error) {
	var parts []string
	for depth := 0; ; depth++ {
		if depth > maxDepth {
			return "", fmt.Errorf("fileid: index path of %d: deeper than %d (loop?)", id, maxDepth)
		}
		if id == t.rootSt.ID {
			break
		}
		loc, ok, err := t.idx.Get(id)
		if err != nil {
			return "", err
		}
		if !ok || loc.Parent == 0 {
			return "", ErrStale
		}
		parts = append(parts, loc.Name)
		id = loc.Parent
	}
	if len(parts) == 0 {
		return ".", nil
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, "/"), nil
}

// errFound stops a scan.
var errFound = errors.New("found")

// find scans the volume for the file carrying st, fixing the index for every
// stamped file it passes (one scan repairs many entries).
func (t *Tree) find(st Stamp) (string, error) {
	t.scanMu.Lock()
	defer t.scanMu.Unlock()
	// Another scan may have repaired the index meanwhile.
	if rel, err := t.indexPath(st.ID); err == nil {
		if ref, ok := t.verify(rel, st); ok {
			ref.Close()
			return rel, nil
		}
	}
	var found string
	err := t.walk(func(rel string, parent Stamp, name string, got Stamp, _ fs.DirEntry) (Stamp, error) {
		if got.ID != 0 && parent.ID != 0 {
			t.idx.Put(got.ID, Loc{Parent: parent.ID, Name: name})
		}
		if got == st {
			found = rel
			return got, errFound
		}
		return got, nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return "", fmt.Errorf("fileid: scan for %v: %w", st, err)
	}
	if found == "" {
		return "", ErrStale
	}
	t.log.Info("index repaired by scan", "id", st.ID, "path", found)
	return found, nil
}

// walk visits every file below the root with its parent's Stamp; files whose
// stamp cannot be read are passed with a zero Stamp. fn returns the Stamp the
// entry has after the visit, which its children then see as their parent's.
func (t *Tree) walk(fn func(rel string, parent Stamp, name string, st Stamp, d fs.DirEntry) (Stamp, error)) error {
	stamps := map[string]Stamp{".": t.rootSt}
	return filepath.WalkDir(t.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == t.root {
				return err
			}
			t.log.Warn("scan: skipping unreadable entry", "path", p, "err", err)
			return nil
		}
		if p == t.root {
			return nil
		}
		rel, _ := filepath.Rel(t.root, p)
		dir, name := filepath.Split(rel)
		if dir == "" && d.IsDir() && strings.HasPrefix(name, SnapPrefix) {
			// A snapshot of the volume (the capture's description): every
			// stamp again, read-only. Never a file's home.
			return fs.SkipDir
		}
		parent := stamps[filepath.Clean(dir)]
		st, serr := lreadStamp(p)
		if serr != nil {
			st = Stamp{}
		}
		got, err := fn(rel, parent, name, st, d)
		if err != nil {
			return err
		}
		if d.IsDir() {
			stamps[rel] = got
		}
		return nil
	})
}

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

// ReconcileStats says what a reconciling scan did.
type ReconcileStats struct {
	Files, Stamped, Reissued, Dropped int
}

// scanned is one file seen by Reconcile.
type scanned struct {
	rel, dir, name string
	st             Stamp
	inode          inodeKey
	ctime          int64
}

type inodeKey struct{ dev, ino uint64 }

// Reconcile walks the whole volume: it stamps files made while nasd was down,
// re-issues identities duplicated by copies, re-indexes everything and drops
// index entries of files that are gone. Of the files sharing a copied
// identity, the one the index knows keeps it (else the one changed longest
// ago: a copy made with cp -a gets a new ctime), so handles clients hold
// keep naming the original.
func (t *Tree) Reconcile(ctx context.Context) (ReconcileStats, error) {
	t.scanMu.Lock()
	defer t.scanMu.Unlock()
	var rs ReconcileStats

	// Pass 1: what is there.
	var files []scanned
	byID := make(map[uint64][]int)
	err := filepath.WalkDir(t.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == t.root {
				return err
			}
			t.log.Warn("scan: skipping unreadable entry", "path", p, "err", err)
			return nil
		}
		if p == t.root {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var sb unix.Stat_t
		if err := unix.Lstat(p, &sb); err != nil {
			return nil // gone meanwhile
		}
		rel, _ := filepath.Rel(t.root, p)
		dir, name := filepath.Split(rel)
		f := scanned{rel: rel, dir: filepath.Clean(dir), name: name,
			inode: inodeKey{sb.Dev, sb.Ino}, ctime: sb.Ctim.Nano()}
		if st, err := lreadStamp(p); err == nil && st != t.rootSt {
			f.st = st
			byID[st.ID] = append(byID[st.ID], len(files))
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return rs, fmt.Errorf("fileid: reconcile %s: %w", t.root, err)
	}
	rs.Files = len(files)
	stampOf := map[string]Stamp{".": t.rootSt}
	for _, f := range files {
		stampOf[f.rel] = f.st
	}

	// Decide which inode keeps each identity carried by several inodes.
	for id, idxs := range byID {
		inodes := map[inodeKey]bool{}
		for _, i := range idxs {
			inodes[files[i].inode] = true
		}
		if len(inodes) < 2 {
			continue // one file, or hard links of it
		}
		keep := files[idxs[0]].inode
		loc, known, _ := t.idx.Get(id)
		best := int64(1<<63 - 1)
		for _, i := range idxs {
			f := files[i]
			if known && stampOf[f.dir].ID == loc.Parent && f.name == loc.Name {
				keep = f.inode
				break
			}
			if f.ctime < best {
				best, keep = f.ctime, f.inode
			}
		}
		for _, i := range idxs {
			if files[i].inode != keep {
				files[i].st = Stamp{}
				rs.Reissued++
			}
		}
	}

	// Pass 2: stamp what has no identity (one stamp per inode, so hard
	// links agree), then index every file under its parent's final stamp.
	fresh := map[inodeKey]Stamp{}
	for i := range files {
		f := &files[i]
		if f.st.ID != 0 {
			continue
		}
		if st, ok := fresh[f.inode]; ok {
			f.st = st
			continue
		}
		st, err := t.alloc.New()
		if err != nil {
			return rs, err
		}
		if err := unix.Lsetxattr(t.Path(f.rel), XattrName, st.MarshalBinary(), 0); err != nil {
			t.log.Warn("scan: cannot stamp", "path", f.rel, "err", err)
			continue
		}
		fresh[f.inode] = st
		f.st = st
		rs.Stamped++
	}
	seen := map[uint64]bool{t.rootSt.ID: true}
	for _, f := range files {
		stampOf[f.rel] = f.st
	}
	for _, f := range files {
		parent := stampOf[f.dir]
		if f.st.ID == 0 || parent.ID == 0 {
			continue
		}
		if seen[f.st.ID] {
			continue // another name of a hard-linked file; one location is enough
		}
		seen[f.st.ID] = true
		t.idx.Put(f.st.ID, Loc{Parent: parent.ID, Name: f.name})
	}
	var drop []uint64
	if err := t.idx.All(func(id uint64, _ Loc) error {
		if !seen[id] {
			drop = append(drop, id)
		}
		return nil
	}); err != nil {
		return rs, err
	}
	for _, id := range drop {
		t.idx.Delete(id)
	}
	rs.Dropped = len(drop)
	return rs, t.idx.Flush()
}
