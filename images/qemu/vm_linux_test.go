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
