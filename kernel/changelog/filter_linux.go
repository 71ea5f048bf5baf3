package changelog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Filter is the change-log filter of one volume: a fanotify group with a
// filesystem mark on it, translating events into Changes of the shares.
type Filter struct {
	volume  string
	file    *os.File // the fanotify group
	mountFD int      // descriptor of the volume, for open_by_handle_at (not O_PATH: it refuses those)
	mountID int
	rootKey string
	log     *slog.Logger

	closeOnce sync.Once

	mu sync.Mutex // guards x (and its tree) between Run and SetShares
	x  *translator
}

// New creates the fanotify group, marks the volume's filesystem and learns
// the shares' directories. Events are queued from here on, so nothing that
// happens between New and Run is lost. It needs CAP_SYS_ADMIN (the mark)
// and CAP_DAC_READ_SEARCH (open_by_handle_at).
func New(o Options) (*Filter, error) {
	if o.Volume == "" {
		return nil, errors.New("changelog: no volume")
	}
	vol, err := filepath.Abs(o.Volume)
	if err == nil {
		vol, err = filepath.EvalSymlinks(vol)
	}
	if err != nil {
		return nil, fmt.Errorf("changelog: volume %s: %w", o.Volume, err)
	}
	if err := checkVolume(vol); err != nil {
		return nil, fmt.Errorf("changelog: volume %s: %w", vol, err)
	}
	shares, err := newShareSet(cleanShares(o.Shares))
	if err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	f := &Filter{volume: vol, log: log}
	f.mountFD, err = unix.Open(vol, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("changelog: open volume %s: %w", vol, err)
	}
	h, mountID, err := unix.NameToHandleAt(unix.AT_FDCWD, vol, 0)
	if err != nil {
		unix.Close(f.mountFD)
		return nil, fmt.Errorf("changelog: name_to_handle_at %s: %w", vol, err)
	}
	f.mountID, f.rootKey = mountID, handleOf(h).Key()
	f.file, err = openGroup(notifyInitFlags, unix.O_RDONLY|unix.O_CLOEXEC, vol, notifyMask)
	if err != nil {
		unix.Close(f.mountFD)
		return nil, fmt.Errorf("changelog: %w", err)
	}
	f.x = &translator{
		tree:    newDirTree(),
		shares:  shares,
		ignore:  o.Ignore,
		now:     now,
		log:     log,
		lookup:  f.lookup,
		exists:  func(abs string) bool { var st unix.Stat_t; return unix.Lstat(abs, &st) == nil },
		rebuild: f.rebuild,
	}
	f.rebuild()
	return f, nil
}

// cleanShares resolves symlinks in the share roots that exist, so they
// compare with the paths the kernel reports.
func cleanShares(in []Share) []Share {
	out := make([]Share, len(in))
	for i, sh := range in {
		out[i] = sh
		if filepath.IsAbs(sh.Root) {
			if p, err := filepath.EvalSymlinks(sh.Root); err == nil {
				out[i].Root = p
			}
		}
	}
	return out
}

// SetShares replaces the shares whose changes are reported, and learns the
// directories of the new ones.
func (f *Filter) SetShares(shares []Share) error {
	s, err := newShareSet(cleanShares(shares))
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.x.shares = s
	f.rebuild()
	return nil
}

// Close releases the fanotify group; Run returns nil. Closing twice is a
// no-op.
func (f *Filter) Close() error {
	var err error
	f.closeOnce.Do(func() {
		err = f.file.Close()
		unix.Close(f.mountFD)
	})
	if err != nil {
		return fmt.Errorf("changelog: close fanotify group of %s: %w", f.volume, err)
	}
	return nil
}

// Run reads events until ctx ends or the filter is closed, and sends the
// Changes of the shares to out, in the order they happened. A slow reader
// of out holds events in the kernel's queue; if that overflows, Run sends
// OpOverflow for every share once it catches up, and the consumer rescans.
// It returns nil when ctx ends.
func (f *Filter) Run(ctx context.Context, out chan<- Change) error {
	stop := context.AfterFunc(ctx, func() { f.file.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, readBufSize)
	for {
		n, err := f.file.Read(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return nil
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("changelog: read fanotify events of %s: %w", f.volume, err)
		}
		evs, perr := Parse(buf[:n])
		f.mu.Lock()
		changes := f.x.batch(evs)
		if perr != nil {
			// Never skip silently: what could not be read is rescanned.
			f.log.Error("changelog: bad fanotify event; rescanning every share", "err", perr)
			f.rebuild()
			f.x.overflowAll(func(c Change) { changes = append(changes, c) }, f.x.now())
		}
		f.mu.Unlock()
		for _, c := range changes {
			select {
			case out <- c:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// handleOf converts a file handle from x/sys.
func handleOf(h unix.FileHandle) Handle {
	return Handle{Type: h.Type(), Bytes: h.Bytes()}
}

// lookup learns a directory the tree does not know, from where the kernel
// says it is now. Called with f.mu held.
func (f *Filter) lookup(h Handle) (string, bool) {
	fd, err := unix.OpenByHandleAt(f.mountFD, unix.NewFileHandle(h.Type, h.Bytes), unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		if !errors.Is(err, unix.ESTALE) {
			f.log.Warn("changelog: open_by_handle_at", "volume", f.volume, "err", err)
		}
		return "", false
	}
	p, ok, err := fdPath(fd)
	unix.Close(fd)
	if err != nil || !ok {
		return "", false
	}
	if p != f.volume && !strings.HasPrefix(p, f.volume+"/") {
		return p, true // not reachable below the volume's mount: outside every share
	}
	parent := f.learnPath(filepath.Dir(p))
	if parent != "" && p != f.volume {
		f.x.tree.set(h.Key(), parent, filepath.Base(p))
	}
	return p, true
}

// learnPath records the directories from the volume root down to abs and
// returns abs's handle key ("" if some component could not be resolved).
func (f *Filter) learnPath(abs string) string {
	if abs == f.volume {
		return f.rootKey
	}
	rel, ok := strings.CutPrefix(abs, f.volume+"/")
	if !ok {
		return ""
	}
	parent, cur := f.rootKey, f.volume
	for _, name := range strings.Split(rel, "/") {
		cur += "/" + name
		h, mnt, err := unix.NameToHandleAt(unix.AT_FDCWD, cur, 0)
		if err != nil || mnt != f.mountID {
			return ""
		}
		k := handleOf(h).Key()
		f.x.tree.set(k, parent, name)
		parent = k
	}
	return parent
}

// rebuild forgets every directory and learns those of the shares again.
// Called with f.mu held (or before the filter is shared).
func (f *Filter) rebuild() {
	t := f.x.tree
	t.reset()
	t.anchor(f.rootKey, f.volume)
	for _, sh := range f.x.shares {
		f.walk(sh.Root)
	}
	f.log.Debug("changelog: learned share directories", "volume", f.volume, "dirs", t.len())
}

// walk learns every directory below root (on the volume's mount).
func (f *Filter) walk(root string) {
	rootKey := f.learnPath(root)
	if rootKey == "" {
		f.log.Warn("changelog: share root is not a directory on the volume", "root", root, "volume", f.volume)
		return
	}
	keys := map[string]string{root: rootKey}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil // vanished or unreadable: events will tell
		}
		if !d.IsDir() || p == root {
			return nil
		}
		parent, ok := keys[filepath.Dir(p)]
		if !ok {
			return fs.SkipDir
		}
		h, mnt, err := unix.NameToHandleAt(unix.AT_FDCWD, p, 0)
		if err != nil || mnt != f.mountID {
			return fs.SkipDir // gone, or another filesystem mounted here
		}
		k := handleOf(h).Key()
		f.x.tree.set(k, parent, d.Name())
		keys[p] = k
		return nil
	})
	if err != nil {
		f.log.Warn("changelog: walk share", "root", root, "err", err)
	}
}
