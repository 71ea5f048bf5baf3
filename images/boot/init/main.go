// Command init is the /init of ftnas's firmware initramfs.
//
// It mounts the basic filesystems, loads the modules listed in
// /etc/ftnas/modules (virtio, md, raid1, squashfs), assembles the root
// slot's md RAID1 from the disks present (degraded after a timeout, see
// package boot), prints the "ftnas: root A assembled ..." marker, mounts
// the slot's squashfs and switches root to its /sbin/init. On failure it
// prints "FTNAS-RESULT: FAIL <why>" and powers off, or, when the loader
// booted an entry with a boot counter (a new slot on trial after an
// update, see package update), reboots, so that the loader counts the
// try and falls back to the previous slot once the tries are used up. It
// is built static (CGO_ENABLED=0).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"ftnas/images/boot"
	"ftnas/images/esp"
	"ftnas/images/guest"
	"ftnas/raid"
)

// mdadmPath is where the firmware initramfs installs mdadm.
const mdadmPath = "/sbin/mdadm"

func main() {
	err := run()
	// run returns only when the hand-over failed.
	fmt.Println(guest.ResultLine(err))
	if lv, efi, lerr := boot.ReadLoaderVars(); lerr == nil && efi {
		if e, perr := esp.ParseEntryName(lv.Entry); perr == nil && e.Counting() {
			fmt.Printf("init: entry %s is on trial; rebooting so the loader counts the failed try\n", lv.Entry)
			if err := guest.Reboot(); err != nil {
				fmt.Fprintln(os.Stderr, "init:", err)
			}
		}
	}
	if err := guest.PowerOff(); err != nil {
		fmt.Fprintln(os.Stderr, "init:", err)
	}
}

func run() error {
	start := time.Now()
	if err := guest.MountBasics(); err != nil {
		return err
	}
	mods, err := guest.ReadList(guest.ModulesList)
	if err != nil {
		return err
	}
	if err := guest.LoadModules(mods); err != nil {
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
	fmt.Printf("init: %d modules loaded in %v; booting slot %s\n", len(mods), time.Since(start).Round(time.Millisecond), opts.Slot)
	logf := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	ctx := context.Background()
	st, dev, err := boot.AssembleRoot(ctx, &raid.Mdadm{Path: mdadmPath}, opts, logf)
	if err != nil {
		return err
	}
	fmt.Println(boot.Marker(opts.Slot, st))
	if err := boot.MountRoot(dev, boot.NewRoot); err != nil {
		return err
	}
	fmt.Printf("init: root %s mounted in %v; switching to %s\n", dev, time.Since(start).Round(time.Millisecond), boot.RootInit)
	return boot.SwitchRoot(boot.NewRoot, boot.RootInit, []string{boot.RootInit})
}
