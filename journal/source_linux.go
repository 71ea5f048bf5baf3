package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// StampResolver finds files by Stamp; *fileid.Tree is one.
type StampResolver interface {
	Resolve(st fileid.Stamp) (*fileid.Ref, error)
}

// FSSource answers the standby's fetches from the master's volume (the
// Source of a Shipper).
type FSSource struct {
	tree StampResolver
	// bufs holds read buffers of MaxFetchData bytes for large reads: a
	// reply's blocks are slices of one, which the shipper gives back once
	// the reply is sent (FetchReply.release), so a stream of 4 MiB pieces
	// does not allocate (and fault in, and zero) 4 MiB for each.
	bufs sync.Pool
}

// pooledRead: a read of at least this many bytes takes a pooled buffer.
const pooledRead = 256 << 10

// NewFSSource returns a Source reading the volume of tree.
func NewFSSource(tree StampResolver) *FSSource { return &FSSource{tree: tree} }

// errRaced: the name Resolve gave vanished before it was read (renamed,
// or one hard link of several removed): resolve again.
var errRaced = errors.New("name changed while read")

// fetchTries bounds how often Fetch resolves a file again after a race.
const fetchTries = 3

// Fetch implements Source. A file that is gone answers fileid.ErrStale; a
// name that changes under the read (a rename, a link removed) is resolved
// again rather than reported gone, or the standby would drop the change.
func (s *FSSource) Fetch(ctx context.Context, q *FetchRequest) (*FetchReply, error) {
	for range fetchTries {
		p, err := s.fetchOnce(q)
		if !errors.Is(err, errRaced) {
			return p, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, fileid.ErrStale
}

func (s *FSSource) fetchOnce(q *FetchRequest) (*FetchReply, error) {
	ref, err := s.tree.Resolve(q.File)
	if err != nil {
		return nil, err
	}
	defer ref.Close()
	p := &FetchReply{ID: q.ID, What: q.What}
	var sb unix.Stat_t
	var data *os.File
	if q.What&FetchData != 0 {
		fd, err := unix.Openat(ref.Dir, ref.Name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT {
			return nil, errRaced
		}
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", ref.Rel, err)
		}
		data = os.NewFile(uintptr(fd), ref.Rel)
		defer data.Close()
		err = unix.Fstat(fd, &sb)
		if err == nil && sb.Mode&unix.S_IFMT != unix.S_IFREG {
			err = fmt.Errorf("not a regular file (mode %#o)", sb.Mode)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref.Rel, err)
		}
	} else if err := unix.Fstatat(ref.Dir, ref.Name, &sb, unix.AT_SYMLINK_NOFOLLOW); err == unix.ENOENT {
		return nil, errRaced
	} else if err != nil {
		return nil, fmt.Errorf("stat %s: %w", ref.Rel, err)
	}
	if q.What&FetchAttr != 0 {
		p.Attr = Attr{
			Mode: sb.Mode, UID: sb.Uid, GID: sb.Gid, Rdev: sb.Rdev, Size: uint64(sb.Size),
			Atime: sb.Atim.Nano(), Mtime: sb.Mtim.Nano(),
		}
		if sb.Mode&unix.S_IFMT == unix.S_IFLNK {
			buf := make([]byte, MaxTarget+1)
			n, err := unix.Readlinkat(ref.Dir, ref.Name, buf)
			if err == unix.ENOENT {
				return nil, errRaced
			}
			if err != nil {
				return nil, fmt.Errorf("readlink %s: %w", ref.Rel, err)
			}
			p.Attr.Target = string(buf[:n])
		}
	}
	if q.What&FetchXattrs != 0 {
		x := pathXattrs(ref.ProcPath())
		if data != nil {
			x = fdXattrs(int(data.Fd())) // the file read, even if removed meanwhile
		}
		p.Xattrs, err = listXattrs(x)
		if errors.Is(err, unix.ENOENT) {
			return nil, errRaced // removed since its stat
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref.Rel, err)
		}
	}
	if data != nil {
		var buf *[]byte
		if q.Len >= pooledRead && q.Off < uint64(sb.Size) {
			if b, ok := s.bufs.Get().(*[]byte); ok {
				buf = b
			} else {
				b := make([]byte, MaxFetchData)
				buf = &b
			}
		}
		var into []byte
		if buf != nil {
			into = *buf
		}
		if p.Blocks, err = deltaBlocks(data, uint64(sb.Size), q, into); err != nil {
			if buf != nil {
				s.bufs.Put(buf)
			}
			return nil, fmt.Errorf("%s: %w", ref.Rel, err)
		}
		if buf != nil {
			p.release = func() { s.bufs.Put(buf) }
		}
	}
	return p, nil
}
