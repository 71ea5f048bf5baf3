package watchdog_test

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"ftnas/images/boot"
	"ftnas/images/deb"
	"ftnas/images/disk"
	"ftnas/images/initramfs"
	"ftnas/images/kernel"
	"ftnas/images/lab"
	"ftnas/images/qemu"
	"ftnas/images/userland"
	"ftnas/raid"
)

// TestQEMUNVMeWatchdog installs the real userland on 2 disks and boots
// them as NVMe disks (qemu's nvme device: nvme0n1, partitions
// nvme0n1p1...) under OVMF: the initramfs assembles root A from both
// NVMe partitions, nasd serves and the slot blesses its entry on an NVMe
// ESP. The init opens the watchdog (softdog: Debian's cloud kernel has
// no i6300esb) with a 10 s timeout and 10 s of grace (room for slow
// probes on a loaded host); the test hook then freezes nasd with SIGSTOP, the init's health probes fail, it stops
// feeding the watchdog, and the kernel resets the VM (qemu runs with
// -no-reboot, so it exits) within grace + timeout. About 3 minutes
// under TCG.
func TestQEMUNVMeWatchdog(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the firmware with its userland from NVMe disks under TCG (about 3 minutes)")
	}
	fw, err := userland.BootTools()
	if err != nil {
		t.Skip(err)
	}
	k := lab.Kernel(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	nvme := func(i int) string { return fmt.Sprintf("nvme,serial=nvme%d", i) }
	vm, expect, frozen := bootAndFreeze(ctx, t, fw, k, nil, nil, nvme, "/dev/nvme0n1p2 /dev/nvme1n1p2", func(w []string) bool {
		return w[4] == "10s"
	})
	expect(regexp.MustCompile(`softdog: Initiating system reboot`))
	if err := vm.Wait(); err != nil {
		t.Fatalf("after the watchdog fired: %v", err)
	}
	took := vm.Elapsed() - frozen
	t.Logf("nasd frozen; the watchdog reset the VM %v later (grace 10s + timeout 10s)", took.Round(100*time.Millisecond))
	if took > 60*time.Second {
		t.Errorf("the reset came %v after nasd froze", took)
	}
}

// install builds the userland slot image and installs it on 2 disks
// with kernel k and the firmware initramfs loading mods (nil:
// disk.FirmwareModules()).
func install(ctx context.Context, t *testing.T, dir string, k kernel.Kernel, mods []string, cmdline string) disk.Result {
	t.Helper()
	bootloader := lab.Bootloader(t)
	tree, files := lab.Userland(ctx, t)
	im, err := userland.SlotImage(ctx, tree, files, filepath.Join(dir, "slot.squashfs"), userland.CompressionLevel)
	if err != nil {
		t.Fatal(err)
	}
	res, err := disk.Build(ctx, disk.Inputs{
		Kernel:     k,
		Bootloader: bootloader,
		Mdadm:      lab.Mdadm(t).Source,
		TestInit:   lab.GoBinary(t, initramfs.InitPackage),
		BootInit:   lab.GoBinary(t, disk.BootInitPackage),
		Installer:  lab.GoBinary(t, disk.InstallerPackage),
		SlotImage:  im.Path,
	}, disk.Options{
		Dir: dir, Disks: 2, Modules: mods,
		Layout:  raid.LayoutOptions{ESPSize: 64 * raid.MiB, RootSize: 192 * raid.MiB, StateSize: 8 * raid.MiB, MinData: 8 * raid.MiB},
		Cmdline: cmdline,
		Logf:    t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestQEMUAHCIWatchdog is TestQEMUNVMeWatchdog on AHCI disks (qemu's
// ich9-ahci with ide-hd disks: sda, sdb) with qemu's Intel 6300ESB
// watchdog, which need Debian's generic kernel flavour (the cloud kernel
// has neither ahci nor i6300esb): the firmware initramfs loads ahci and
// i6300esb too. The watchdog is then the i6300esb; when it fires qemu
// resets the machine without a console line, so the test checks that
// qemu ended by itself after nasd froze with no reboot or power-off
// from the guest. It fetches the generic kernel into the package cache
// (about 70 MB) when it is not there; its initramfs resolves aliases
// (libcrc32c's crc32c, btrfs's sha256) and loads sd_mod, ext4 and
// i6300esb, which the cloud kernel builds in or lacks.
func TestQEMUAHCIWatchdog(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the firmware with its userland from AHCI disks under TCG (about 3 minutes)")
	}
	fw, err := userland.BootTools()
	if err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	k, err := kernel.Fetch(ctx, disk.GenericKernel, deb.Options{CacheDir: deb.DefaultCacheDir()})
	if err != nil || strings.Contains(k.Release, "cloud") {
		t.Skipf("needs Debian's generic kernel (%s): %v, found %q", disk.GenericKernel, err, k.Release)
	}
	t.Logf("kernel %s", k.Release)
	// The hardware modules a real box's firmware loads (package
	// disk), the watchdog's before softdog.
	mods := append(disk.HardwareModules(), disk.FirmwareModules()...)
	controllers := []string{"-device", "ahci,id=ahci", "-device", "i6300esb"}
	sata := func(i int) string { return fmt.Sprintf("ide-hd,bus=ahci.%d,serial=sata%d", i, i) }
	vm, expect, frozen := bootAndFreeze(ctx, t, fw, k, mods, controllers, sata, "/dev/sda2 /dev/sdb2", func(w []string) bool {
		return strings.Contains(w[2], "6300ESB")
	})
	expect(regexp.MustCompile(`watchdog: nasd unhealthy for longer than the grace`))
	if err := vm.Wait(); err != nil {
		t.Fatalf("after nasd froze: %v", err)
	}
	took := vm.Elapsed() - frozen
	con := vm.Console()
	after := con[strings.Index(con, userland.HangLine):]
	for _, guest := range []string{"reboot: Restarting system", "reboot: Power down", "ftnas: init:"} {
		if strings.Contains(after, guest) {
			t.Fatalf("the guest itself ended the boot (%q), not the watchdog", guest)
		}
	}
	t.Logf("nasd frozen; the i6300esb reset the VM %v later (grace 10s + timeout 10s)", took.Round(100*time.Millisecond))
	if took > 60*time.Second {
		t.Errorf("the reset came %v after nasd froze", took)
	}
}

// bootAndFreeze installs the userland on 2 disks (kernel k, initramfs
// modules mods) with a 10 s watchdog, 10 s of grace and the hang hook,
// and boots them under OVMF with the extra devices, disk i attached as
// the device attach(i) returns (its drive= is added). It waits for root A
// from both disks (members, e.g. "/dev/sda2 /dev/sdb2"), the watchdog
// line (/dev/watchdog, the 10 s timeout, and what isWatchdog checks),
// nasd serving, a good bless and nasd frozen, and returns the VM, its
// expect, and when nasd froze.
func bootAndFreeze(ctx context.Context, t *testing.T, fw qemu.OVMF, k kernel.Kernel, mods, extra []string, attach func(i int) string, members string, isWatchdog func(w []string) bool) (*qemu.VM, func(*regexp.Regexp) []string, time.Duration) {
	t.Helper()
	dir := t.TempDir()
	res := install(ctx, t, dir, k, mods, "ftnas.degraded_after=1s "+userland.ParamWatchdog+"=10 "+userland.ParamWatchdogGrace+"=10 "+
		userland.ParamTestHangNasd+"=1")
	vars, err := fw.TempVars(dir)
	if err != nil {
		t.Fatal(err)
	}
	extra = slices.Clone(extra)
	for i, d := range res.Disks {
		extra = append(extra, "-drive", fmt.Sprintf("file=%s,format=raw,if=none,id=drive%d,cache=unsafe", d, i),
			"-device", fmt.Sprintf("%s,drive=drive%d", attach(i), i))
	}
	vm, err := qemu.Start(qemu.Options{
		Firmware: fw.Code, FirmwareVars: vars, Extra: extra,
		NICs: []qemu.NIC{{Netdev: "user"}}, Memory: 1024, Timeout: 10 * time.Minute,
	}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Kill)
	stop := context.AfterFunc(ctx, vm.Kill)
	t.Cleanup(func() { stop() })
	expect := func(re *regexp.Regexp) []string {
		t.Helper()
		m, err := vm.Expect(re)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	expect(regexp.MustCompile(`(?m)^boot: ftnas-root-a: 2 of 2 members present: \[` + regexp.QuoteMeta(members) + `\]`))
	m := expect(boot.MarkerRegexp())
	if mi, _ := boot.ParseMarker(m[0]); mi.Slot != "a" || mi.InSync != 2 || mi.Degraded != 0 {
		t.Fatalf("root from %s: %q", members, m[0])
	}
	w := expect(userland.WatchdogRegexp())
	if w[1] != "/dev/watchdog" || w[3] != "10s" || !isWatchdog(w) {
		t.Fatalf("watchdog line %q", w[0])
	}
	s := expect(userland.ServingRegexp())
	t.Logf("nasd serving after %v: %s", vm.Elapsed().Round(time.Second), s[1])
	if b := expect(userland.BlessRegexp()); b[1] != "good" {
		t.Errorf("bless line %q", b[0])
	}
	expect(regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(userland.HangLine)))
	return vm, expect, vm.Elapsed()
}
