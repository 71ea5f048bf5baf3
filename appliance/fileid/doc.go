// Package fileid gives every file on a volume a stable identity that does not
// depend on its inode, its path or the machine, so an NFS file handle made from
// it survives a restart, a rename of the file or of any parent directory, and a
// move to a replica that holds the same files.
//
// The identity is a Stamp (a 64-bit ID and a 32-bit generation) kept in two
// places:
//
//   - with the file, in the trusted.ftnas.id extended attribute (trusted.*, not
//     user.*, so Samba neither shows nor copies it); this is the truth;
//   - in a bbolt index ID → (parent ID, name), updated on rename, so the server
//     finds a file from its handle without keying anything by path. The index
//     is a cache of the xattrs: it is written by one goroutine in group
//     commits, and a reconciling scan at start rebuilds what a crash lost and
//     stamps files made while nasd was down.
//
// Every lookup through the index is verified against the xattr of the file it
// leads to, so a stale index entry can never hand out another file's data: a
// mismatch triggers a scan for the ID, and an ID that is nowhere is stale.
// IDs duplicated by a copy that preserved xattrs are re-issued to the copy.
//
// Stamps are read and written relative to a directory descriptor with
// getxattrat and setxattrat (Linux 6.13); on older kernels through
// /proc/self/fd/N/name, whose walk through procfs costs more than the
// read or write itself. StampNew stamps a file the caller believes new
// without reading it first (XATTR_CREATE), the change-log capture's case.
//
// An identity handed out in an NFS handle must survive a power cut: the
// NFS server stamps through StampAtSync (or StampAtFresh and one syncfs
// for a READDIRPLUS) and fsyncs the files it creates, so a Stamp given
// just before the cut is on disk and the reconciling scan at the next
// start does not give the file another. Other stampers (the change-log
// capture) do not wait for the disk.
//
// Handle is the NFS handle codec: (share fsid, ID, generation), versioned.
package fileid
