package fileidtest

import (
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"ftnas/appliance/fileid"
)

// OpenTree opens the fileid tree of the volume vol, its index in a bbolt
// file in tb's temporary directory (NoSync), its Stamp IDs handed out from
// firstID up; all of it is closed when tb ends.
func OpenTree(tb testing.TB, vol string, firstID uint64, log *slog.Logger) *fileid.Tree {
	tb.Helper()
	db, err := bolt.Open(filepath.Join(tb.TempDir(), "state.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	idx, err := fileid.OpenIndex(db, log)
	if err != nil {
		db.Close()
		tb.Fatal(err)
	}
	var mu sync.Mutex
	next := firstID
	alloc := fileid.NewAllocator(func(n uint64) (uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		f := next
		next += n
		return f, nil
	})
	tree, err := fileid.OpenTree(vol, idx, alloc, log)
	if err != nil {
		idx.Close()
		db.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		tree.Close()
		idx.Close()
		db.Close()
	})
	return tree
}
