// Package capture turns the change log of the master's volume
// (changelog.Change) into journal Records named by stable file IDs, and
// appends them to the journal.Log.
//
// # Events are hints, the volume is the truth
//
// fanotify merges and reorders events, and tells neither which attribute
// changed nor what was written (see package changelog). The capture therefore
// never replays events: an event only says which directory entries and which
// files to look at again. For each such entry it compares the master's
// current state (read through kernel file handles, so a rename of a parent
// after the event does not mislead it) with a model of what the standby holds,
// and emits the records that turn the one into the other. Everything is
// idempotent, so stale, merged or repeated events are harmless, and a missed
// one is made up for by the next event on the same entry or by a rescan.
//
// # The model
//
// The model is the standby's namespace as the emitted records make it: every
// replicated file with its Stamp, its kernel handle (FID), its type and its
// names (parent Stamp, name). Because records are derived from it, every
// record is valid against the standby when applied in order: a rename names
// the place the standby has the file, a remove names the Stamp the standby
// has at that name. The model is what a delete needs (a deleted file's Stamp
// cannot be read any more) and what finds a moved file (by its FID), so a
// rename is one record and contents are never copied twice.
//
// Moves that conflict (two directories swapped, a directory moved below a
// former child) are resolved by parking: the entry in the way is renamed on
// the standby into the volume root under ".ftnas-park.<id>.<gen>" and moved
// to its place when that is reconciled, or removed if it left the shares.
//
// # Records
//
//   - a new entry: create, mkdir or symlink with the current type, mode and
//     owner; a new name of a known file: link; a moved one: rename (one
//     record, however large the subtree); a gone one: remove or rmdir; one
//     whose Stamp was re-issued (fileid took it for a copy): removed under
//     the old Stamp and made again under the new one, with all its names.
//   - contents: a write record without data and without a range (fanotify
//     knows none): the standby fetches the current contents by delta, and
//     the metadata with them. Writes of the master's own NFS server, which
//     tells them (Config.Hints, hints.go), go instead as written: inline
//     writes and truncates in order, then a setattr with the values; the
//     standby fetches nothing. Only where that is provably the whole
//     change: every content event of the file came from that server, none
//     of its hints was lost, none is in flight (or its file is fetched
//     again after it), and the batch did not rescan.
//   - attributes and xattrs: a setattr record with an empty mask ("fetch
//     them all"), since fanotify does not say which attribute changed. The
//     directories whose entries changed get one too, so their times match.
//   - after a rescan has compared a directory of a share: a prune record
//     listing the names the model has for it then (split over several
//     records, by name range, when they exceed journal.MaxInline). The
//     standby removes every other entry it has there: what the master
//     deleted or renamed while the standby followed an older log or was
//     behind, which no record of this log names. The model is exactly what
//     the records so far made of the standby, so the names are those the
//     standby must keep; entries that failed to replicate are not listed
//     and go. Parked entries live in the volume root on both nodes, not in
//     the directory; a hard link is one name among the directory's like any
//     other. The volume root and the directories on the way to a share's
//     root are never pruned: they hold what is not replicated (the
//     capture's and the applier's own entries among them).
//   - an overflow (lost events) or a share root that moved: the share is
//     rescanned on the master and compared with the model; contents are
//     fetched again for files whose ctime differs from the one seen when
//     they were last shipped. No OpRescan record is needed: the master does
//     the comparison, the standby only applies ordinary records. Entries
//     the rescan parks before reaching them (moved on the master while it
//     runs) are compared where they are parked, a directory's own
//     attributes with its entries, so no lost change inside them is missed
//     once they are put back; one moved while it runs into a directory it
//     has listed, at a name the model has there, is compared where the
//     walk places it. A volume error (not a file gone or moved meanwhile:
//     that is no error) has the share rescanned, also when it happens in a
//     rescan.
//
// Records of one batch of events are queued in the Log at once (group
// commit) and committed while the next batch is translated; a Sync is
// answered once the batch holding its marker is durable. When the log is
// full, the Gate (if any) holds writers until the standby has caught up
// and the log is trimmed below the release depth; changes are never
// dropped.
//
// # The description
//
// The first batch of a capture describes every share in full (the model
// starts empty: see Limits). Where the volume is the root of a btrfs
// subvolume, it is read from a read-only snapshot of the volume made for
// it (".ftnas-snap-<log id>" in the volume root, with the btrfs ioctls of
// package kernel/btrfs): a consistent view, where a walk of the live
// volume is torn by the changes made while it reads (an entry renamed
// during the walk described twice, or not at all until its events come).
// The snapshot's handles are the live ones with another subvolume id, so
// the model keeps the live handles and every name, type, Stamp and time is
// read from the snapshot; a file without a Stamp is stamped on the live
// volume (if it is still there, else its events place it), and a subvolume
// nested in the volume, which the snapshot shows empty, is read live. The
// changes made since the capture began come after the description in the
// log, from the events, exactly as after a walk; contents and attributes
// are fetched by the standby from the live volume, so it may get them newer
// than the description, which the records after it account for. The
// snapshot is destroyed when the description is made, also when it
// fails, and one a crash left is destroyed by the next New; its creation
// and removal are events under a reserved name of the volume root, which
// give no record. Elsewhere (not btrfs, not a subvolume's root, the
// snapshot refused, or Config.NoSnapshot) the live volume is walked, and
// an Info line says why. Stats.Description says which way it was made.
//
// A log that continues the standby's (Config.Continue: this master took
// over from one that handed off to it, so its volume is exactly the
// standby's) is described silently: the description builds the model and
// logs nothing (Stats.Silent counts what it left out), and the standby
// reads on without a resync, a copy of the master all along. The volume
// must not change until the description's view is fixed (Fixed: its
// snapshot made, or its walk done), since a change before then is in the
// model but in no record. A volume the description must change (a file
// to stamp, a copied Stamp to re-issue) or that parks an entry, or meets
// a conflict or an error, is no such copy: Run fails with ErrNotCopy and
// the caller starts a log with a description.
//
// # Cost per change
//
// A new file costs a stamp (its Stamp is set as an xattr), a stat and a
// handle, read by name in its directory: four system calls (a handle
// before and after, so a rename racing with the reads is seen; the Stamp
// is written with setxattrat and XATTR_CREATE, not through /proc/self/fd,
// on kernels that have it, and read only if the file has one already:
// fileid.Tree.StampNew). The directories are opened once per batch, the
// entries a batch names that are new to the model are looked up ahead
// several at a time (they wait on the volume's locks more than they
// compute), and a file read in the batch is not read again to ship it. A
// file the model does not have is not looked for elsewhere (it has no old
// place to be moved from; a later move is reported). An attribute change whose file still
// has the ctime it was shipped with gives no record: so the event of the
// capture's own stamping, read after the file was shipped, costs a stat by
// handle (three calls, read with the batch's others several at a time)
// and no record (a content change is always fetched again). A burst the
// kernel's queue cannot hold waits in the capture's (DefaultQueueLen), so
// it is not lost into a rescan of the share.
//
// # Limits
//
// The model lives in memory (a few hundred bytes per file) and is not
// saved. At start it is empty, so the first records describe every file of
// the shares: that is the initial sync of a fresh standby (its volume empty
// but for the root's Stamp; a standby holding the same files, e.g. after a
// role switch, takes it too, fetching only blocks that differ, and loses
// by the prunes the files the master no longer has). A file the master
// renamed while the standby was away is created again at its new name (the
// master cannot know the standby has it elsewhere), its contents fetched
// whole, and pruned at its old one. Content changes found by a rescan, and
// attribute changes told by an event, rely on the ctime moving with every
// change (multigrain timestamps make it exact; with coarse ones a change
// within the same tick as the last shipment can be missed until the file
// changes again).
package capture
