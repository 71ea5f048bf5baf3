// Command init is /sbin/init of the placeholder root slot image (the
// default of package rootfs; package userland builds the real one): the
// program the initramfs hands over to. It checks that it runs from the
// slot the boot entry named (the slot file in the image against
// ftnas.slot=, and, under UEFI, against the loader entry systemd-boot
// reports), that / is a read-only squashfs on an md array
// (boot.CheckSlot), prints
//
//	ftnas: loader "systemd-boot 252.39-1~deb12u2" entry=ftnas-1-a.conf esp=<partition GUID>
//	ftnas: slot a userland up: root=/dev/md127 fstype=squashfs array=ftnas-root-a level=raid1 degraded=1 members=1/4
//
// then the result line, and powers off.
package main

import (
	"fmt"
	"os"
	"strings"

	"ftnas/images/boot"
	"ftnas/images/guest"
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
	b, err := os.ReadFile(slotFile)
	if err != nil {
		return fmt.Errorf("rootinit: %w", err)
	}
	loader, userland, err := boot.CheckSlot(strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	fmt.Println(loader)
	fmt.Println(userland)
	return nil
}
