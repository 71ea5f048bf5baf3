package fileid

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Resolving a Stamp to its file: through the index, verified, else by a
// scan of the volume (tree_linux.go opens the volume).

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
