package btrfstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Volume makes a sparse btrfs image of 256 MiB in tb.TempDir(),
// loop-mounts it and returns the mount point; the mount and the loop
// device go away in Cleanup. It skips the test without root or
// mkfs.btrfs.
func Volume(tb testing.TB) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: loop mounts")
	}
	mkfs, err := exec.LookPath("mkfs.btrfs")
	if err != nil {
		tb.Skipf("needs mkfs.btrfs: %v", err)
	}
	dir := tb.TempDir()
	img, mnt := filepath.Join(dir, "vol.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.Truncate(256 << 20); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	run(tb, mkfs, "-q", "-f", img)
	dev := strings.TrimSpace(run(tb, "losetup", "--find", "--show", img))
	tb.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			tb.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	run(tb, "mount", "-t", "btrfs", dev, mnt)
	tb.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			tb.Errorf("umount %s: %v: %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	return mnt
}

func run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
