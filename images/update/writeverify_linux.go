package update

import "io"

// WriteVerify writes part p from r onto the block device dev (opened
// exclusively), syncs, drops the cached copy and returns the SHA-256 read
// back, failing when it is not the manifest's: the write Update does to
// the target slot, for the installer (package install).
func WriteVerify(r io.Reader, p Part, dev string) (string, error) { return writeVerify(r, p, dev) }
