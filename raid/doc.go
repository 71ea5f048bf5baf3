// Package raid manages ftnas's Linux software RAID (md) arrays.
//
// It has three parts:
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
//
// The qemu test (qemu_linux_test.go) runs this package inside a guest with
// the Debian kernel and mdadm: it builds a RAID1, fails, removes and
// re-adds members and replaces one with a blank disk, checking the data
// and the status at every step.
package raid
