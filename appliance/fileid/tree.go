package fileid

import "errors"

// ErrStale reports a Stamp that no file carries any more: the file was
// deleted, or never existed. NFS answers it with NFS3ERR_STALE.
var ErrStale = errors.New("fileid: stale file identity")

// maxDepth bounds a walk up the index, guarding against loops in a damaged
// index.
const maxDepth = 4096
