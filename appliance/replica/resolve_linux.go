package replica

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"ftnas/appliance/fileid"
)

// syncTimeout bounds how long a fetch waits for the capture to catch up
// before it scans the volume instead (the capture waits while the log is
// full, and the log may be full of records waiting for this very fetch).
const syncTimeout = time.Second

// syncedResolver finds the files the standby fetches. A Stamp whose place
// in the index no longer holds it was removed or renamed on the volume,
// by something other than nasd's NFS server (Samba, a local process) or
// by it a moment ago; once the capture has caught up with the volume's
// events (Sync), it has told the index which (Tree.Removed, or the new
// name), and the index answers. Only if it still does not lead to the file
// does Tree.Resolve scan the volume, which reads every file's stamp, one
// scan at a time: 0.3 s and more with 10,000 files, while every fetch
// waiting on it stalls the standby (the replicate benchmark's markers,
// removed while their writes were fetched, made the master scan most of
// the time it served fetches).
type syncedResolver struct {
	tree *fileid.Tree
	sync func(context.Context) error // capture.Sync
	log  *slog.Logger
}

// Resolve implements journal.StampResolver.
func (r syncedResolver) Resolve(st fileid.Stamp) (*fileid.Ref, error) {
	ref, err := r.tree.Lookup(st)
	if err == nil || !errors.Is(err, fileid.ErrStale) || r.tree.Gone(st) {
		return ref, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	err = r.sync(ctx)
	cancel()
	if err != nil {
		r.log.Debug("replica: the capture did not catch up for a fetch; resolving by scan", "file", st, "err", err)
	}
	return r.tree.Resolve(st)
}
