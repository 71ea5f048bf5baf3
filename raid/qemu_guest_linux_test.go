package raid_test

import (
	"path/filepath"
	"testing"
	"time"

	"ftnas/images/initramfs"
	"ftnas/images/lab"
	"ftnas/images/qemu"
)

// mdGuest boots the Debian kernel with md, raid1, mdadm and the Go
// program pkg as /bin/NAME, with len(disks) blank 64 MiB virtio disks
// named by disks. It skips under -short or without qemu. It returns the
// VM and the disk image paths.
func mdGuest(t *testing.T, name, pkg string, disks []string, qmp bool, timeout time.Duration) (*qemu.TestVM, []string) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots qemu (10-20 s under TCG)")
	}
	if err := qemu.Available(qemu.Options{}); err != nil {
		t.Skip(err)
	}
	k := lab.Kernel(t)
	initrd := lab.Initramfs(t, k, lab.Image{
		Modules:    []string{"virtio_pci", "virtio_blk", "md_mod", "raid1"},
		Programs:   []initramfs.Program{lab.Mdadm(t)},
		GoPrograms: map[string]string{"/bin/" + name: pkg},
		Run:        "/bin/" + name,
	})
	dir := t.TempDir()
	var paths []string
	for _, n := range disks {
		p := filepath.Join(dir, n+".raw")
		if err := qemu.CreateRaw(p, 64<<20); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	vm := qemu.Boot(t, qemu.Options{Kernel: k.Vmlinuz, Initrd: initrd, Disks: paths, Memory: 384, QMP: qmp, Timeout: timeout})
	return vm, paths
}
