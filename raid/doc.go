// Package raid manages ftnas's Linux software RAID (md) arrays.
//
// It has these parts:
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
//     an operator's replace or adopt, see below). A member md kicked
//     for I/O errors while its disk stays (md's "faulty" state, no
//     uevent: the periodic pass finds it) is reported, not removed,
//     and the Manager never re-adds that device until it goes away: a
//     failing disk would only fail again. Manager gathers the
//     state from sysfs and mdadm --examine, applies the actions with
//     Mdadm and logs them;
//     RunUevents drives it from kernel uevents (NETLINK_KOBJECT_UEVENT,
//     parsed by ParseUevent) plus a periodic pass.
//   - Adopt (adopt.go, adopt_linux.go): a blank replacement disk becomes
//     a member disk. PlanAdopt, purely, copies a healthy member disk's
//     GPT as read (numbers, extents, types, names, attributes) with
//     fresh disk and partition GUIDs, maps each Linux RAID partition to
//     the array its counterpart is an in-sync member of and the ESP to a
//     byte-for-byte copy, and refuses (ErrAdoptRefused) a disk that is
//     too small or not blank: kernel partitions, holders, an md
//     superblock, a partition table, file system, LVM, LUKS or swap
//     signature (DiskSignatures), or md superblock magic where the
//     disk's or a planned partition's superblock would be.
//     Adopter.Adopt does it on Linux: reads the source GPT (go-diskfs),
//     opens the blank disk exclusively, writes and re-reads the table,
//     BLKRRPART, waits for the partitions, mdadm --add's each partition
//     (the bitmap and md rebuild it online), then copies the ESP and
//     checks it with HashPartition while md rebuilds. It never writes to
//     a disk it refused.
//     The hot-plug Manager adopts a blank whole disk by itself only with
//     its AutoAdopt option (off by default) and only while an array is
//     degraded (AdoptCandidate); nasd turns it on with
//     --raid-auto-adopt and otherwise offers "nasctl raid adopt DISK
//     [--from DISK]".
//   - ESP sync (esp_sync.go, esp_sync_linux.go): Adopter.SyncESP keeps
//     the ESPs identical after an update: it hashes every member disk's
//     ESP (a disk with a partition in a running array; ESPSyncTargets)
//     and rewrites, then re-hashes, those that differ from the reference
//     disk's, refusing an ESP laid out elsewhere (CheckESPExtents) or
//     mounted (exclusive open). nasd serves it as "nasctl raid esp-sync".
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
// data written meanwhile survives. qemu_adopt_linux_test.go builds two
// RAID1 arrays over two partitioned disks, fails one disk's members and
// adopts a blank third disk (internal/adoptguest), checking the rebuild,
// the data on the new disk alone, the ESP copy and the partition table,
// then updates the first disk's ESP and checks SyncESP carries it over.
package raid
