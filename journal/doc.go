// Package journal is the node layer's change log: what changed on the
// master's volume, in order, until the standby has applied it.
//
//   - Record (record.go): one change — create (files, FIFOs, sockets,
//     devices), mkdir, symlink, link, remove, rmdir, rename, write (with its
//     range when known, optionally with the data inline), truncate, setattr,
//     xattr set/remove, a rescan after capture lost events, or a prune
//     (a directory's entries in a name range are exactly the names listed:
//     the standby removes the others, which a rescan found it cannot have
//     any more). Files are
//     named by their stable identity (fileid.Stamp) and their parent's Stamp
//     plus a name, never by path, so a rename is one record and handles agree
//     on both nodes. The binary encoding is versioned, canonical (one
//     encoding per record) and strictly validated.
//   - Log (log.go): a bbolt file of its own (not the config store) holding
//     records keyed by a monotonic sequence number. One writer goroutine
//     commits concurrent appends in groups, so appenders wait for durability
//     without paying a transaction each; Enqueue returns once the records
//     are queued, so a single appender can prepare its next records while
//     these are committed. It keeps the fencing epoch, a random
//     log ID (a standby never resumes into another log's numbering), and a
//     depth limit at which appenders are held — back-pressure, never loss.
//     Records are trimmed once the standby has acknowledged them.
//   - The stream (frame.go, stream.go, tls.go): framed, versioned messages
//     between the Shipper (master) and the Receiver (standby) over any
//     net.Conn, normally TLS 1.3 with both certificates pinned to the pair
//     (TLSConfig, GenerateCert). The receiver says where it is; the shipper
//     streams from there within the receiver's window and trims on acks.
//     Records without data make the standby fetch current contents from the
//     master over the same connection ("ship the log, fetch the data"), with
//     a fixed-block checksum delta (delta.go) so unchanged blocks stay put.
//     Epochs fence: a receiver refuses a shipper whose epoch is below the
//     highest it has seen, and the shipper then stops with ErrFenced. A
//     master that hands the service over ends the session with
//     ErrHandedOff once the receiver has acknowledged its whole log
//     (Shipper.EndSession), which the receiver learns: the new master's
//     proof that nothing it was shipped is missing. A HandOff also carries
//     a note the journal does not read (HandOffMsg). A log may continue
//     another (Options.Continue: its ID, numbered on), so a receiver
//     that has all of that one reads on without a resync. Large fetch
//     replies are read into buffers the receiver pools, which the applier
//     gives back (FetchReply.release) once it has written their data and
//     set the attributes their xattrs came with.
//   - Applying (apply_linux.go, batch_linux.go, source_linux.go): the
//     Applier interface is the standby's side effect; FSApplier applies
//     records to a volume through fileid's index, never showing a
//     half-applied file under its final name, and FSSource answers fetches
//     from the master's volume. A BatchApplier (FSApplier is one) takes a
//     whole batch: the receiver merges the Records messages queued behind
//     the first, namespace records are applied in order, and the fetches
//     are deferred to the batch's end (or to the next prune, which finds
//     them done) — one per file, attributes, xattrs
//     and the first 4 MiB of contents in one round trip, several in flight —
//     with one syncfs for all new copies before they are renamed into
//     place; Commit's syncfs then makes the batch and its position durable
//     before the ack. A Prefetcher (FSApplier is one, prefetch_linux.go) is
//     shown each Records message as it arrives and starts fetching the
//     ranges its writes name at once; the batch takes what later records
//     did not write into again. A file of which the batch wrote only a few
//     small ranges is patched in place rather than copied: the patch goes
//     into a redo log first, which a restarted standby replays
//     (patch_linux.go).
package journal
