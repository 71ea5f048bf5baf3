// Package changelog is the capture end of the change log: a fanotify filter
// that sees every change to a volume's shares, whoever makes it (Samba, an
// NFS server, a local shell), and a gate that holds writers back when the
// journal cannot take more.
//
// # Filter
//
// A Filter is one fanotify group (FAN_CLASS_NOTIF, FAN_REPORT_DFID_NAME_TARGET)
// with a filesystem mark on the volume, listening for FAN_CREATE,
// FAN_DELETE, FAN_RENAME, FAN_ATTRIB, FAN_MODIFY and FAN_CLOSE_WRITE on files
// and directories. Events name files by kernel file handles: the directory's
// handle plus the entry name, and the object's own handle. The Filter keeps
// a tree of directory handles (learned by walking the shares at start and
// after an overflow, then kept in step by replaying directory creates,
// deletes and renames in event order) so each Change carries the path the
// entry had when the change happened, also when its directory has since been
// renamed or removed. A directory the tree does not know is looked up with
// open_by_handle_at (where it is now). Changes outside every Share, and
// changes by processes Options.Ignore names (the applier), are dropped; the
// tree follows them all the same.
//
// The queue is bounded (no FAN_UNLIMITED_QUEUE). When the consumer falls
// behind, events wait in the kernel; if the queue overflows, the Filter
// relearns the tree and sends OpOverflow for every share, so the consumer
// rescans instead of losing changes. A share root that is created, removed
// or moved also yields OpOverflow for that share.
//
// What fanotify tells, and what it does not (Linux 6.18):
//   - create, delete and rename with both names in one event (FAN_RENAME);
//     rename onto an existing name replaces it without a delete event.
//   - A hard link is a create: Change.FID equals the FID of the inode's other
//     names. Link-count changes themselves arrive without a name and are not
//     reported.
//   - chmod, chown, setting both times, setxattr and removexattr are all
//     FAN_ATTRIB (OpAttrib): which attribute changed, and the old or new
//     value, is not told. Setting only the mtime is FAN_MODIFY; setting only
//     the atime is FAN_ACCESS, which is not watched (nor are reads).
//   - write and truncate are FAN_MODIFY, without the range written; the
//     in-process NFS server knows ranges, fanotify does not.
//   - no timestamps: Change.Time is when the Filter read the event.
//   - the kernel merges a process's queued events on one entry and inode, so
//     one event can mean create, modify and close-write (reported in that
//     order), and a later change can be reported at the place of an earlier
//     one; a merged create and delete is ordered by whether the entry exists
//     when read. Changes are therefore hints of what to bring up to date
//     (fetch the current state of Path), not a replayable history.
//   - a rename across btrfs subvolumes fails with EXDEV, so tools copy and
//     delete: that arrives as creates and deletes.
//   - pid is the process (thread-group) that made the change; 0 when it is
//     in a PID namespace the reader cannot see.
//
// # Gate
//
// A Gate is a second fanotify group (FAN_CLASS_CONTENT — groups that report
// file handles cannot take permission events) that marks the same
// filesystem with FAN_OPEN_PERM only while it is held: while open it has
// no mark, so opens are not asked about at all (a permission event is a
// round trip through this process for every open, readers' too). While
// held (Hold, until Release) it holds opens that may write — opened for writing
// or truncating, read from the opener's blocked system call in
// /proc/<tid>/syscall (open, openat, openat2, creat, open_by_handle_at); an
// open it cannot read is held too. It never denies, holds one open at most
// MaxHold, never holds its own process or ones Ignore names, and allows
// everything on Close (as the kernel does if the process dies). It cannot
// hold what needs no open: writes through descriptors opened before Hold,
// and namespace operations (create, rename, unlink, mkdir, chmod,
// setxattr, truncate(2) by path) — those reach the Filter's bounded queue,
// whose overflow is answered by a rescan.
package changelog
