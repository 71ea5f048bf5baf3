package fileid

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The reconciling scan at start.

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
