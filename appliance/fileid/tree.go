package fileid

import "errors"

// ErrStale reports a Stamp that no file carries any more: the file was
// deleted, or never existed. NFS answers it with NFS3ERR_STALE.
var ErrStale = errors.New("fileid: stale file identity")
