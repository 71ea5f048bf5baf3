package qemu_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"ftnas/images/kernel"
	"ftnas/images/lab"
	"ftnas/images/qemu"
)

// TestBootSmoke boots the Debian cloud kernel with the generic /init and
// two virtio disks, runs a guest program that writes to the second disk,
// and checks the write on the host, the console output and QMP.
func TestBootSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("boots qemu (about 4 s under TCG)")
	}
	if err := qemu.Available(qemu.Options{}); err != nil {
		t.Skip(err)
	}
	k := lab.Kernel(t)
	initrd := lab.Initramfs(t, k, lab.Image{
		Modules:    kernel.VirtioModules(),
		GoPrograms: map[string]string{"/bin/smoke": "ftnas/images/qemu/internal/smoke"},
		Run:        "/bin/smoke",
	})
	dir := t.TempDir()
	disks := []string{filepath.Join(dir, "a.raw"), filepath.Join(dir, "b.raw")}
	for _, d := range disks {
		if err := qemu.CreateRaw(d, 8<<20); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	vm := qemu.Boot(t, qemu.Options{Kernel: k.Vmlinuz, Initrd: initrd, Disks: disks, QMP: true, Timeout: 60 * time.Second})
	ret, err := vm.QMP("query-status", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ret, []byte(`"running"`)) {
		t.Errorf("query-status = %s", ret)
	}
	if _, err := vm.QMP("no-such-command", nil); err == nil {
		t.Error("QMP accepted a bogus command")
	}
	m := vm.MustExpect(regexp.MustCompile(`smoke: disk vdb serial=(\S+) sectors=(\d+)`))
	if m[1] != "disk1" || m[2] != "16384" {
		t.Errorf("vdb serial %s sectors %s; want disk1, 16384", m[1], m[2])
	}
	vm.MustPass()
	t.Logf("boot to power-off: %v", time.Since(start).Round(time.Millisecond))
	b, err := os.ReadFile(disks[1])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[4096:4096+17], []byte("written-by-guest\n")) {
		t.Errorf("guest write not on the host disk: %q", b[4096:4096+17])
	}
}

// TestBootFailure checks a failing guest command is reported as such, and
// a VM killed at its timeout as that.
func TestBootFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("boots qemu twice (about 4 s under TCG)")
	}
	if err := qemu.Available(qemu.Options{}); err != nil {
		t.Skip(err)
	}
	k := lab.Kernel(t)
	initrd := lab.Initramfs(t, k, lab.Image{})
	vm := qemu.Boot(t, qemu.Options{Kernel: k.Vmlinuz, Initrd: initrd, Append: "ftnas.run=/bin/missing"})
	err := vm.Result()
	if err == nil || !regexp.MustCompile(`guest failed: init: /bin/missing: .*no such file`).MatchString(err.Error()) {
		t.Errorf("Result = %v; want the guest's failure", err)
	}
	if err := vm.Wait(); err != nil {
		t.Errorf("Wait after a guest failure: %v (the guest still powers off)", err)
	}

	vm = qemu.Boot(t, qemu.Options{Kernel: k.Vmlinuz, Initrd: initrd, Timeout: 300 * time.Millisecond})
	_, err = vm.Expect(regexp.MustCompile(`never printed`))
	if err == nil || !regexp.MustCompile(`killed at its timeout`).MatchString(err.Error()) {
		t.Errorf("Expect past the timeout = %v", err)
	}
}

// TestBreakDisk checks the blkdebug rules with this host's qemu, on a VM
// held before its first instruction (-S, so no guest touches the disk):
// the disk reads, BreakDisk's zero write goes through and switches the
// errors on, and from then on reads and writes through the disk's drive
// fail with EIO (qemu-io reports on the console), while the image keeps
// what was written before.
func TestBreakDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("starts qemu")
	}
	if err := qemu.Available(qemu.Options{}); err != nil {
		t.Skip(err)
	}
	fw, err := qemu.FindOVMF(nil)
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	img, cfg := filepath.Join(dir, "d.raw"), filepath.Join(dir, "d.blkdebug")
	if err := qemu.CreateRaw(img, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(qemu.BlkdebugConfig(5)), 0o644); err != nil {
		t.Fatal(err)
	}
	vars, err := fw.TempVars(dir)
	if err != nil {
		t.Fatal(err)
	}
	vm := qemu.Boot(t, qemu.Options{Firmware: fw.Code, FirmwareVars: vars, Disks: []string{img}, Blkdebug: map[int]string{0: cfg},
		QMP: true, Timeout: 60 * time.Second, Extra: []string{"-S"}})
	io := func(cmd string) {
		t.Helper()
		if out, err := vm.HMP(`qemu-io drive-disk0 "` + cmd + `"`); err != nil || out != "" {
			t.Fatalf("qemu-io %s: %q, %v", cmd, out, err)
		}
	}
	io("write -P 0xab 4096 512")
	vm.MustExpect(regexp.MustCompile(`(?m)^wrote 512/512 bytes at offset 4096\r?$`))
	io("read -P 0xab 4096 512")
	vm.MustExpect(regexp.MustCompile(`(?m)^read 512/512 bytes at offset 4096\r?$`))
	if err := vm.BreakDisk("disk0", 8192); err != nil {
		t.Fatal(err)
	}
	vm.MustExpect(regexp.MustCompile(`(?m)^wrote 512/512 bytes at offset 8192\r?$`))
	io("read 4096 512")
	vm.MustExpect(regexp.MustCompile(`(?m)^read failed: Input/output error\r?$`))
	io("write -P 0xcd 4096 512")
	vm.MustExpect(regexp.MustCompile(`(?m)^write failed: Input/output error\r?$`))
	if err := vm.BreakDisk("disk9", 0); err == nil {
		t.Error("BreakDisk of a disk that is not there succeeded")
	}
	if err := vm.BreakDisk("disk0", 100); err == nil {
		t.Error("BreakDisk at an unaligned offset succeeded")
	}
	vm.Kill()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[4096:4608], bytes.Repeat([]byte{0xab}, 512)) {
		t.Errorf("the write before the break is not on the image: % x", b[4096:4112])
	}
}
