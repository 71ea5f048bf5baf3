// Package raid manages ftnas's Linux software RAID (md) arrays.
//
// It has four parts:
//
//   - Status (sysfs.go): ReadArray reads an array and its members from
//     /sys/block/mdN/md (array_state, level, raid_disks, degraded,
//     sync_action, sync_completed, sync_speed, mismatch_cnt, dev-*/state,
//     slot, errors) into a typed ArrayStatus. The parsers are pure and
//     work on any fs.FS, so tests feed them captured sysfs trees.
//   - Changes (mdadm.go): Mdadm runs mdadm to create, assemble, add,
//     re-add, fail, remove, replace and stop arrays and to examine
//     members. Its argument lists are built by pure functions and its
//     failures come back as *Error with mdadm's own message.
//   - Layout (layout.go): Plan decides, purely, how blank disks are
//     partitioned (GPT: ESP, root slots A and B, state, data; the same on
//     every disk) and which md arrays are built over the partitions.
//   - Hot-plug (hotplug.go, hotplug_manager.go, uevent.go,
//     hotplug_linux.go): Decide, purely, turns the arrays and the block
//     devices present into actions: fail and remove a member whose device
//     vanished, re-add a device that returns with the superblock of an
//     array missing it; blank devices are only reported (adding one is
//     an operator's replace). Manager gathers the state from sysfs and
//     mdadm --examine, applies the actions with Mdadm and logs them;
//     RunUevents drives it from kernel uevents (NETLINK_KOBJECT_UEVENT,
//     parsed by ParseUevent) plus a periodic pass.
//   - ScrubDue (scrub.go) is the scrub schedule's pure rule: each
//     redundant, healthy, idle array is checked once per period (default
//     DefaultScrubEvery, about monthly), the one checked longest ago
//     first, never while any array syncs. nasd runs it hourly and keeps
//     the times in its store.
//
// The qemu test (qemu_linux_test.go) runs this package inside a guest with
// the Debian kernel and mdadm: it builds a RAID1, fails, removes and
// re-adds members and replaces one with a blank disk, checking the data
// and the status at every step. qemu_hotplug_linux_test.go unplugs and
// replugs a RAID1 member over QMP while internal/hotplugguest runs the
// Manager, checking it fails, removes and re-adds the disk and that the
// data written meanwhile survives.
package raid
