package capture

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// fsVolume is the master's volume on Linux: files are opened by kernel
// handle (open_by_handle_at) and stamped through the fileid.Tree.
type fsVolume struct {
	tree    *fileid.Tree
	root    string // absolute path of the mount point, symlinks resolved
	mountFD int    // descriptor of the volume, for open_by_handle_at (which refuses O_PATH ones)
	// dirs keeps the directories Lookup opened (O_PATH, by FID) until the
	// batch ends (endBatch): a batch of creates in one directory opens it
	// once. A descriptor names the same directory as opening its handle
	// again would, also after a rename; once the directory is removed,
	// lookups in it find nothing, as a new open (ESTALE) would.
	dirs map[string]int
	// pre holds what Prefetch read, for every Lookup of each entry in
	// the rest of the batch.
	pre map[entryRef]prefetched
	// issued counts the Stamps a lookup of an entry known to the model
	// (a rescan's, the description's) gave or re-issued: a change to the
	// volume that a silent description must not make (Config.Continue).
	issued atomic.Uint64
}

// prefetchWorkers is how many lookups Prefetch has in flight: on a busy
// volume (btrfs under many writers) a stamp or a stat waits on locks far
// longer than it computes, so they overlap well even on few cores.
const prefetchWorkers = 4

// maxDirs bounds the directory descriptors kept within one batch.
const maxDirs = 256

func newFSVolume(root string, tree *fileid.Tree) (*fsVolume, DirRef, error) {
	abs, err := filepath.Abs(root)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return nil, DirRef{}, fmt.Errorf("capture: volume %s: %w", root, err)
	}
	fd, err := unix.Open(abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, DirRef{}, fmt.Errorf("capture: open volume %s: %w", abs, err)
	}
	h, _, err := unix.NameToHandleAt(fd, "", unix.AT_EMPTY_PATH)
	if err != nil {
		unix.Close(fd)
		return nil, DirRef{}, fmt.Errorf("capture: handle of volume %s: %w", abs, err)
	}
	v := &fsVolume{tree: tree, root: abs, mountFD: fd, dirs: map[string]int{}, pre: map[entryRef]prefetched{}}
	return v, DirRef{FID: FID(h.Type(), h.Bytes()), Stamp: tree.Root()}, nil
}

func (v *fsVolume) Close() error {
	v.endBatch()
	return unix.Close(v.mountFD)
}

// endBatch closes the directories kept for the batch and forgets what was
// prefetched.
func (v *fsVolume) endBatch() {
	for fid, fd := range v.dirs {
		unix.Close(fd)
		delete(v.dirs, fid)
	}
	clear(v.pre)
}

// Prefetch implements prefetcher: it looks the entries up, several at a
// time, and keeps each result for the entry's Lookups in the rest of the
// batch. Such a Lookup answers with the state read a moment earlier, which
// the translation must take anyway (the volume changes while it reads;
// the translation itself changes no names on it): a change made since
// comes as an event of a later batch. An entry a batch names several
// times (created, written, then renamed away) is read once.
func (v *fsVolume) Prefetch(es []entryRef) {
	fds := make([]int, len(es))
	for i, e := range es {
		fds[i] = -1
		if _, ok := v.dirs[e.dir.FID]; !ok && len(v.dirs) >= maxDirs {
			continue // openDir would close the ones handed out
		}
		if fd, ok, err := v.openDir(e.dir.FID); err == nil && ok {
			fds[i] = fd
		}
	}
	res := make([]prefetched, len(es))
	valid := make([]bool, len(es))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(prefetchWorkers, len(es)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(es) {
					return
				}
				if fds[i] < 0 {
					continue
				}
				o, ok, err := v.lookupAt(fds[i], es[i].dir, es[i].name, true)
				res[i], valid[i] = prefetched{o, ok}, err == nil
			}
		})
	}
	wg.Wait()
	for i, e := range es {
		if valid[i] {
			v.pre[e] = res[i]
		}
	}
}

// Inodes implements inodeFetcher: Inode for each of fids, several in
// flight (each is open_by_handle_at, fstat and close, which wait on the
// volume more than they compute).
func (v *fsVolume) Inodes(fids []string) []inodeRead {
	res := make([]inodeRead, len(fids))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(prefetchWorkers, len(fids)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(fids) {
					return
				}
				o, ok, err := v.Inode(fids[i])
				res[i] = inodeRead{o, ok, err}
			}
		})
	}
	wg.Wait()
	return res
}

// openDir opens directory dir (O_PATH) for the rest of the batch.
func (v *fsVolume) openDir(fid string) (int, bool, error) {
	if fd, ok := v.dirs[fid]; ok {
		return fd, true, nil
	}
	fd, ok, err := v.open(fid, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil || !ok {
		return -1, ok, err
	}
	if len(v.dirs) >= maxDirs {
		v.endBatch()
	}
	v.dirs[fid] = fd
	return fd, true, nil
}

// gone reports errors that mean the file is not there (any more).
func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESTALE) || errors.Is(err, unix.ENOTDIR)
}

// open opens the file with handle fid; ok is false if it is gone.
func (v *fsVolume) open(fid string, flags int) (int, bool, error) {
	typ, b, err := ParseFID(fid)
	if err != nil {
		return -1, false, err
	}
	return openByHandle(v.mountFD, unix.NewFileHandle(typ, b), flags)
}

// openByHandle opens the file with handle h on the file system of mountFD;
// ok is false if it is gone.
func openByHandle(mountFD int, h unix.FileHandle, flags int) (int, bool, error) {
	for {
		fd, err := unix.OpenByHandleAt(mountFD, h, flags|unix.O_CLOEXEC)
		switch {
		case err == nil:
			return fd, true, nil
		case err == unix.EINTR:
			continue
		case gone(err):
			return -1, false, nil
		}
		return -1, false, fmt.Errorf("open_by_handle_at: %w", err)
	}
}

func objOf(sb *unix.Stat_t) Obj {
	return Obj{Mode: sb.Mode, UID: sb.Uid, GID: sb.Gid, Rdev: sb.Rdev, Size: sb.Size, Ctime: sb.Ctim.Nano()}
}

// Lookup implements Volume.
func (v *fsVolume) Lookup(dir DirRef, name string) (Obj, bool, error) {
	e := entryRef{dir, name}
	if p, ok := v.pre[e]; ok {
		return p.o, p.ok, nil
	}
	dfd, ok, err := v.openDir(dir.FID)
	if err != nil || !ok {
		return Obj{}, false, err
	}
	return v.lookupAt(dfd, dir, name, false)
}

// lookupAt is Lookup in the open directory dfd; fresh says the entry is
// likely new to the volume (see stamp). Safe for concurrent use.
func (v *fsVolume) lookupAt(dfd int, dir DirRef, name string, fresh bool) (Obj, bool, error) {
	// Stamp, stat and handle are read by name, between two reads of the
	// handle: a rename racing with them shows as a handle that changed
	// (the handle names the inode, also where a copy carries the same
	// Stamp), or as an error of a step that found another file at the
	// name than the step before (stamping a name that a file without a
	// Stamp took meanwhile fails with ENODATA), and the lookup is
	// repeated. A handle costs half a read of the Stamp through /proc.
	const tries = 3
	for try := range tries {
		before, _, err := unix.NameToHandleAt(dfd, name, 0)
		if err != nil {
			if gone(err) {
				return Obj{}, false, nil
			}
			return Obj{}, false, fmt.Errorf("handle of %s: %w", name, err)
		}
		st, err := v.stamp(dfd, dir.Stamp, name, fresh)
		if err != nil {
			if gone(err) {
				return Obj{}, false, nil
			}
			if try < tries-1 {
				continue
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
		o := objOf(&sb)
		if sb.Mode&unix.S_IFMT == unix.S_IFLNK {
			buf := make([]byte, unix.PathMax)
			n, err := unix.Readlinkat(dfd, name, buf)
			if err != nil {
				if gone(err) {
					return Obj{}, false, nil
				}
				return Obj{}, false, fmt.Errorf("readlink %s: %w", name, err)
			}
			o.Target = string(buf[:n])
		}
		h, _, err := unix.NameToHandleAt(dfd, name, 0)
		if err != nil {
			if gone(err) {
				return Obj{}, false, nil
			}
			return Obj{}, false, fmt.Errorf("handle of %s: %w", name, err)
		}
		if h.Type() == before.Type() && bytes.Equal(h.Bytes(), before.Bytes()) {
			o.FID, o.Stamp = FID(h.Type(), h.Bytes()), st
			return o, true, nil
		}
	}
	return Obj{}, false, fmt.Errorf("lookup %s: it keeps changing", name)
}

// stamp is Tree.StampAt for name in dfd, whose Stamp is dir. A fresh
// entry (one Prefetch looks up: created, or moved here, since the model
// last saw its directory) goes to Tree.StampNew: a file without a Stamp,
// the common case, is stamped at once without reading first (setxattrat
// with XATTR_CREATE); one that has a Stamp is read then, as StampAt reads
// it. Other entries (a rescan's, mostly stamped long ago) go to StampAt
// straight away, which reads the Stamp once.
func (v *fsVolume) stamp(dfd int, dir fileid.Stamp, name string, fresh bool) (fileid.Stamp, error) {
	if !fresh {
		st, given, err := v.tree.StampAtFresh(dfd, dir, name)
		if given {
			v.issued.Add(1)
		}
		return st, err
	}
	return v.tree.StampNew(dfd, dir, name)
}

// List implements Volume.
func (v *fsVolume) List(dir DirRef) ([]string, bool, error) {
	fd, ok, err := v.open(dir.FID, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil || !ok {
		return nil, false, err
	}
	names, err := readNames(fd)
	if errors.Is(err, unix.ENOENT) {
		return nil, false, nil // removed since it was opened
	}
	if err != nil {
		return nil, false, err
	}
	return names, true, nil
}

// readNames lists the open directory fd, and closes it.
func readNames(fd int) ([]string, error) {
	f := os.NewFile(uintptr(fd), "dir")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("readdir: %w", err)
	}
	return names, nil
}

// Inode implements Volume.
func (v *fsVolume) Inode(fid string) (Obj, bool, error) {
	fd, ok, err := v.open(fid, unix.O_PATH)
	if err != nil || !ok {
		return Obj{}, false, err
	}
	return statObj(fd, fid)
}

// statObj is Inode's answer for fd, the open file fid, and closes fd: ok
// is false if the file has no name left.
func statObj(fd int, fid string) (Obj, bool, error) {
	defer unix.Close(fd)
	var sb unix.Stat_t
	if err := unix.Fstat(fd, &sb); err != nil {
		return Obj{}, false, fmt.Errorf("fstat: %w", err)
	}
	if sb.Nlink == 0 {
		return Obj{}, false, nil
	}
	o := objOf(&sb)
	o.FID = fid
	return o, true, nil
}

// Locate implements Volume: the kernel's idea of the path of the file it
// opened by handle (reliable for directories; for other files it may be
// any of their names, or none).
func (v *fsVolume) Locate(fid string) (string, string, string, bool, error) {
	fd, ok, err := v.open(fid, unix.O_PATH)
	if err != nil || !ok {
		return "", "", "", false, err
	}
	defer unix.Close(fd)
	var sb unix.Stat_t
	if err := unix.Fstat(fd, &sb); err != nil || sb.Nlink == 0 {
		return "", "", "", false, nil
	}
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil || strings.HasSuffix(p, " (deleted)") {
		return "", "", "", false, nil
	}
	rel, ok := strings.CutPrefix(p, v.root+"/")
	if !ok || rel == "" {
		return "", "", "", false, nil
	}
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, filepath.Dir(p), 0)
	if err != nil {
		return "", "", "", false, nil
	}
	return FID(h.Type(), h.Bytes()), filepath.Base(p), rel, true, nil
}

// Removed implements Volume.
func (v *fsVolume) Removed(st fileid.Stamp) { v.tree.Removed(st) }
