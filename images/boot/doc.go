// Package boot is the firmware's early boot: what the initramfs /init
// (./init) does between the kernel and the root slot's userland.
//
// It finds the partitions labelled for the root slot named on the kernel
// command line (ftnas.slot=a, GPT name ftnas-root-a), reads their md
// superblocks, picks the array (ChooseIn: with ftnas.install=ID on the
// command line only superblocks of homehost ID, "ID:ftnas-root-a", the
// installation's own arrays, see package install; without it, as images
// built before the id, any homehost: Choose), and assembles it from
// whatever members are present: at once when all are there, degraded
// (mdadm --run) once the first member has been seen for
// ftnas.degraded_after (default 5 s), so any one disk boots the box. It then mounts the slot's squashfs
// read-only, prints the marker
//
//	ftnas: root A assembled degraded=1 members=1/4 array=md127
//
// and switches root to the slot's /sbin/init. The initramfs assembles
// only the root; the slot's init assembles the state and data arrays
// (StateArrayName, DataArrayName) the same way with AssembleArray (which
// also refuses an array already running under that name that is another
// installation's), and mounts them (package userland). CheckSlot is that init's
// first step: / must be the read-only squashfs on the named slot's array,
// and the loader's entry (esp.EntryName) must be that slot's. When the
// hand-over fails on an entry with a boot counter (a new slot on trial,
// see package update), ./init reboots instead of powering off, so that
// systemd-boot counts the try and falls back once they are used up.
//
// Options, Choose, ChooseIn, Waiter (the when-to-assemble decision, on explicit
// times), Marker and the uevent/mountinfo parsers are pure; the scan,
// mdadm and mount steps are Linux-only.
package boot
