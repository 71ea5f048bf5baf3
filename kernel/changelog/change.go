package changelog

import (
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"
)

// Op is what happened to a file.
type Op uint8

// The operations a Change reports.
const (
	// OpCreate: a new entry (file, directory, symlink, device, FIFO, socket,
	// or a new hard link: fanotify reports link(2) as a create; its FID
	// equals that of the inode's other names).
	OpCreate Op = iota + 1
	// OpDelete: an entry was removed.
	OpDelete
	// OpRename: an entry moved within one share (OldPath → Path). A rename
	// onto an existing name replaced that entry; no OpDelete is reported for
	// the replaced one.
	OpRename
	// OpAttrib: metadata changed — mode, owner, timestamps, or an extended
	// attribute (set or removed). fanotify does not tell which.
	OpAttrib
	// OpModify: content was written or the size changed (truncate).
	OpModify
	// OpCloseWrite: a descriptor open for writing was closed; the content is
	// as the writer left it.
	OpCloseWrite
	// OpOverflow: changes were lost (queue overflow, or the share's root
	// itself was created, moved or removed). Rescan the share.
	OpOverflow
)

var opNames = [...]string{
	OpCreate: "create", OpDelete: "delete", OpRename: "rename", OpAttrib: "attrib",
	OpModify: "modify", OpCloseWrite: "closewrite", OpOverflow: "overflow",
}

func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Change is one change to a share.
type Change struct {
	Op    Op
	Share uint64 // the share's FSID
	// Path is the share-relative, slash-separated path of the entry as it
	// was when the change happened; "." is the share's root. Empty for
	// OpOverflow.
	Path string
	// OldPath is where the entry was, for OpRename.
	OldPath string
	IsDir   bool
	// Moved marks an OpCreate or OpDelete that is one half of a rename
	// across a share boundary: a whole subtree appeared or left.
	Moved bool
	// FID is the kernel's identity of the inode (its file handle, hex):
	// equal for two names of one inode, different for a new inode at an
	// old name; for a change of a directory itself (its attributes), the
	// directory's. Empty if not reported.
	FID string
	// DirFID is the handle (hex, as FID) of the directory Path names an
	// entry of, when the event named one; OldDirFID that of OldPath. A
	// consumer that has moved on since can find the directory by them
	// where the paths, as they were, no longer lead.
	DirFID    string
	OldDirFID string
	Pid       int       // the process that made the change (0 if not visible)
	Time      time.Time // when the filter read the event (fanotify carries no time)
}

func (c Change) String() string {
	s := fmt.Sprintf("%s share=%d %s", c.Op, c.Share, c.Path)
	if c.Op == OpRename {
		s = fmt.Sprintf("%s share=%d %s -> %s", c.Op, c.Share, c.OldPath, c.Path)
	}
	if c.IsDir {
		s += " dir"
	}
	if c.Moved {
		s += " moved"
	}
	return s + fmt.Sprintf(" pid=%d", c.Pid)
}

// Share is a directory tree whose changes are logged.
type Share struct {
	FSID uint64
	Root string // absolute path of the share's root directory, on the volume
}

// shareSet finds the share a path lies in, the deepest root first.
type shareSet []Share

func newShareSet(shares []Share) (shareSet, error) {
	s := make(shareSet, 0, len(shares))
	seen := map[uint64]bool{}
	for _, sh := range shares {
		if !path.IsAbs(sh.Root) {
			return nil, fmt.Errorf("changelog: share %d: root %q is not absolute", sh.FSID, sh.Root)
		}
		if sh.FSID == 0 {
			return nil, fmt.Errorf("changelog: share at %s: FSID 0", sh.Root)
		}
		if seen[sh.FSID] {
			return nil, fmt.Errorf("changelog: share at %s: FSID %d used twice", sh.Root, sh.FSID)
		}
		seen[sh.FSID] = true
		sh.Root = path.Clean(sh.Root)
		s = append(s, sh)
	}
	sort.SliceStable(s, func(i, j int) bool { return len(s[i].Root) > len(s[j].Root) })
	return s, nil
}

// match returns the share abs lies in and abs relative to its root.
func (s shareSet) match(abs string) (Share, string, bool) {
	for _, sh := range s {
		if abs == sh.Root {
			return sh, ".", true
		}
		// abs below root: root, then a slash (root "/" ends in one).
		n := len(sh.Root)
		if sh.Root != "/" {
			n++
		}
		if len(abs) >= n && strings.HasPrefix(abs, sh.Root) && abs[n-1] == '/' {
			return sh, abs[n:], true
		}
	}
	return Share{}, "", false
}

// translator turns events into Changes, keeping the directory tree in step.
// It does no I/O itself: lookup, exists and rebuild are its window on the
// filesystem.
type translator struct {
	tree   *dirTree
	shares shareSet
	ignore func(pid int) bool
	now    func() time.Time
	log    *slog.Logger
	// lookup learns an unknown directory handle into tree (where it is now)
	// and returns its absolute path; ok is false if it no longer exists.
	lookup func(h Handle) (string, bool)
	// exists reports whether the entry at abs exists now.
	exists func(abs string) bool
	// rebuild reloads tree from the filesystem after lost events.
	rebuild func()
}

// dirPath is the absolute path of directory h.
func (x *translator) dirPath(h Handle) (string, bool) {
	if p, ok := x.tree.path(h.Key()); ok {
		return p, true
	}
	return x.lookup(h)
}

// join is abs for entry name in directory dir ("." = dir itself).
func join(dir, name string) string {
	if name == "." || name == "" {
		return dir
	}
	if strings.HasSuffix(dir, "/") {
		return dir + name
	}
	return dir + "/" + name
}

// batch translates events read together. Repeated OpModify of one file
// within the batch, with nothing else happening to it in between, is
// reported once.
func (x *translator) batch(evs []Event) []Change {
	out := make([]Change, 0, len(evs)+len(evs)/2) // a merged event is several
	type key struct {
		share uint64
		path  string
	}
	modified := map[key]bool{} // share/path with an OpModify out and nothing since
	emit := func(c Change) {
		k := key{c.Share, c.Path}
		switch c.Op {
		case OpModify:
			if modified[k] {
				return
			}
			modified[k] = true
		case OpRename, OpDelete, OpOverflow:
			clear(modified) // paths below may now name other files
		default:
			delete(modified, k)
		}
		out = append(out, c)
	}
	for _, ev := range evs {
		x.event(ev, emit)
	}
	return out
}

func (x *translator) overflowAll(emit func(Change), now time.Time) {
	for _, sh := range x.shares {
		emit(Change{Op: OpOverflow, Share: sh.FSID, Time: now})
	}
}

// event translates one event.
func (x *translator) event(ev Event, emit func(Change)) {
	now := x.now()
	if ev.Overflow() {
		x.log.Warn("changelog: fanotify queue overflowed; rescanning every share")
		x.rebuild()
		x.overflowAll(emit, now)
		return
	}
	isDir := ev.IsDir()
	fid, hasFID := ev.Record(InfoFID)
	base := Change{IsDir: isDir, Pid: int(ev.Pid), Time: now}
	if hasFID {
		base.FID = fid.Handle.hexKey()
	}
	ignored := x.ignore != nil && x.ignore(int(ev.Pid))
	if ev.Mask&fanRename != 0 {
		x.rename(ev, base, fid, hasFID, ignored, emit)
		return
	}
	rec, ok := ev.Record(InfoDFIDName)
	if !ok {
		rec, ok = ev.Record(InfoDFID)
	}
	if !ok {
		// Only the object's FID: fanotify reports a link-count change this
		// way (link, unlink, rename over it), without a name. The create,
		// delete or rename that caused it is reported with names.
		return
	}
	dir, ok := x.dirPath(rec.Handle)
	if !ok {
		// The directory is gone and was never seen: whatever happened in
		// it is superseded by its removal, reported on a live ancestor.
		x.log.Debug("changelog: event in a directory that no longer exists", "mask", fmt.Sprintf("%#x", ev.Mask))
		return
	}
	abs := join(dir, rec.Name)
	if rec.Name != "." && rec.Name != "" {
		base.DirFID = rec.Handle.hexKey()
	} else if !hasFID {
		// An event on the directory itself: it is the object.
		base.FID = rec.Handle.hexKey()
	}
	if isDir && hasFID && rec.Name != "." {
		if ev.Mask&fanCreate != 0 {
			x.tree.set(fid.Handle.Key(), rec.Handle.Key(), rec.Name)
		}
		if ev.Mask&fanDelete != 0 {
			defer x.tree.remove(fid.Handle.Key())
		}
	}
	if ignored {
		return
	}
	sh, rel, ok := x.shares.match(abs)
	if !ok {
		return
	}
	base.Share, base.Path = sh.FSID, rel
	if rel == "." && ev.Mask&(fanCreate|fanDelete) != 0 {
		x.log.Warn("changelog: share root created or removed; rescanning it", "share", sh.FSID, "root", sh.Root)
		emit(Change{Op: OpOverflow, Share: sh.FSID, Time: now})
		return
	}
	for _, op := range opsOf(ev.Mask, func() bool { return x.exists(abs) }) {
		c := base
		c.Op = op
		emit(c)
	}
}

// opsOf lists the operations in a (possibly merged) event mask in the order
// they must have happened. The kernel merges queued events on the same
// entry and inode; a create merged with a delete is ambiguous (a name can
// lose an inode and get it back by link), and exists — whether the entry is
// there now — orders them so the last one matches what is there.
func opsOf(mask uint64, exists func() bool) []Op {
	var ops []Op
	created, deleted := mask&fanCreate != 0, mask&fanDelete != 0
	deleteFirst := created && deleted && exists()
	if deleteFirst {
		ops = append(ops, OpDelete)
	}
	if created {
		ops = append(ops, OpCreate)
	}
	if mask&fanModify != 0 {
		ops = append(ops, OpModify)
	}
	if mask&fanAttrib != 0 {
		ops = append(ops, OpAttrib)
	}
	if mask&fanCloseWrite != 0 {
		ops = append(ops, OpCloseWrite)
	}
	if deleted && !deleteFirst {
		ops = append(ops, OpDelete)
	}
	return ops
}

// rename translates a FAN_RENAME event.
func (x *translator) rename(ev Event, base Change, fid Record, hasFID, ignored bool, emit func(Change)) {
	oldRec, ok1 := ev.Record(InfoOldDFIDName)
	newRec, ok2 := ev.Record(InfoNewDFIDName)
	if !ok1 || !ok2 {
		x.log.Warn("changelog: rename event without both names; rescanning every share")
		x.overflowAll(emit, base.Time)
		return
	}
	oldDir, okOld := x.dirPath(oldRec.Handle)
	newDir, okNew := x.dirPath(newRec.Handle)
	oldAbs, newAbs := join(oldDir, oldRec.Name), join(newDir, newRec.Name)
	oldDirFID := oldRec.Handle.hexKey()
	newDirFID := newRec.Handle.hexKey()
	if base.IsDir && hasFID {
		if okNew {
			x.tree.set(fid.Handle.Key(), newRec.Handle.Key(), newRec.Name)
		} else {
			x.tree.remove(fid.Handle.Key())
		}
	}
	if ignored {
		return
	}
	var oldSh, newSh Share
	var oldRel, newRel string
	var inOld, inNew bool
	if okOld {
		oldSh, oldRel, inOld = x.shares.match(oldAbs)
	}
	if okNew {
		newSh, newRel, inNew = x.shares.match(newAbs)
	}
	if inOld && oldRel == "." {
		x.log.Warn("changelog: share root renamed; rescanning it", "share", oldSh.FSID, "from", oldAbs, "to", newAbs)
		emit(Change{Op: OpOverflow, Share: oldSh.FSID, Time: base.Time})
		inOld = false
	}
	if inNew && newRel == "." {
		x.log.Warn("changelog: directory renamed onto a share root; rescanning it", "share", newSh.FSID, "from", oldAbs, "to", newAbs)
		emit(Change{Op: OpOverflow, Share: newSh.FSID, Time: base.Time})
		inNew = false
	}
	switch {
	case inOld && inNew && oldSh.FSID == newSh.FSID:
		c := base
		c.Op, c.Share, c.Path, c.OldPath = OpRename, newSh.FSID, newRel, oldRel
		c.DirFID, c.OldDirFID = newDirFID, oldDirFID
		emit(c)
	default:
		if inOld {
			c := base
			c.Op, c.Share, c.Path, c.Moved = OpDelete, oldSh.FSID, oldRel, true
			c.DirFID = oldDirFID
			emit(c)
		}
		if inNew {
			c := base
			c.Op, c.Share, c.Path, c.Moved = OpCreate, newSh.FSID, newRel, true
			c.DirFID = newDirFID
			emit(c)
		}
	}
}
