//go:build !linux

package btrfstest

import "testing"

// Volume skips the test: loop-mounted btrfs is Linux only.
func Volume(tb testing.TB) string {
	tb.Skip("btrfs is Linux only")
	return ""
}
