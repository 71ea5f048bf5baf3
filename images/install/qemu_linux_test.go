package install_test

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
	"ftnas/images/initramfs"
	"ftnas/images/lab"
	"ftnas/images/qemu"
	"ftnas/images/update"
	"ftnas/images/userland"
	"ftnas/raid"
)

// slotSize fits the zstd userland image (about 110 MiB).
const slotSize = 192 * raid.MiB

// installerID is the installer medium's installation id.
const installerID = "installermedium1"

// TestQEMUInstall builds an installer medium (the real userland on one
// disk, as images/cmd/build makes it) and boots it under OVMF with two
// blank disks and a disk holding a signed bundle:
//
//  1. the medium's init runs `nasctl install --disks /dev/vdb,/dev/vdc
//     --bundle /dev/vdd --yes` (its ftnas.test_install hook) once nasd
//     serves, and powers off;
//  2. the two installed disks alone boot: root A of the new installation
//     on both, state and data formatted, nasd serving;
//  3. the installed disks boot with the medium still attached (as the
//     third disk): the initramfs and the init assemble the installed
//     box's arrays, never the medium's of the same names;
//  4. the medium boots with the installed disks attached: it assembles
//     its own arrays (its builder gave it an installation id too), not
//     the installed box's, which have more members.
//
// About 8 minutes under TCG.
func TestQEMUInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the firmware with its userland four times under TCG (about 8 minutes)")
	}
	fw, err := userland.BootTools()
	if err != nil {
		t.Skip(err)
	}
	k := lab.Kernel(t)
	bootloader := lab.Bootloader(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Minute)
	defer cancel()

	tree, files := lab.Userland(ctx, t)
	key, _, _, err := update.DevSigningKey(deb.DefaultCacheDir())
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	keyFiles, err := userland.UpdateKeyFiles([]userland.UpdateKey{{ID: update.KeyIDOf(pub).String(), PEM: update.MarshalPublicKey(pub)}})
	if err != nil {
		t.Fatal(err)
	}
	im, err := userland.SlotImage(ctx, tree, append(files, keyFiles...), filepath.Join(dir, "slot.squashfs"), userland.CompressionLevel)
	if err != nil {
		t.Fatal(err)
	}
	// The bundle has no kernel and initrd: the install takes the running
	// slot's from the medium's ESP.
	bundlePath := filepath.Join(dir, "fw.bundle")
	m, err := update.Create(bundlePath, update.Sources{Version: "test-install", Rootfs: im.Path, Keys: []ed25519.PrivateKey{key}})
	if err != nil {
		t.Fatal(err)
	}
	padSectors(t, bundlePath)
	rootfs, _ := m.Part(update.PartRootfs)

	res, err := disk.Build(ctx, disk.Inputs{
		Kernel:     k,
		Bootloader: bootloader,
		Mdadm:      lab.Mdadm(t).Source,
		TestInit:   lab.GoBinary(t, initramfs.InitPackage),
		BootInit:   lab.GoBinary(t, disk.BootInitPackage),
		Installer:  lab.GoBinary(t, disk.InstallerPackage),
		SlotImage:  im.Path,
	}, disk.Options{
		Dir: dir, Disks: 1, InstallID: installerID,
		Layout: raid.LayoutOptions{ESPSize: 64 * raid.MiB, RootSize: slotSize, StateSize: 8 * raid.MiB, MinData: 8 * raid.MiB},
		Cmdline: "ftnas.degraded_after=1s no_timer_check " + userland.ParamTestShare + "=t1 " +
			userland.ParamTestInstall + "=vdb,vdc:/dev/vdd",
		Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	medium := res.Disks[0]
	var blank []string
	for i := range 2 {
		p := filepath.Join(dir, fmt.Sprintf("blank%d.raw", i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, 2*raid.GiB); err != nil {
			t.Fatal(err)
		}
		blank = append(blank, p)
	}

	n := 0
	start := func(disks ...string) *qemu.VM {
		t.Helper()
		n++
		vars, err := fw.TempVars(dir)
		if err != nil {
			t.Fatal(err)
		}
		prefix := fmt.Sprintf("boot %d: ", n)
		vm, err := qemu.Start(qemu.Options{
			Firmware: fw.Code, FirmwareVars: vars, Disks: disks,
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
			t.Fatalf("boot %d: %v", n, err)
		}
		return m
	}
	// members expects the assembly log line of array name listing
	// exactly devs.
	members := func(vm *qemu.VM, name string, devs ...string) {
		t.Helper()
		m := expect(vm, regexp.MustCompile(`(?m)boot: `+regexp.QuoteMeta(name)+`: (\d+) of (\d+) members present: \[([^\]]*)\]`))
		if m[3] != strings.Join(devs, " ") {
			t.Fatalf("boot %d: %s assembled from [%s], want %v (line %q)", n, name, m[3], devs, m[0])
		}
	}

	// 1. The medium installs onto vdb and vdc and powers off.
	vm := start(medium, blank[0], blank[1], bundlePath)
	members(vm, "ftnas-root-a", "/dev/vda2")
	expect(vm, userland.ServingRegexp())
	line := expect(vm, userland.InstallRegexp())[1]
	t.Logf("boot %d: install after %v: %s", n, vm.Elapsed().Round(time.Second), line)
	for _, want := range []string{"install test-install (signed by key " + update.KeyIDOf(pub).String() + ") onto vdb, vdc",
		"sha256 " + rootfs.SHA256 + " verified in slots A and B", "from the running ESP", "ftnas-data raid1 x2"} {
		if !strings.Contains(line, want) {
			t.Fatalf("install line %q lacks %q", line, want)
		}
	}
	id := regexp.MustCompile(`installation ([a-z0-9]+);`).FindStringSubmatch(line)
	if id == nil || id[1] == installerID {
		t.Fatalf("install line %q: no new installation id", line)
	}
	if err := vm.Wait(); err != nil {
		t.Fatalf("boot %d: after the install: %v", n, err)
	}
	for _, p := range blank {
		checkESP(t, p, id[1])
	}

	// 2. The installed disks alone: first boot formats state and data.
	vm = start(blank...)
	members(vm, "ftnas-root-a", "/dev/vda2", "/dev/vdb2")
	mk := expect(vm, boot.MarkerRegexp())
	if mi, _ := boot.ParseMarker(mk[0]); mi.Slot != "a" || mi.RaidDisks != 2 {
		t.Fatalf("boot %d: marker %q", n, mk[0])
	}
	members(vm, boot.StateArrayName, "/dev/vda4", "/dev/vdb4")
	st := expect(vm, userland.StorageRegexp())
	members(vm, boot.DataArrayName, "/dev/vda5", "/dev/vdb5")
	dt := expect(vm, userland.StorageRegexp())
	if st[1] != "state" || st[9] != "formatted" || dt[1] != "data" || dt[9] != "formatted" || dt[8] != "btrfs" {
		t.Fatalf("boot %d: storage lines %q, %q: want state and data formatted (data btrfs)", n, st[0], dt[0])
	}
	s := expect(vm, userland.ServingRegexp())
	expect(vm, regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(userland.TestShareLine("t1"))))
	t.Logf("boot %d: the installed box serves after %v: %s", n, vm.Elapsed().Round(time.Second), s[1])
	vm.Kill()

	// 3. The installed disks first, the medium still attached as vdc:
	// the installed box's arrays, kept.
	vm = start(blank[0], blank[1], medium)
	members(vm, "ftnas-root-a", "/dev/vda2", "/dev/vdb2")
	members(vm, boot.StateArrayName, "/dev/vda4", "/dev/vdb4")
	st = expect(vm, userland.StorageRegexp())
	members(vm, boot.DataArrayName, "/dev/vda5", "/dev/vdb5")
	dt = expect(vm, userland.StorageRegexp())
	if st[9] != "kept" || dt[9] != "kept" {
		t.Fatalf("boot %d: storage lines %q, %q: want both kept", n, st[0], dt[0])
	}
	expect(vm, userland.ServingRegexp())
	expect(vm, userland.TestShareKeptRegexp())
	vm.Kill()

	// 4. The medium first, the installed disks attached: its own
	// one-member arrays, not the installed box's two-member ones. (No
	// bundle disk: its install hook does nothing.)
	vm = start(medium, blank[0], blank[1])
	members(vm, "ftnas-root-a", "/dev/vda2")
	members(vm, boot.StateArrayName, "/dev/vda4")
	members(vm, boot.DataArrayName, "/dev/vda5")
	expect(vm, userland.ServingRegexp())
	vm.Kill()
}

// checkESP reads the loader entries of an installed disk image: both
// slots', slot A preferred, each naming the installation.
func checkESP(t *testing.T, path, id string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tbl, err := raid.ReadDiskTable(f, filepath.Base(path), 512)
	if err != nil {
		t.Fatal(err)
	}
	e, err := raid.ESPEntry(tbl)
	if err != nil {
		t.Fatal(err)
	}
	ext := e.Extent(512)
	es, err := update.OpenESP(f, ext.Start, ext.Size)
	if err != nil {
		t.Fatal(err)
	}
	names, err := es.EntryNames()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, " "); got != "ftnas-0-b.conf ftnas-1-a.conf" {
		t.Errorf("%s: loader entries %q", path, got)
	}
	text, err := es.ReadFile("/loader/entries/ftnas-1-a.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ftnas.slot=a ftnas.install=" + id, "ftnas.test_share=t1"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("%s: entry A %q lacks %q", path, text, want)
		}
	}
	if strings.Contains(string(text), userland.ParamTestInstall) || strings.Contains(string(text), installerID) {
		t.Errorf("%s: entry A %q carries the medium's install hook or id", path, text)
	}
}

// padSectors pads a file to whole 512-byte sectors: qemu drops a disk
// image's partial last sector.
func padSectors(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, (st.Size()+511)/512*512); err != nil {
		t.Fatal(err)
	}
}
