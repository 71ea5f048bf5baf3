package changelog

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// newVolume makes a small filesystem image of type fstype ("ext4" or
// "btrfs") in t.TempDir(), loop-mounts it and returns the mount point. The
// mount and the loop device go away in Cleanup, also when the test fails.
func newVolume(t *testing.T, fstype string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loop mounts and fanotify filesystem marks")
	}
	mkfs, err := exec.LookPath("mkfs." + fstype)
	if err != nil {
		t.Skipf("needs mkfs.%s: %v", fstype, err)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "vol.img")
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	size := int64(32 << 20)
	args := []string{"-q", "-F", img}
	if fstype == "btrfs" {
		size = 128 << 20
		args = []string{"-q", "-f", img}
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run(t, mkfs, args...)
	dev := strings.TrimSpace(run(t, "losetup", "--find", "--show", img))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	run(t, "mount", "-t", fstype, dev, mnt)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	return mnt
}

// run runs a command and fails the test with its output if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// sh runs a shell command line in dir (as a separate process).
func sh(t *testing.T, dir, script string) {
	t.Helper()
	cmd := exec.Command("sh", "-ec", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sh %q: %v: %s", script, err, out)
	}
}
