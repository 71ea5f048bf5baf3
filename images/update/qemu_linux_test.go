package update_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"ftnas/images/boot"
	"ftnas/images/deb"
	"ftnas/images/disk"
	"ftnas/images/guest"
	"ftnas/images/initramfs"
	"ftnas/images/lab"
	"ftnas/images/qemu"
	"ftnas/images/rootfs"
	"ftnas/images/update"
	"ftnas/images/userland"
	"ftnas/raid"
)

// slotSize fits the zstd userland image (about 110 MiB).
const slotSize = 192 * raid.MiB

// TestQEMUUpdateRollback installs the real userland on 2 disks and boots
// it under OVMF, then:
//
//  1. updates from slot A to a new image (the userland with a marker
//     file added) through `nasctl update` (the init's test hook, reading
//     the bundle from a third disk), reboots and sees slot B serve and
//     bless its entry;
//  2. on B (release serial 5, /etc/ftnas/release in its image) refuses
//     an older signed bundle (serial 4, a replay) with a clear
//     downgrade error, then updates from B to a slot whose squashfs is
//     garbage (serial 6; the bundle's hash matches the garbage, so the
//     write-time check passes),
//     reboots, sees the initramfs fail on A once per try, as
//     systemd-boot counts the tries down, and then B come back by
//     itself, with every disk's ESP identical.
//
// Each qemu run ends at a reboot (qemu runs with -no-reboot); the test
// starts the next one on the same disks. About 10 minutes under TCG.
func TestQEMUUpdateRollback(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the firmware with its userland six times under TCG (about 10 minutes)")
	}
	fw, err := userland.BootTools()
	if err != nil {
		t.Skip(err)
	}
	k := lab.Kernel(t)
	bootloader := lab.Bootloader(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Minute)
	defer cancel()

	tree, files := lab.Userland(ctx, t)
	// The box trusts the build cache's development key, which signs
	// both bundles (as images/cmd/build does without -signing-key).
	key, keyPath, _, err := update.DevSigningKey(deb.DefaultCacheDir())
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	t.Logf("signing with the development key %s (%s)", update.KeyIDOf(pub), keyPath)
	keyFiles, err := userland.UpdateKeyFiles([]userland.UpdateKey{{ID: update.KeyIDOf(pub).String(), PEM: update.MarshalPublicKey(pub)}})
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, keyFiles...)
	imA, err := userland.SlotImage(ctx, tree, files, filepath.Join(dir, "a.squashfs"), userland.CompressionLevel)
	if err != nil {
		t.Fatal(err)
	}
	release, err := update.MarshalRelease(update.Release{Version: "test-new", Serial: 5})
	if err != nil {
		t.Fatal(err)
	}
	filesB := append(append([]rootfs.File(nil), files...), rootfs.File{Path: "/etc/ftnas/update-test", Data: []byte("new image\n")},
		rootfs.File{Path: update.DefaultReleaseFile, Data: release})
	imB, err := userland.SlotImage(ctx, tree, filesB, filepath.Join(dir, "b.squashfs"), userland.CompressionLevel)
	if err != nil {
		t.Fatal(err)
	}
	good := bundle(t, filepath.Join(dir, "good.bundle"), update.Sources{Version: "test-new", Serial: 5, Rootfs: imB.Path, Keys: []ed25519.PrivateKey{key}})
	// A release before B's, signed by the same key: B refuses it.
	old := bundle(t, filepath.Join(dir, "old.bundle"), update.Sources{Version: "test-old", Serial: 4, Rootfs: imA.Path, Keys: []ed25519.PrivateKey{key}})
	garbage := filepath.Join(dir, "garbage.squashfs")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a squashfs ", 300_000)), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := bundle(t, filepath.Join(dir, "bad.bundle"), update.Sources{Version: "test-broken", Serial: 6, Rootfs: garbage, Keys: []ed25519.PrivateKey{key}})

	res, err := disk.Build(ctx, disk.Inputs{
		Kernel:     k,
		Bootloader: bootloader,
		Mdadm:      lab.Mdadm(t).Source,
		TestInit:   lab.GoBinary(t, initramfs.InitPackage),
		BootInit:   lab.GoBinary(t, disk.BootInitPackage),
		Installer:  lab.GoBinary(t, disk.InstallerPackage),
		SlotImage:  imA.Path,
	}, disk.Options{
		Dir: dir, Disks: 2,
		Layout:  raid.LayoutOptions{ESPSize: 64 * raid.MiB, RootSize: slotSize, StateSize: 8 * raid.MiB, MinData: 8 * raid.MiB},
		Cmdline: "ftnas.degraded_after=1s no_timer_check " + userland.ParamTestUpdate + "=/dev/vdc,/dev/vdd",
		Logf:    t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}

	n := 0
	start := func(extra ...string) *qemu.VM {
		t.Helper()
		n++
		vars, err := fw.TempVars(dir)
		if err != nil {
			t.Fatal(err)
		}
		prefix := fmt.Sprintf("boot %d: ", n)
		vm, err := qemu.Start(qemu.Options{
			Firmware: fw.Code, FirmwareVars: vars, Disks: append(append([]string(nil), res.Disks...), extra...),
			NICs: []qemu.NIC{{Netdev: "user"}}, Memory: 1024, Timeout: 10 * time.Minute,
		}, func(f string, a ...any) { t.Logf(prefix+f, a...) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(vm.Kill)
		stop := context.AfterFunc(ctx, vm.Kill)
		t.Cleanup(func() { stop() })
		return vm
	}
	expect := func(vm *qemu.VM, re *regexp.Regexp) []string {
		t.Helper()
		m, err := vm.Expect(re)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	marker := func(vm *qemu.VM, slot string) {
		t.Helper()
		m := expect(vm, boot.MarkerRegexp())
		if mi, _ := boot.ParseMarker(m[0]); mi.Slot != slot {
			t.Fatalf("boot %d: root %s assembled, want %s", n, mi.Slot, slot)
		}
	}
	blessed := func(vm *qemu.VM, want string) {
		t.Helper()
		m := expect(vm, userland.BlessRegexp())
		if got := strings.Join(m[1:], " "); got != want {
			t.Fatalf("boot %d: bless line %q, want %q", n, m[0], want)
		}
	}
	updated := func(vm *qemu.VM, slot string) {
		t.Helper()
		m := expect(vm, userland.UpdateRegexp())
		if !strings.Contains(m[1], "written to slot "+strings.ToUpper(slot)) || !strings.Contains(m[1], "signed by key "+update.KeyIDOf(pub).String()) || !strings.Contains(m[1], "reboot to run it") {
			t.Fatalf("boot %d: update line %q", n, m[0])
		}
		t.Logf("boot %d: %s after %v", n, m[0], vm.Elapsed().Round(time.Second))
		if err := vm.Wait(); err != nil {
			t.Fatalf("boot %d: after the update: %v", n, err)
		}
	}

	// 1. A serves and writes the new image to B.
	vm := start(good)
	marker(vm, "a")
	expect(vm, userland.ServingRegexp())
	blessed(vm, "good a ftnas-1-a.conf ftnas-1-a.conf ftnas-1-a.conf")
	updated(vm, "b")

	// 2. B comes up on its first try (systemd-boot booted
	// ftnas-1-b+3.conf and counted it down to +2-1 on the ESP), blesses
	// itself, refuses the older bundle and writes the broken image to A.
	vm = start(old, bad)
	marker(vm, "b")
	expect(vm, regexp.MustCompile(`(?m)^ftnas: loader ".*" entry=ftnas-1-b\+3\.conf `))
	expect(vm, userland.ServingRegexp())
	blessed(vm, "blessed b ftnas-1-b+3.conf ftnas-1-b+2-1.conf ftnas-1-b.conf")
	refused := expect(vm, userland.UpdateRegexp())
	for _, want := range []string{"FAILED", "test-old (serial 4) is older than the running release test-new (serial 5)", "--allow-downgrade"} {
		if !strings.Contains(refused[1], want) {
			t.Fatalf("boot %d: the older bundle: %q lacks %q", n, refused[0], want)
		}
	}
	updated(vm, "a")

	// 3. A fails once per try; systemd-boot counts down (the entry the
	// loader says it booted is the name before its count-down).
	for _, entry := range []string{"ftnas-1-a+3.conf", "ftnas-1-a+2-1.conf", "ftnas-1-a+1-2.conf"} {
		vm = start()
		marker(vm, "a")
		expect(vm, guest.ResultPattern)
		expect(vm, regexp.MustCompile(`(?m)^init: entry `+regexp.QuoteMeta(entry)+` is on trial; rebooting`))
		if err := vm.Wait(); err != nil {
			t.Fatalf("boot %d: %v", n, err)
		}
	}

	// 4. The tries are used up: B again, by itself.
	vm = start()
	marker(vm, "b")
	s := expect(vm, userland.ServingRegexp())
	blessed(vm, "rolled-back b ftnas-0-b.conf ftnas-0-b.conf ftnas-0-b.conf")
	t.Logf("boot %d: back on slot B, serving after %v: %s", n, vm.Elapsed().Round(time.Second), s[1])
	vm.Kill()
	hashes, err := disk.HashESPs(res.Disks, res.Layout)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hashes {
		if h != hashes[0] {
			t.Errorf("ESP of %s is %s, of %s %s: not identical", res.Disks[i], h, res.Disks[0], hashes[0])
		}
	}
	for i, d := range res.Disks {
		if got := entryNames(t, d, res.Layout.Disks[i]); got != "ftnas-0-b.conf ftnas-1-a+0-3.conf" {
			t.Errorf("%s: loader entries %q, want B good and A out of tries", d, got)
		}
	}
}

// entryNames lists the loader entries on the ESP of the disk image path.
func entryNames(t *testing.T, path string, l raid.DiskLayout) string {
	t.Helper()
	p, ok := l.Partition(raid.RoleESP)
	if !ok {
		t.Fatal("layout has no ESP")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e, err := update.OpenESP(f, p.Start, p.Size)
	if err != nil {
		t.Fatal(err)
	}
	names, err := e.EntryNames()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(names, " ")
}

// bundle creates a bundle padded to whole 512-byte sectors: qemu drops a
// disk image's partial last sector.
func bundle(t *testing.T, path string, src update.Sources) string {
	t.Helper()
	if _, err := update.Create(path, src); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, (st.Size()+511)/512*512); err != nil {
		t.Fatal(err)
	}
	return path
}
