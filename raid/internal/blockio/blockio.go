// Package blockio holds the block-device I/O the raid guest programs
// share: a reproducible data pattern, a synced write, and a read-back
// check that bypasses the page cache. Linux-only programs use it inside
// qemu guests.
package blockio

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
)

// Pattern returns n bytes derived from seed, the same for the same seed.
func Pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// WriteAt writes data at off on dev and syncs it.
func WriteAt(dev string, off int64, data []byte) error {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, off); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", dev, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", dev, err)
	}
	return f.Close()
}

// Verify reads data back from the disks, not the page cache.
func Verify(dev string, off int64, want []byte) (bool, error) {
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return false, err
	}
	f, err := os.Open(dev)
	if err != nil {
		return false, err
	}
	defer f.Close()
	got := make([]byte, len(want))
	if _, err := f.ReadAt(got, off); err != nil {
		return false, fmt.Errorf("read %s: %w", dev, err)
	}
	return bytes.Equal(got, want), nil
}
