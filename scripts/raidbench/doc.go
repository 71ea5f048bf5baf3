// Command raidbench is `scripts/bench raid` (issue 8): an ftnas
// installation of four disks under qemu (TCG), measured three ways.
//
//  1. Boots: the image set (package disk, with the real slot userland of
//     package userland; the kernel, packages and Debian tree come from the
//     cache) is built, then each disk is booted alone under OVMF with a
//     user-net NIC; the figure is the time from power-on to the slot
//     init's "ftnas: nasd serving" line (userland.Boot).
//  2. RAID: a copy of the same four disks is attached to a guest running
//     the Debian kernel with md, mdadm, sfdisk and ./guest (read it),
//     which assembles the installation's arrays and sets md's speed
//     limits. ftnas: raid.Manager, the hot-plug manager nasd runs (with
//     --raid-auto-adopt), handles disk3 pulled (QMP device_del) and a
//     blank disk of the same size plugged in its place (device_add): it
//     fails and removes the old members, adopts the blank disk and md
//     rebuilds every array onto it. The peer, by hand on the same disks
//     with the same limits: disk3 pulled, mdadm --fail/--remove, a second
//     blank disk partitioned with sfdisk, the ESP copied with dd, mdadm
//     --add of each partition. Last, the Manager again: disk3 pulled, 10 s
//     away, plugged back, re-added through the write-intent bitmaps.
//     Throughput is the data array's component size over its recovery
//     window (sampled from sysfs every 100 ms); "clean" times run from the
//     disk's block device seen in the guest to every array clean with it.
//  3. The client: a writer inside the guest writes a synced 64 KiB chunk
//     to the data array every 50 ms through all of it and reads every
//     chunk back at the end; client_errors counts failed writes and
//     chunks that do not read back.
//
// It prints the table and, last, one JSON object. A part that fails is
// reported with null figures and its error.
package main
