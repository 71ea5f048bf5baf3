package btrfs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"unsafe"

	"ftnas/kernel/btrfs/btrfstest"

	"golang.org/x/sys/unix"
)

// The numbers and sizes linux/btrfs.h gives (x86-64 and arm64 alike).
func TestIoctlABI(t *testing.T) {
	if got := unsafe.Sizeof(volArgs{}); got != volArgsSize {
		t.Errorf("sizeof(btrfs_ioctl_vol_args) = %d, want %d", got, volArgsSize)
	}
	if got := unsafe.Sizeof(volArgsV2{}); got != volArgsV2Size {
		t.Errorf("sizeof(btrfs_ioctl_vol_args_v2) = %d, want %d", got, volArgsV2Size)
	}
	if got := unsafe.Offsetof(volArgsV2{}.Name); got != 56 {
		t.Errorf("offsetof(btrfs_ioctl_vol_args_v2, name) = %d, want 56", got)
	}
	if iocSnapCreateV2 != 0x50009417 {
		t.Errorf("BTRFS_IOC_SNAP_CREATE_V2 = %#x, want 0x50009417", iocSnapCreateV2)
	}
	if iocSnapDestroyV1 != 0x5000940f {
		t.Errorf("BTRFS_IOC_SNAP_DESTROY = %#x, want 0x5000940f", iocSnapDestroyV1)
	}
}

func open(t *testing.T, p string) int {
	t.Helper()
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func handle(t *testing.T, p string) (int32, []byte) {
	t.Helper()
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	return h.Type(), h.Bytes()
}

func TestSnapshot(t *testing.T) {
	vol := btrfstest.Volume(t)
	if err := os.MkdirAll(filepath.Join(vol, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(vol, "d", "f")
	if err := os.WriteFile(f, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(f, "user.x", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	vfd := open(t, vol)
	if ok, why, err := IsSubvolRoot(vfd); !ok || err != nil {
		t.Fatalf("IsSubvolRoot(volume) = %v, %q, %v", ok, why, err)
	}
	if ok, why, err := IsSubvolRoot(open(t, filepath.Join(vol, "d"))); ok || why == "" || err != nil {
		t.Fatalf("IsSubvolRoot(directory) = %v, %q, %v", ok, why, err)
	}
	nested := false
	if _, err := exec.LookPath("btrfs"); err == nil {
		if out, err := exec.Command("btrfs", "subvolume", "create", filepath.Join(vol, "sub")).CombinedOutput(); err != nil {
			t.Fatalf("btrfs subvolume create: %v: %s", err, out)
		}
		nested = true
	}

	if err := Snapshot(vfd, vfd, ".snap"); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(vol, ".snap")
	sfd := open(t, snap)
	if ok, _, err := IsSubvolRoot(sfd); !ok || err != nil {
		t.Fatalf("IsSubvolRoot(snapshot) = %v, %v", ok, err)
	}
	if b, err := os.ReadFile(filepath.Join(snap, "d", "f")); err != nil || string(b) != "hello" {
		t.Fatalf("file in the snapshot: %q, %v", b, err)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(snap, "d", "f"), "user.x", buf); err != nil || string(buf[:n]) != "v" {
		t.Fatalf("xattr in the snapshot: %q, %v", buf[:n], err)
	}
	if err := os.WriteFile(filepath.Join(snap, "new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write into the snapshot: %v, want EROFS", err)
	}
	if nested {
		var sb unix.Stat_t
		if err := unix.Lstat(filepath.Join(snap, "sub"), &sb); err != nil || sb.Ino != EmptySubvolDirIno {
			t.Fatalf("nested subvolume in the snapshot: inode %d, %v", sb.Ino, err)
		}
	}

	// The file's handle, re-rooted, opens its copy in the snapshot.
	typ, live := handle(t, f)
	lh, ok := ParseHandle(typ, live)
	if !ok {
		t.Fatalf("handle of type %#x is no btrfs handle", typ)
	}
	styp, sroot := handle(t, snap)
	rh, ok := ParseHandle(styp, sroot)
	if !ok || rh.Objectid != SubvolRootIno || rh.Root == lh.Root {
		t.Fatalf("snapshot root handle %+v, %v (live root %d)", rh, ok, lh.Root)
	}
	sh, ok := ReRoot(typ, live, lh.Root, rh.Root)
	if !ok {
		t.Fatal("ReRoot failed")
	}
	if ftyp, fb := handle(t, filepath.Join(snap, "d", "f")); ftyp != typ || !bytes.Equal(fb, sh) {
		t.Fatalf("handle in the snapshot %#x %x, re-rooted %#x %x", ftyp, fb, typ, sh)
	}
	fd, err := unix.OpenByHandleAt(vfd, unix.NewFileHandle(typ, sh), unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		t.Fatalf("open_by_handle_at of the re-rooted handle: %v", err)
	}
	n, _ := unix.Read(fd, buf)
	unix.Close(fd)
	if string(buf[:n]) != "hello" {
		t.Fatalf("re-rooted handle reads %q", buf[:n])
	}

	if err := Destroy(vfd, ".snap"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(snap); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("snapshot after Destroy: %v", err)
	}
	if err := Destroy(vfd, ".snap"); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("Destroy of a gone snapshot: %v, want ENOENT", err)
	}
	for _, bad := range []string{"", ".", "..", "a/b", string(make([]byte, 5000))} {
		if err := Snapshot(vfd, vfd, bad); err == nil {
			t.Errorf("Snapshot named %q succeeded", bad)
		}
		if err := Destroy(vfd, bad); err == nil {
			t.Errorf("Destroy of %q succeeded", bad)
		}
	}
}

func TestNotBtrfs(t *testing.T) {
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.BTRFS_SUPER_MAGIC {
		t.Skip("the temporary directory is on btrfs")
	}
	fd := open(t, dir)
	if ok, why, err := IsSubvolRoot(fd); ok || why == "" || err != nil {
		t.Fatalf("IsSubvolRoot(%s) = %v, %q, %v", dir, ok, why, err)
	}
	if err := Snapshot(fd, fd, "snap"); err == nil {
		t.Fatal("Snapshot on a file system that is not btrfs succeeded")
	}
}
