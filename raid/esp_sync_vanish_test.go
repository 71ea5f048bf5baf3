package raid

import (
	"testing"
	"testing/fstest"
)

// TestAdopterVanished: SyncESP leaves out a disk that fails because it
// was pulled (its /sys/class/block entry is gone), never one that is
// still there.
func TestAdopterVanished(t *testing.T) {
	a := &Adopter{ClassBlock: fstest.MapFS{
		"vda/size":                     {Data: []byte("131072\n")},
		"vdb/queue/logical_block_size": {Data: []byte("\n")}, // being torn down: still there
	}}
	for disk, want := range map[string]bool{"vda": false, "vdb": false, "vdd": true} {
		if got := a.vanished(disk); got != want {
			t.Errorf("vanished(%s) = %v, want %v", disk, got, want)
		}
	}
}
