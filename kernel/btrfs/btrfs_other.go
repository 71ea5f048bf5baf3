//go:build !linux

package btrfs

import "errors"

// Inode numbers of btrfs: see the Linux file.
const (
	SubvolRootIno     = 256
	EmptySubvolDirIno = 2
)

// IsSubvolRoot reports false: btrfs is Linux only.
func IsSubvolRoot(fd int) (bool, string, error) {
	return false, "btrfs snapshots are Linux only", nil
}

// Snapshot fails: btrfs is Linux only.
func Snapshot(src, dir int, name string) error { return errors.ErrUnsupported }

// Destroy fails: btrfs is Linux only.
func Destroy(dir int, name string) error { return errors.ErrUnsupported }
