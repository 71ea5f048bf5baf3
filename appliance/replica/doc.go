// Package replica is the runtime of replication on a node: a Master
// captures the changes of its volume into the journal and ships them; a
// Standby receives them and applies them to its own volume.
//
//   - Master (master_linux.go) owns the capture (journal/capture: fanotify
//     filter → records named by stable file IDs), a journal.Log of its own,
//     and a journal.Shipper serving one standby at a time over mutually
//     authenticated, pinned TLS (journal.TLSConfig). It answers the
//     standby's fetches from the volume (journal.FSSource), trims the log on
//     acknowledgement, and stamps records with the fencing epoch it is
//     given (heartbeat's); a standby that has seen a higher epoch fences it
//     and Run returns journal.ErrFenced.
//   - Standby (standby_linux.go) dials the master, resumes from its
//     journal.PositionFile, applies with journal.FSApplier, and reconnects
//     with exponential back-off when the connection breaks.
//
// A master that gives the service up hands off first (Master.HandOff):
// it waits until the standby has applied everything logged so far and
// ends the session with journal.ErrHandedOff; the standby, about to serve,
// drains (Standby.Drain: its session runs until the master ends it, no
// reconnect) and learns whether it got the hand-off (StandbyStats.HandedOff)
// and the note the master gave it (StandbyStats.HandOffNote: the
// appliance's NFS write generation).
//
// After a hand-off the two volumes are the same log up to the same
// record, so the new master does not describe its volume anew: its first
// log continues the handed-off one (MasterConfig.Continue, the standby
// position its Drain ended at: the same log ID, numbered on, described
// silently by the capture), and the old master, once its Run has ended
// with nothing logged after the hand-off (Master.HandedOff), takes that
// position as its standby position and reads on: a copy all along, where
// a resync from a description would rewrite its volume before all of the
// new log is there. The new master keeps its volume unchanged until Ready
// (its capture's view of the volume fixed); a volume that is no copy
// (capture.ErrNotCopy) or holds parked entries gets a described log, and
// the old master resyncs from it as before.
//
// Both run until their context ends (Run), release everything they opened
// when Run returns, and may be run again: a node switches role by ending
// one Run and starting the other, as heartbeat decides. Stats are plain
// structs; metrics are the caller's.
//
// Lag is the time from a change on the master to its application on the
// standby: records carry the master's capture time (journal.Record.Time,
// part of the version 1 encoding), and the standby subtracts it from the
// time it applied the record (so the two clocks' offset adds to it; keep
// them in step with NTP). The master reports the age of its oldest
// unacknowledged record, which needs one clock only.
//
// Every Master.Run starts a new log (a new log ID) whose first records
// describe every share in full: that is the initial sync of a fresh standby
// (an empty volume whose root carries the master's root Stamp). A standby
// that followed an earlier log gets journal.ErrResync; its node resets its
// position and follows the new log from its first record: files it has
// already are kept and brought up to date, and the rescan's prune records
// (journal.OpPrune) remove in each share directory what the master no
// longer has (deleted or renamed while the standby was away or behind), so
// it ends with exactly the master's tree; see the package capture.
//
// A full log holds the master's writers (back-pressure) while a standby
// drains it. With no standby connected for MasterConfig.RestartAfter (30 s)
// while the log is full of changes, the master starts a new log within
// its term instead (OnNewLog: the caller takes a new epoch for it, so
// positions in the two logs are never compared): the standby resyncs
// from the new log's description when it comes back, rather than the
// writers waiting for it for as long as it is away.
//
// The journal's TCP connections end within seconds when the other side
// falls silent (TCP_USER_TIMEOUT and keepalive, tcp_linux.go), so a cut
// link does not leave a session "connected" for TCP's 15 minutes while
// sync commits wait for acknowledgements that cannot come: the master
// sees its standby gone and decides (appliance: planSync).
package replica
