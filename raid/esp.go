package raid

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// HashPartition returns the SHA-256 (hex) of partition p's bytes as r
// holds them (r is a whole disk: an image file or a block device). Two
// ESPs are copies of each other exactly when their hashes are equal; the
// firmware writer checks this after writing every disk, and the ESP sync
// compares disks with it.
func HashPartition(r io.ReaderAt, p Partition) (string, error) {
	if p.Start < 0 || p.Size <= 0 {
		return "", fmt.Errorf("raid: hash partition %d (%s): bad extent start=%d size=%d", p.Number, p.Role, p.Start, p.Size)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.NewSectionReader(r, p.Start, p.Size))
	if err != nil {
		return "", fmt.Errorf("raid: hash partition %d (%s): %w", p.Number, p.Role, err)
	}
	if n != p.Size {
		return "", fmt.Errorf("raid: hash partition %d (%s): read %d of %d bytes: %w", p.Number, p.Role, n, p.Size, io.ErrUnexpectedEOF)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// HashESP returns the SHA-256 (hex) of the ESP of a disk laid out as d.
func HashESP(r io.ReaderAt, d DiskLayout) (string, error) {
	p, ok := d.Partition(RoleESP)
	if !ok {
		return "", fmt.Errorf("raid: hash ESP of %s: layout has no %s partition", d.Disk, RoleESP)
	}
	return HashPartition(r, p)
}

// Partition returns the disk's partition with role.
func (d DiskLayout) Partition(role string) (Partition, bool) {
	for _, p := range d.Partitions {
		if p.Role == role {
			return p, true
		}
	}
	return Partition{}, false
}
