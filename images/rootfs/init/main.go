// Command init is /sbin/init of ftnas's root slot images, for now: the
// program the initramfs hands over to. It checks that it runs from the
// slot the boot entry named (the slot file in the image against
// ftnas.slot=, and, under UEFI, against the loader entry systemd-boot
// reports), that / is a read-only squashfs on an md array, prints
//
//	ftnas: loader "systemd-boot 252.39-1~deb12u2" entry=ftnas-a.conf esp=<partition GUID>
//	ftnas: slot a userland up: root=/dev/md127 fstype=squashfs array=ftnas-root-a level=raid1 degraded=1 members=1/4
//
// then the result line, and powers off. The appliance's userland
// replaces it.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"ftnas/images/boot"
	"ftnas/images/guest"
	"ftnas/raid"
)

// slotFile is rootfs.SlotFile (not imported: that package carries the
// image writer).
const slotFile = "/etc/ftnas/slot"

func main() {
	err := run()
	fmt.Println(guest.ResultLine(err))
	if err := guest.PowerOff(); err != nil {
		fmt.Fprintln(os.Stderr, "init:", err)
	}
}

func run() error {
	if err := guest.MountBasics(); err != nil {
		return err
	}
	params, err := guest.Cmdline()
	if err != nil {
		return err
	}
	opts, err := boot.ParseOptions(params)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(slotFile)
	if err != nil {
		return fmt.Errorf("rootinit: %w", err)
	}
	slot := strings.TrimSpace(string(b))
	if slot != opts.Slot {
		return fmt.Errorf("rootinit: running from slot %q, but the boot entry asked for %s=%s", slot, boot.ParamSlot, opts.Slot)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("rootinit: %w", err)
	}
	m, err := boot.FindMount(string(mi), "/")
	if err != nil {
		return err
	}
	if m.FSType != "squashfs" || !slices.Contains(m.Options, "ro") {
		return fmt.Errorf("rootinit: / is %s (%s) from %s, want a read-only squashfs", m.FSType, strings.Join(m.Options, ","), m.Source)
	}
	dev, err := filepath.EvalSymlinks(m.Source)
	if err != nil {
		return fmt.Errorf("rootinit: root device: %w", err)
	}
	name := filepath.Base(dev)
	st, err := raid.ReadArray(os.DirFS("/sys/block"), name)
	if err != nil {
		return fmt.Errorf("rootinit: / is on %s, not an md array: %w", dev, err)
	}
	// mdadm named the array's device after the slot when the
	// initramfs assembled it.
	link := "/dev/md/" + boot.ArrayName(slot)
	if target, err := filepath.EvalSymlinks(link); err != nil || target != dev {
		return fmt.Errorf("rootinit: / is on %s, but %s is %q (%v)", dev, link, target, err)
	}
	lv, efi, err := boot.ReadLoaderVars()
	if err != nil {
		return fmt.Errorf("rootinit: %w", err)
	}
	if efi {
		if want := "ftnas-" + slot; !strings.HasPrefix(lv.Entry, want) || !strings.HasSuffix(lv.Entry, ".conf") {
			return fmt.Errorf("rootinit: running slot %s, but the loader booted entry %q", slot, lv.Entry)
		}
		fmt.Printf("ftnas: loader %q entry=%s esp=%s\n", lv.Info, lv.Entry, strings.ToLower(lv.ESP))
	} else {
		fmt.Println("ftnas: loader none (not booted by UEFI)")
	}
	in := 0
	for _, mem := range st.Members {
		if mem.InSync() {
			in++
		}
	}
	fmt.Printf("ftnas: slot %s userland up: root=%s fstype=%s array=%s level=%s degraded=%d members=%d/%d\n",
		slot, dev, m.FSType, boot.ArrayName(slot), st.Level, st.Degraded, in, st.RaidDisks)
	return nil
}
