// Command guest runs inside the qemu guest of `scripts/bench raid`
// (scripts/raidbench): the Debian kernel with md, mdadm and sfdisk, the
// four disks of an ftnas installation (vda..vdd, serials disk0..disk3). It
// assembles the installation's arrays, sets md's speed limits, checks the
// data array once (a warm-up: the first rebuild in a fresh guest runs
// about twice as slow as later ones, whoever does it), keeps a client
// writing to the data array, and runs three phases, telling the host when
// to act with "raidbench: ready-pull", "ready-blank" and "ready-away":
//
//   - ftnas: raid.Manager (what nasd runs, with --raid-auto-adopt) watches
//     uevents; the host pulls disk3, the Manager fails and removes its
//     members; the host plugs a blank disk in its place and the Manager
//     adopts it (partitions it, copies the ESP, adds every partition) and
//     md rebuilds every array onto it.
//   - by hand, the peer: no Manager; the host pulls disk3, the guest does
//     what an operator types: mdadm --manage --fail/--remove of each
//     member, sfdisk -d vda | sfdisk (fresh GUIDs) on a second blank
//     disk, dd of the ESP, mdadm --manage --add of each partition.
//     -manual-first runs this phase before ftnas's.
//   - bitmap re-add: the Manager again; the host pulls disk3, waits (10 s)
//     and plugs the same image back; the Manager re-adds each member and
//     md resyncs only what the bitmaps marked.
//
// It prints "raidbench: summary {json}" (package result) and exits
// non-zero on the first failure.
package main
