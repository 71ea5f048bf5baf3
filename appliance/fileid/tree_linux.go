package fileid

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
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
