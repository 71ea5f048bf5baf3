package replica

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"ftnas/appliance/fileid"
	"ftnas/appliance/fileid/fileidtest"
)

// logBuf collects a logger's lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}

// TestSyncedResolver: a file renamed or removed behind the index is found
// (or known gone) once the capture has caught up, without a scan of the
// volume; if the capture cannot catch up, the scan still finds it.
func TestSyncedResolver(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fileid stamps files with trusted.* xattrs")
	}
	vol := t.TempDir()
	lb := &logBuf{}
	tree := fileidtest.OpenTree(t, vol, 1000, slog.New(slog.NewTextHandler(lb, nil)))
	stamp := func(name string) fileid.Stamp {
		t.Helper()
		must(t, os.WriteFile(filepath.Join(vol, name), []byte(name), 0o644))
		st, err := tree.Stamp(tree.RootFD(), tree.Root(), name)
		must(t, err)
		return st
	}
	a, b := stamp("a"), stamp("b")
	// Renamed and removed behind the index, as Samba or a shell would.
	must(t, os.Rename(filepath.Join(vol, "a"), filepath.Join(vol, "a2")))
	must(t, os.Remove(filepath.Join(vol, "b")))

	syncs := 0
	caughtUp := func(context.Context) error { // what the capture's translation does
		syncs++
		tree.Moved(a, tree.Root(), "a2")
		tree.Removed(b)
		return nil
	}
	r := syncedResolver{tree: tree, sync: caughtUp, log: slog.New(slog.NewTextHandler(lb, nil))}
	ref, err := r.Resolve(a)
	if err != nil || ref.Rel != "a2" {
		t.Fatalf("resolve a renamed file: %v, %v", ref, err)
	}
	ref.Close()
	if _, err := r.Resolve(b); !errors.Is(err, fileid.ErrStale) {
		t.Fatalf("resolve a removed file: %v, want ErrStale", err)
	}
	if syncs != 1 || lb.has("index repaired by scan") {
		t.Errorf("%d syncs, scanned %v; want one sync (the second file was known gone by then) and no scan", syncs, lb.has("index repaired by scan"))
	}

	// The capture cannot catch up: the scan finds the file all the same.
	c := stamp("c")
	must(t, os.Rename(filepath.Join(vol, "c"), filepath.Join(vol, "c2")))
	r.sync = func(context.Context) error { return errors.New("capture stopped") }
	ref, err = r.Resolve(c)
	if err != nil || ref.Rel != "c2" {
		t.Fatalf("resolve by scan: %v, %v", ref, err)
	}
	ref.Close()
	if !lb.has("index repaired by scan") {
		t.Error("found without a scan, though nothing told the index")
	}
}
