package disk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"ftnas/images/boot"
	"ftnas/images/qemu"
)

// BootReport is what a firmware boot showed on the console.
type BootReport struct {
	Marker boot.MarkerInfo
	// Loader is systemd-boot's LoaderInfo and Entry the entry it booted,
	// as the slot's /sbin/init read them.
	Loader string
	Entry  string
	// ESP is the partition GUID of the ESP systemd-boot was read from.
	ESP string
	// Firmware is the UEFI boot manager's line naming the boot option it
	// started (OVMF: `BdsDxe: starting Boot0001 "UEFI Misc Device" ...`,
	// the option it makes for a disk's fallback path).
	Firmware string
	// Userland is the line the slot's /sbin/init printed.
	Userland string
	// ToMarker is the time from power-on to the marker; Took to power-off.
	ToMarker time.Duration
	Took     time.Duration
}

// firmwareRegexp matches OVMF's boot manager starting a boot option.
func firmwareRegexp() *regexp.Regexp {
	return regexp.MustCompile(`(?m)(BdsDxe: starting Boot[0-9A-F]{4} .*?)\r?$`)
}

// loaderRegexp matches the root slot init's loader line.
func loaderRegexp() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^ftnas: loader "(.*)" entry=(\S+) esp=(\S+)\r?$`)
}

// BootDisks powers on a VM with UEFI firmware and only disks attached,
// and waits for the initramfs's marker, the slot's userland line, a PASS
// result and power-off. The firmware's variable store is a fresh copy in
// workDir.
func BootDisks(ctx context.Context, fw qemu.OVMF, disks []string, workDir string, timeout time.Duration, logf func(string, ...any)) (BootReport, error) {
	if len(disks) == 0 {
		return BootReport{}, fmt.Errorf("disk: boot: no disks")
	}
	vars, err := fw.TempVars(workDir)
	if err != nil {
		return BootReport{}, err
	}
	defer os.Remove(vars)
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	o := qemu.Options{Firmware: fw.Code, FirmwareVars: vars, Disks: disks, Memory: 512, Timeout: timeout}
	vm, err := qemu.Start(o, logf)
	if err != nil {
		return BootReport{}, err
	}
	defer vm.Kill()
	stop := context.AfterFunc(ctx, vm.Kill)
	defer stop()
	var r BootReport
	if f, err := vm.Expect(firmwareRegexp()); err == nil {
		r.Firmware = f[1]
	} else {
		return r, fmt.Errorf("disk: boot %s: %w", filepath.Base(disks[0]), err)
	}
	m, err := vm.Expect(boot.MarkerRegexp())
	if err != nil {
		return r, fmt.Errorf("disk: boot %s: %w", filepath.Base(disks[0]), err)
	}
	r.ToMarker = vm.Elapsed()
	r.Marker, _ = boot.ParseMarker(m[0])
	l, err := vm.Expect(loaderRegexp())
	if err != nil {
		return r, fmt.Errorf("disk: boot %s: %w", filepath.Base(disks[0]), err)
	}
	r.Loader, r.Entry, r.ESP = l[1], l[2], l[3]
	u, err := vm.Expect(boot.UserlandRegexp())
	if err != nil {
		return r, fmt.Errorf("disk: boot %s: %w", filepath.Base(disks[0]), err)
	}
	r.Userland = u[1]
	if err := vm.Result(); err != nil {
		return r, fmt.Errorf("disk: boot %s: %w", filepath.Base(disks[0]), err)
	}
	if err := vm.Wait(); err != nil {
		return r, fmt.Errorf("disk: boot %s: %w", filepath.Base(disks[0]), err)
	}
	r.Took = vm.Elapsed()
	return r, nil
}
