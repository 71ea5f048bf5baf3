// Package btrfs holds the few btrfs operations the node needs that
// golang.org/x/sys/unix has no helpers for: telling whether a directory is
// the root of a btrfs subvolume, making a read-only snapshot of one and
// destroying it (the BTRFS_IOC_SNAP_CREATE_V2 and BTRFS_IOC_SNAP_DESTROY(_V2)
// ioctls, whose argument structs and numbers are defined here from
// linux/btrfs.h), and reading and re-rooting btrfs file handles.
//
// # File handles
//
// A btrfs file handle (name_to_handle_at, types FILEID_BTRFS_*) names an
// inode by its object id, the id of the subvolume tree holding it (root)
// and its generation. A snapshot copies the tree: every inode keeps its
// object id and generation, so the handle of a file in a snapshot is the
// handle of the same file in the snapshotted subvolume with the root
// replaced (ReRoot), and either opens on the same mount with
// open_by_handle_at.
//
// # Nested subvolumes
//
// A snapshot does not descend into subvolumes below its source: each shows
// in it as an empty directory whose inode number is EmptySubvolDirIno.
//
// Linux only; elsewhere every operation fails with errors.ErrUnsupported
// (the handle functions, pure, work everywhere).
package btrfs
