package disk_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ftnas/images/disk"
	"ftnas/images/initramfs"
	"ftnas/images/lab"
	"ftnas/images/qemu"
	"ftnas/raid"
)

// DisksEnv sets the number of disks TestQEMUAnyDiskBoots installs (2 by
// default; scripts/build-image --test sets 4). With more than 2 it also
// boots all the disks together first.
const DisksEnv = "FTNAS_IMAGE_DISKS"

// TestQEMUAnyDiskBoots builds an installation and boots each disk alone
// under OVMF: UEFI's fallback path starts systemd-boot, which starts the
// kernel and the Go initramfs, which assembles root A degraded from the
// one disk and hands over to the slot's /sbin/init.
func TestQEMUAnyDiskBoots(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an installation and boots each disk under OVMF (about 15 s a boot under TCG)")
	}
	if err := qemu.Available(qemu.Options{}); err != nil {
		t.Skip(err)
	}
	fw, err := qemu.FindOVMF(nil)
	if err != nil {
		t.Skip(err)
	}
	n := 2
	if v := os.Getenv(DisksEnv); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 8 {
			t.Fatalf("%s=%q: want 1 to 8", DisksEnv, v)
		}
	}
	k := lab.Kernel(t)
	bootloader, err := disk.Bootloader(lab.Package(t, disk.BootloaderPackage))
	if err != nil {
		t.Fatal(err)
	}
	in := disk.Inputs{
		Kernel:     k,
		Bootloader: bootloader,
		Mdadm:      lab.Mdadm(t).Source,
		TestInit:   lab.GoBinary(t, initramfs.InitPackage),
		BootInit:   lab.GoBinary(t, disk.BootInitPackage),
		RootInit:   lab.GoBinary(t, disk.RootInitPackage),
		Installer:  lab.GoBinary(t, disk.InstallerPackage),
	}
	dir := t.TempDir()
	start := time.Now()
	res, err := disk.Build(t.Context(), in, disk.Options{
		Dir: dir, Disks: n,
		Layout:  raid.LayoutOptions{ESPSize: 64 * raid.MiB, RootSize: 32 * raid.MiB, StateSize: 8 * raid.MiB, MinData: 8 * raid.MiB},
		Cmdline: "ftnas.degraded_after=1s no_timer_check", // TCG on a loaded host can fail the IO-APIC timer check
		Logf:    t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d-disk installation built in %v (installer guest %v)", n, time.Since(start).Round(time.Millisecond), res.Took["install"].Round(time.Millisecond))

	checkESPs := func(when string) {
		t.Helper()
		hashes, err := disk.HashESPs(res.Disks, res.Layout)
		if err != nil {
			t.Fatal(err)
		}
		for i, h := range hashes {
			if h != res.ESPHash {
				t.Errorf("%s: ESP of %s hashes %s, want %s like the others", when, filepath.Base(res.Disks[i]), h, res.ESPHash)
			}
		}
	}
	checkESPs("after install")
	espGUID := map[string]string{} // disk → its ESP's partition GUID
	for i, p := range res.Disks {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		parts, err := disk.ReadGPT(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != len(res.Layout.Disks[i].Partitions) {
			t.Fatalf("%s has %d partitions, the plan %d", p, len(parts), len(res.Layout.Disks[i].Partitions))
		}
		for j, gp := range parts {
			if want := res.Layout.Disks[i].Partitions[j]; gp.Label != want.Label || gp.Start != want.Start || gp.Size != want.Size {
				t.Errorf("%s partition %d is %+v, the plan %+v", p, gp.Number, gp.Partition, want)
			}
			if gp.Type == raid.TypeESP {
				espGUID[p] = gp.GUID
			}
		}
	}
	for _, role := range []string{raid.RoleRootA, raid.RoleRootB, raid.RoleState, raid.RoleData} {
		if !hasArray(res.Arrays, role, n) {
			t.Errorf("no %s array over %d members in %+v", role, n, res.Arrays)
		}
	}

	boot := func(disks []string, wantDegraded, wantInSync int) {
		t.Helper()
		var names []string
		for _, d := range disks {
			names = append(names, filepath.Base(d))
		}
		r, err := disk.BootDisks(t.Context(), fw, disks, dir, 2*time.Minute, t.Logf)
		if err != nil {
			t.Fatalf("boot %v: %v", names, err)
		}
		t.Logf("boot %v: %s; marker after %v, powered off after %v: %+v; loader %q esp %s; %s", names, r.Firmware, r.ToMarker.Round(100*time.Millisecond), r.Took.Round(100*time.Millisecond), r.Marker, r.Loader, r.ESP, r.Userland)
		m := r.Marker
		if m.Slot != "a" || m.Degraded != wantDegraded || m.InSync != wantInSync || m.RaidDisks != n {
			t.Errorf("boot %v: marker %+v, want root a degraded=%d members=%d/%d", names, m, wantDegraded, wantInSync, n)
		}
		if !strings.HasPrefix(r.Loader, "systemd-boot ") || r.Entry != "ftnas-1-a.conf" {
			t.Errorf("boot %v: loader %q entry %q, want systemd-boot and ftnas-1-a.conf", names, r.Loader, r.Entry)
		}
		if len(disks) == 1 && !strings.EqualFold(r.ESP, espGUID[disks[0]]) {
			t.Errorf("boot %v: systemd-boot was read from the ESP %s, want this disk's ESP %s", names, r.ESP, espGUID[disks[0]])
		}
		if !strings.Contains(r.Firmware, "starting Boot") {
			t.Errorf("boot %v: no firmware boot line, got %q", names, r.Firmware)
		}
		want := fmt.Sprintf("array=ftnas-root-a level=raid1 degraded=%d members=%d/%d", wantDegraded, wantInSync, n)
		if !strings.Contains(r.Userland, "slot a userland up") || !strings.Contains(r.Userland, "fstype=squashfs") || !strings.Contains(r.Userland, want) {
			t.Errorf("boot %v: userland said %q, want slot a on squashfs with %q", names, r.Userland, want)
		}
	}
	if n > 2 {
		// All together first: after a disk has booted alone, the others'
		// superblocks are stale to it.
		boot(res.Disks, 0, n)
	}
	for _, d := range res.Disks {
		boot([]string{d}, n-1, 1)
	}
	if n > 2 {
		// Every disk has now run the array alone. Nothing was written
		// (the root is a read-only squashfs), so no superblock marked
		// the others failed: together they assemble whole again.
		r, err := disk.BootDisks(t.Context(), fw, res.Disks, dir, 2*time.Minute, t.Logf)
		if err != nil {
			t.Fatalf("boot all disks after each booted alone: %v", err)
		}
		t.Logf("boot all after each alone: %+v; %s", r.Marker, r.Userland)
		if r.Marker.InSync != n || r.Marker.Degraded != 0 {
			t.Errorf("boot all after each alone: marker %+v", r.Marker)
		}
	}
	// Booting reads the ESP and never writes it.
	checkESPs("after booting")
}

func hasArray(arrays []disk.Array, role string, members int) bool {
	for _, a := range arrays {
		if a.Role == role && a.Members == members && a.UUID != "" {
			return true
		}
	}
	return false
}
