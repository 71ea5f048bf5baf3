package boot

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"ftnas/images/esp"
	"ftnas/images/guest"
	"ftnas/raid"
)

// CheckSlot is what a root slot's /sbin/init checks first: that / is a
// read-only squashfs on the md array of the slot the boot entry named
// (ftnas.slot=), and, when imageSlot is not empty (the slot the image
// itself was built for), that it is that slot. It returns the console
// lines a boot test matches:
//
//	ftnas: loader "systemd-boot 252.39-1~deb12u2" entry=ftnas-1-a.conf esp=<partition GUID>
//	ftnas: slot a userland up: root=/dev/md127 fstype=squashfs array=ftnas-root-a level=raid1 degraded=1 members=1/4
//
// The loader line says "ftnas: loader none (not booted by UEFI)" without
// UEFI. The basic filesystems must be mounted.
func CheckSlot(imageSlot string) (loader, userland string, err error) {
	params, err := guest.Cmdline()
	if err != nil {
		return "", "", err
	}
	opts, err := ParseOptions(params)
	if err != nil {
		return "", "", err
	}
	slot := opts.Slot
	if imageSlot != "" && imageSlot != slot {
		return "", "", fmt.Errorf("boot: check slot: running from slot %q, but the boot entry asked for %s=%s", imageSlot, ParamSlot, slot)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", "", fmt.Errorf("boot: check slot: %w", err)
	}
	m, err := FindMount(string(mi), "/")
	if err != nil {
		return "", "", err
	}
	if m.FSType != "squashfs" || !slices.Contains(m.Options, "ro") {
		return "", "", fmt.Errorf("boot: check slot: / is %s (%s) from %s, want a read-only squashfs", m.FSType, strings.Join(m.Options, ","), m.Source)
	}
	dev, err := filepath.EvalSymlinks(m.Source)
	if err != nil {
		return "", "", fmt.Errorf("boot: check slot: root device: %w", err)
	}
	name := filepath.Base(dev)
	st, err := raid.ReadArray(os.DirFS("/sys/block"), name)
	if err != nil {
		return "", "", fmt.Errorf("boot: check slot: / is on %s, not an md array: %w", dev, err)
	}
	// mdadm named the array's device after the slot when the initramfs
	// assembled it.
	link := "/dev/md/" + ArrayName(slot)
	if target, err := filepath.EvalSymlinks(link); err != nil || target != dev {
		return "", "", fmt.Errorf("boot: check slot: / is on %s, but %s is %q (%v)", dev, link, target, err)
	}
	lv, efi, err := ReadLoaderVars()
	if err != nil {
		return "", "", fmt.Errorf("boot: check slot: %w", err)
	}
	loader = "ftnas: loader none (not booted by UEFI)"
	if efi {
		if e, err := esp.ParseEntryName(lv.Entry); err != nil || e.Slot != slot {
			return "", "", fmt.Errorf("boot: check slot: running slot %s, but the loader booted entry %q (%v)", slot, lv.Entry, err)
		}
		loader = fmt.Sprintf("ftnas: loader %q entry=%s esp=%s", lv.Info, lv.Entry, strings.ToLower(lv.ESP))
	}
	in := 0
	for _, mem := range st.Members {
		if mem.InSync() {
			in++
		}
	}
	userland = fmt.Sprintf("ftnas: slot %s userland up: root=%s fstype=%s array=%s level=%s degraded=%d members=%d/%d",
		slot, dev, m.FSType, ArrayName(slot), st.Level, st.Degraded, in, st.RaidDisks)
	return loader, userland, nil
}
