package capture

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"ftnas/appliance/fileid"
	"ftnas/journal"
	"ftnas/kernel/btrfs/btrfstest"
	"ftnas/kernel/changelog"
)

// continueRun is a capture term on vol that continues the standby's log
// (Config.Continue): once its description's view is fixed and landed,
// change runs; the records of the term and its stats are returned with
// Run's error.
func continueRun(t *testing.T, vol string, tree *fileid.Tree, share string, noSnap bool, change func()) ([]journal.Record, Stats, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify filesystem marks")
	}
	jl, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), journal.Options{Logger: quiet(), Continue: journal.Continuation{ID: 77, After: 500}})
	if err != nil {
		t.Fatal(err)
	}
	defer jl.Close()
	c, err := New(Config{
		Volume: vol, Tree: tree, Shares: []changelog.Share{{FSID: 1, Root: filepath.Join(vol, share)}},
		Log: jl, NoSnapshot: noSnap, Continue: true, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-c.Fixed():
	case err := <-done:
		t.Fatalf("capture ended before its view was fixed: %v", err)
	}
	syncOK := true
	for range 2 {
		// The first Sync returns once the description landed, the
		// second once every change made before it did.
		if err := c.Sync(ctx); err != nil {
			syncOK = false
			break
		}
		if change != nil {
			change()
			change = nil
		}
	}
	cancel()
	runErr := <-done
	if syncOK && runErr != nil {
		t.Fatalf("capture run: %v", runErr)
	}
	recs, err := jl.Read(jl.First(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return recs, c.Stats(), runErr
}

// A log that continues the standby's describes nothing: the standby that
// took the first log's description, plus the continuation's records of
// the changes made after it, is the live tree. Both ways of describing.
func TestContinueLogsOnlyLaterChanges(t *testing.T) {
	for _, noSnap := range []bool{true, false} {
		vol, share, tree := shareVolume(t)
		first, _ := describeRun(t, vol, tree, "s", true, nil)
		sb := standbyOf(t, tree.Root(), "s", first)
		in := func(p string) string { return filepath.Join(share, p) }
		recs, st, err := continueRun(t, vol, tree, "s", noSnap, func() {
			for _, op := range []func() error{
				func() error { return os.Rename(in("a/b"), in("b2")) },
				func() error { return os.WriteFile(in("f1"), []byte("changed"), 0o644) },
				func() error { return os.WriteFile(in("n"), []byte("new"), 0o644) },
				func() error { return os.Remove(in("e/f5")) },
			} {
				if err := op(); err != nil {
					t.Fatal(err)
				}
			}
		})
		if err != nil {
			t.Fatalf("continue run: %v", err)
		}
		want := map[bool]string{true: DescribedWalk, false: DescribedSnapshot}[noSnap]
		if st.Description != want || st.Silent < 15 || !st.Described {
			t.Fatalf("no snapshot %v: description %q, %d records not logged, described %v", noSnap, st.Description, st.Silent, st.Described)
		}
		for _, r := range recs {
			if r.Seq <= 500 {
				t.Fatalf("record %d in the continuation of a log that ended at 500", r.Seq)
			}
			if r.Op == journal.OpCreate && r.Name != "n" || r.Op == journal.OpMkdir || r.Op == journal.OpPrune {
				t.Fatalf("no snapshot %v: the continuation describes: %s", noSnap, describeFull(recs))
			}
		}
		for _, r := range recs {
			if err := sb.apply(r); err != nil {
				t.Fatalf("apply %s %s: %v\nrecords:\n%s", r.Op, r.Name, err, describeFull(recs))
			}
		}
		if d := diffLive(t, share, sb.root.kids["s"]); d != "" {
			t.Fatalf("no snapshot %v: %s\nrecords:\n%s", noSnap, d, describeFull(recs))
		}
	}
}

// A volume that is not the standby's copy as it stands (a file the
// description must stamp) fails the continuation with ErrNotCopy, having
// logged nothing: walked, and read from a snapshot (where the file is
// stamped on the live volume).
func TestContinueRefusesUnstampedFile(t *testing.T) {
	for _, noSnap := range []bool{true, false} {
		vol := btrfstest.Volume(t)
		makeTree(t, vol)
		tree := testTree(t, vol)
		describeRun(t, vol, tree, ".", true, nil)
		if err := os.WriteFile(filepath.Join(vol, "a", "unstamped"), []byte("u"), 0o644); err != nil {
			t.Fatal(err)
		}
		recs, st, err := continueRun(t, vol, tree, ".", noSnap, nil)
		if !errors.Is(err, ErrNotCopy) || len(recs) != 0 {
			t.Fatalf("no snapshot %v: continue run over an unstamped file: %v, %d records (%s); want ErrNotCopy and none", noSnap, err, len(recs), st.Description)
		}
	}
}
