package journal

import (
	"errors"
	"fmt"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// Inline writes in a batch. A write record that carries its data
// (FlagInline, an NFS write) goes into a working copy of its file, which
// replaces the file once durable (write, apply_linux.go). Within a batch
// the copy stays open: later inline writes to the same file go into it, and
// at the batch's end one syncfs makes every open copy durable before each
// is renamed over its file. A file written in a stream of 1 MiB writes so
// costs one copy and one sync per batch, not one per write (the replicate
// benchmark's lag was the standby fsyncing every write).
//
// Records are still applied in their order: before a record that is not an
// inline write touches a file with an open copy (its Stamp is the record's
// file, or its name is one the record makes, removes or renames), the copy
// is published first, with an fsync of its own. A prune publishes them all
// first. Until the batch is committed nothing of it counts as applied, as
// before: a copy that was never published is an anonymous file, gone with
// its descriptor.

// maxInlineCopies bounds the copies a batch keeps open (descriptors);
// beyond it they are all published at once and the batch goes on.
const maxInlineCopies = 256

// inlineCopy is the open working copy of one file.
type inlineCopy struct {
	file         fileid.Stamp
	seq          uint64 // the first record written into it (for errors)
	ref          *fileid.Ref
	work         int
	atime, mtime int64 // the file's times, given to the copy when it is published
}

// inlineSet is a batch's open copies, in the order they were opened.
type inlineSet struct {
	byFile map[fileid.Stamp]*inlineCopy
	order  []*inlineCopy
}

func (s *inlineSet) get(st fileid.Stamp) *inlineCopy {
	if s == nil {
		return nil
	}
	return s.byFile[st]
}

func (s *inlineSet) add(c *inlineCopy) {
	s.byFile[c.file] = c
	s.order = append(s.order, c)
}

// all lists every open copy.
func (s *inlineSet) all() []*inlineCopy {
	if s == nil {
		return nil
	}
	return s.order
}

// touched lists the open copies rec must not overtake: its file's, and
// those under a name it makes, removes or renames (any directory: a name
// match is cheap and errs on the safe side).
func (s *inlineSet) touched(rec Record) []*inlineCopy {
	if s == nil || len(s.order) == 0 {
		return nil
	}
	if rec.Op == OpPrune {
		return s.all()
	}
	var out []*inlineCopy
	for _, c := range s.order {
		n := c.ref.Name
		if c.file == rec.File || rec.Name != "" && n == rec.Name || rec.NewName != "" && n == rec.NewName {
			out = append(out, c)
		}
	}
	return out
}

// forget drops cs from the set and closes them.
func (s *inlineSet) forget(cs []*inlineCopy) {
	gone := make(map[*inlineCopy]bool, len(cs))
	for _, c := range cs {
		gone[c] = true
		delete(s.byFile, c.file)
		c.close()
	}
	kept := s.order[:0]
	for _, c := range s.order {
		if !gone[c] {
			kept = append(kept, c)
		}
	}
	clear(s.order[len(kept):])
	s.order = kept
}

func (c *inlineCopy) close() {
	if c.work >= 0 {
		unix.Close(c.work)
		c.work = -1
	}
	if c.ref != nil {
		c.ref.Close()
		c.ref = nil
	}
}

// closeAll drops every open copy unpublished (a failed batch).
func (s *inlineSet) closeAll() {
	if s != nil {
		s.forget(append([]*inlineCopy(nil), s.all()...))
	}
}

// writeInline applies an inline write: into the file's open copy, or a new
// one.
func (a *FSApplier) writeInline(rec Record) error {
	if c := a.inline.get(rec.File); c != nil {
		if _, err := unix.Pwrite(c.work, rec.Data, int64(rec.Off)); err != nil {
			return fmt.Errorf("write %d bytes at %d to %s: %w", len(rec.Data), rec.Off, c.ref.Rel, err)
		}
		return nil
	}
	ref, err := a.cfg.Tree.Resolve(rec.File)
	if err != nil {
		return err
	}
	c := &inlineCopy{file: rec.File, seq: rec.Seq, ref: ref, work: -1}
	keep := false
	defer func() {
		if !keep {
			c.close()
		}
	}()
	src, err := unix.Openat(ref.Dir, ref.Name, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", ref.Rel, err)
	}
	defer unix.Close(src)
	var sb unix.Stat_t
	if err := unix.Fstat(src, &sb); err != nil {
		return fmt.Errorf("stat %s: %w", ref.Rel, err)
	}
	if sb.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("write to %s: not a regular file", ref.Rel)
	}
	if sb.Nlink > 1 {
		// Other links: patched in place (a rename would split them).
		if _, err := unix.Pwrite(src, rec.Data, int64(rec.Off)); err != nil {
			return fmt.Errorf("write %d bytes at %d to %s: %w", len(rec.Data), rec.Off, ref.Rel, err)
		}
		return nil
	}
	if c.work, err = a.workingCopy(ref.Dir, src, ref.Rel, sb.Size); err != nil {
		return err
	}
	if _, err := unix.Pwrite(c.work, rec.Data, int64(rec.Off)); err != nil {
		return fmt.Errorf("write %d bytes at %d to %s: %w", len(rec.Data), rec.Off, ref.Rel, err)
	}
	if err := copyMeta(src, c.work, &sb); err != nil {
		return fmt.Errorf("%s: %w", ref.Rel, err)
	}
	if err := unix.Fsetxattr(c.work, fileid.XattrName, rec.File.MarshalBinary(), 0); err != nil {
		return fmt.Errorf("stamp the new copy of %s: %w", ref.Rel, err)
	}
	c.atime, c.mtime = sb.Atim.Nano(), sb.Mtim.Nano()
	if a.inline == nil {
		a.inline = &inlineSet{byFile: make(map[fileid.Stamp]*inlineCopy)}
	}
	a.inline.add(c)
	keep = true
	a.count(func(s *FSApplyStats) { s.InlineCopies++ })
	if len(a.inline.all()) >= maxInlineCopies {
		return a.publishInline(a.inline.all())
	}
	return nil
}

// setAttrInline applies a setattr that carries its values to the open
// copy of its file, if there is one, and reports whether it did: the
// capture follows a file's writes with its attributes, and the copy would
// otherwise be published (synced alone) just to take them.
func (a *FSApplier) setAttrInline(rec Record) (bool, error) {
	c := a.inline.get(rec.File)
	if c == nil || rec.Op != OpSetAttr || rec.AttrMask == 0 {
		return false, nil
	}
	uid, gid := -1, -1
	if rec.AttrMask&AttrUID != 0 {
		uid = int(rec.UID)
	}
	if rec.AttrMask&AttrGID != 0 {
		gid = int(rec.GID)
	}
	if uid != -1 || gid != -1 {
		if err := unix.Fchown(c.work, uid, gid); err != nil {
			return true, fmt.Errorf("journal: apply %s of %s: chown the new copy of %s: %w", rec.Op, rec.File, c.ref.Rel, err)
		}
	}
	if rec.AttrMask&AttrMode != 0 {
		if err := unix.Fchmod(c.work, rec.Mode&ModePerm); err != nil {
			return true, fmt.Errorf("journal: apply %s of %s: chmod the new copy of %s: %w", rec.Op, rec.File, c.ref.Rel, err)
		}
	}
	if rec.AttrMask&AttrAtime != 0 {
		c.atime = rec.Atime
	}
	if rec.AttrMask&AttrMtime != 0 {
		c.mtime = rec.Mtime
	}
	return true, nil
}

// publishInline makes cs durable (one fsync, or one syncfs for several)
// and renames each over its file, in the order they were opened.
func (a *FSApplier) publishInline(cs []*inlineCopy) error {
	if len(cs) == 0 {
		return nil
	}
	cs = append([]*inlineCopy(nil), cs...)
	defer a.inline.forget(cs)
	for _, c := range cs {
		// The writes moved the copy's times; it gets the file's.
		if err := setTimes(procFD(c.work), c.atime, c.mtime, 0); err != nil {
			return fmt.Errorf("journal: apply write of %s (record %d): %s: %w", c.file, c.seq, c.ref.Rel, err)
		}
	}
	var err error
	if len(cs) == 1 {
		if err = unix.Fsync(cs[0].work); err != nil {
			err = fmt.Errorf("fsync the new copy of %s: %w", cs[0].ref.Rel, err)
		}
	} else if err = unix.Syncfs(a.syncFD); err != nil {
		err = fmt.Errorf("syncfs: %w", err)
	}
	if err != nil {
		return fmt.Errorf("journal: fs applier: %w", err)
	}
	var errs []error
	for _, c := range cs {
		if err := a.publish(c.ref.Dir, c.work, c.ref.Name); err != nil {
			errs = append(errs, fmt.Errorf("journal: apply write of %s (record %d): %s: %w", c.file, c.seq, c.ref.Rel, err))
		}
	}
	return errors.Join(errs...)
}
