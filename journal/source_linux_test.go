package journal

import (
	"context"
	"os"
	"testing"

	"ftnas/appliance/fileid"
)

// renamingResolver renames the file once, right after resolving it: the
// race between the standby's fetch and a rename on the master.
type renamingResolver struct {
	inner        StampResolver
	from, to     string
	renamed      bool
	resolveCalls int
}

func (r *renamingResolver) Resolve(st fileid.Stamp) (*fileid.Ref, error) {
	r.resolveCalls++
	ref, err := r.inner.Resolve(st)
	if err == nil && !r.renamed {
		r.renamed = true
		if err := os.Rename(r.from, r.to); err != nil {
			return nil, err
		}
	}
	return ref, err
}

// TestFetchFollowsARenameDuringTheRead: a name that changes between
// Resolve and the read is resolved again, not answered "gone" (the
// standby would drop the write for good).
func TestFetchFollowsARenameDuringTheRead(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fileid stamps files with trusted.* xattrs")
	}
	m := openVolume(t, t.TempDir(), 1000, fileid.Stamp{})
	if err := os.WriteFile(m.path("a"), []byte("contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := m.stampAt(t, "a")
	r := &renamingResolver{inner: m.tree, from: m.path("a"), to: m.path("b")}
	p, err := NewFSSource(r).Fetch(context.Background(), &FetchRequest{ID: 1, File: st, What: FetchAttr | FetchData})
	if err != nil {
		t.Fatalf("fetch across a rename: %v", err)
	}
	if p.Attr.Size != uint64(len("contents")) || r.resolveCalls != 2 {
		t.Errorf("reply %+v after %d resolves; want the file's 8 bytes after 2", p.Attr, r.resolveCalls)
	}
	// Really gone: stale, after a bounded number of tries.
	if err := os.Remove(m.path("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFSSource(m.tree).Fetch(context.Background(), &FetchRequest{ID: 2, File: st, What: FetchAttr}); err != fileid.ErrStale {
		t.Errorf("fetch of a removed file = %v, want ErrStale", err)
	}
}
