package userland

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"ftnas/images/boot"
	"ftnas/images/qemu"
)

// BootReport is what a boot of the real userland showed on the console.
type BootReport struct {
	Marker boot.MarkerInfo
	// Userland is boot.CheckSlot's "slot a userland up" line.
	Userland string
	// Status is `nasctl status --json` once every service was healthy.
	Status string
	// ToMarker and ToServing are the times from power-on.
	ToMarker, ToServing time.Duration
}

// Boot powers on a VM with UEFI firmware, disks and nics, and waits until
// the slot's init reports nasd serving. The VM keeps running: the caller
// kills it (the report is returned with the error too). The firmware's
// variable store is a fresh copy in workDir.
func Boot(ctx context.Context, fw qemu.OVMF, disks []string, nics []qemu.NIC, workDir string, timeout time.Duration, logf func(string, ...any)) (*qemu.VM, BootReport, error) {
	var r BootReport
	if len(disks) == 0 {
		return nil, r, fmt.Errorf("userland: boot: no disks")
	}
	vars, err := fw.TempVars(workDir)
	if err != nil {
		return nil, r, err
	}
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	vm, err := qemu.Start(qemu.Options{Firmware: fw.Code, FirmwareVars: vars, Disks: disks, NICs: nics, Memory: 1024, Timeout: timeout}, logf)
	if err != nil {
		os.Remove(vars)
		return nil, r, err
	}
	stop := context.AfterFunc(ctx, vm.Kill)
	go func() {
		<-vm.Done()
		stop()
		os.Remove(vars)
	}()
	name := filepath.Base(disks[0])
	m, err := vm.Expect(boot.MarkerRegexp())
	if err != nil {
		return vm, r, fmt.Errorf("userland: boot %s: %w", name, err)
	}
	r.ToMarker = vm.Elapsed()
	r.Marker, _ = boot.ParseMarker(m[0])
	u, err := vm.Expect(boot.UserlandRegexp())
	if err != nil {
		return vm, r, fmt.Errorf("userland: boot %s: %w", name, err)
	}
	r.Userland = u[1]
	s, err := vm.Expect(ServingRegexp())
	if err != nil {
		return vm, r, fmt.Errorf("userland: boot %s: waiting for nasd: %w", name, err)
	}
	r.Status, r.ToServing = s[1], vm.Elapsed()
	return vm, r, nil
}

// BootTools checks what building and booting the real userland needs on
// the host (qemu, OVMF, mmdebstrap or debootstrap, mksquashfs) and returns
// the UEFI firmware. The error says what is missing: the qemu tests skip
// with it.
func BootTools() (qemu.OVMF, error) {
	if err := qemu.Available(qemu.Options{}); err != nil {
		return qemu.OVMF{}, err
	}
	fw, err := qemu.FindOVMF(nil)
	if err != nil {
		return qemu.OVMF{}, err
	}
	if _, err := FindTool(); err != nil {
		return qemu.OVMF{}, err
	}
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		return qemu.OVMF{}, fmt.Errorf("needs mksquashfs (apt-get install squashfs-tools): %w", err)
	}
	return fw, nil
}
