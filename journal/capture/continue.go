package capture

import "errors"

// ErrNotCopy ends the Run of a capture configured to continue a log
// (Config.Continue) whose volume turned out not to be the standby's copy
// as it stands: describing it had to change it (a file without a Stamp,
// or with a copied one), parked an entry, or met a conflict or an error.
// The caller starts a log with a description instead.
var ErrNotCopy = errors.New("capture: the volume is not the standby's copy; a log that continues the standby's cannot start here")
