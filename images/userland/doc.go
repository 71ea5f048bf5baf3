// Package userland builds the root slot's real userland: a minimal Debian
// (debootstrap's minbase variant, made with mmdebstrap when it is there,
// else debootstrap) with Samba, mdadm, iproute2 and btrfs-progs, plus
// ftnas's own programs (nasd, nasctl and ./init, the slot's /sbin/init),
// packed as a zstd squashfs that disk.Build writes to every root slot
// (Inputs.SlotImage). The image does not know its slot: ./init learns it
// from the kernel command line and checks that / is that slot's array.
//
// Bootstrap makes the Debian tree once per Key (suite, mirror, variant,
// package list, tool, and the Date of the suite's Release file in the
// host's apt lists, the same lists package deb fetches from) under
// CACHE/userland/KEY/root (CACHE is $FTNAS_CACHE or /var/cache/ftnas),
// about 320 MB, 100 s on an idle 2-core machine and 5 minutes on a busy
// one. SlotImage hard-links the tree into a staging directory, replaces
// the ftnas files there (Files) and runs mksquashfs (SquashfsCommand:
// zstd level 3, about 110 MiB, 7 s); the last image is kept next to the
// tree, keyed by a hash of the added files, and reused.
//
// Reproducibility: packing is bit-reproducible (TestSlotImageReproducible):
// every time is rootfs.Epoch, the superblock's too, mksquashfs sorts
// directories, owners come from the tree, the Go programs are built with
// -trimpath (they carry the VCS revision, so one commit gives one image).
// The tree is not yet bit-reproducible across bootstraps: the mirror
// moves (only the Release Date is keyed, so a host `apt-get update` after
// a point release makes a new tree; snapshot.debian.org, which would pin
// it, is not reachable from these hosts), it has no security updates
// (bookworm main only), and maintainer scripts leave build-time state
// (ssl/ld.so caches, debconf's database). Bootstrap removes apt's lists,
// logs and backup files and the image's /etc/machine-id is empty. The
// manifest (dpkg-query's package=version list, kept next to the tree and
// in the image as /etc/ftnas/packages) says what a tree holds.
//
// At run time the slot's ./init adds udev's part of /dev (/dev/fd, the
// std* links, /dev/shm), mounts tmpfs overlays on /etc, /var, /srv and
// /root (the squashfs is read-only, and nasd adds system accounts), and
// makes nasd's state and volume persistent (Stores): it assembles the
// installer's ftnas-state and ftnas-data md arrays (boot.AssembleArray,
// degraded once ftnas.degraded_after passed with members missing, like
// the root), probes each (ProbeFS: ext2/3/4, btrfs and a few other
// signatures in its first MiB) and Decides: an ext4 or btrfs there is
// kept; an array whose first MiB is all zero (the first boot after the
// installer, which made the arrays --assume-clean on blank disks) gets a
// filesystem, ext4 for state and btrfs for data (DESIGN.md prefers it:
// snapshots and checksums; ext4 when mkfs.btrfs is missing or the array is under
// BtrfsMinSize); anything else is refused, never formatted, and the slot
// does not come up. It mounts state at /var/lib/ftnas and data at
// /srv/ftnas (noatime, nodev, nosuid; ext4 errors=remount-ro, default
// data=ordered) and prints "ftnas: storage ROLE array=... fs=...
// formatted|kept mount=..." (StorageReport). A store whose array has no
// partition on any disk (a test boot of disks without the installer's
// arrays) gets a tmpfs and a loud WARNING line (FallbackLine): nothing
// written there survives a reboot. At power-off the init unmounts them
// (or remounts them read-only). The kernel's btrfs and raid456 modules
// are loaded by the initramfs (disk.FirmwareModules).
//
// It then brings up lo and the first NIC with a static address
// (ftnas.ip=, ftnas.gw=; qemu user-net's 10.0.2.15/24 via 10.0.2.2 by
// default) and supervises nasd with --state /var/lib/ftnas, --volume
// /srv/ftnas and --raid-auto-adopt (a blank disk plugged in while an
// array is degraded is partitioned and rebuilt onto). Once `nasctl status --json` reports every service healthy
// it prints "ftnas: nasd serving {json}" on the console;
// ftnas.test_share= (a test hook) then adds an NFS share and writes two
// files into it (fsynced), or, when both are already there from an
// earlier boot, prints them (TestShareKeptLine). It then blesses the
// boot entry (package update: a new slot on trial loses its boot
// counter, and the ESP it booted from is copied to every disk) and
// prints "ftnas: boot entry STATE slot=... booted=... entry=...";
// ftnas.test_update=DEVICE (a test hook) then runs `nasctl update DEVICE`
// when that device is there and reboots; ftnas.test_install=DISKS:BUNDLE
// (vdb,vdc:/dev/vdd) runs `nasctl install` (package install) onto those
// disks when the bundle device is there and powers off. The init feeds
// the hardware watchdog (package watchdog; ftnas.watchdog= seconds,
// default 30, ftnas.watchdog_grace=, default 60) while nasd's health
// probes pass, and writes its magic close at a clean power-off;
// ftnas.test_hang_nasd=1 (a test hook) freezes nasd once it serves, to
// see the box reset. The slot image says which release it is in
// /etc/ftnas/release (written by images/cmd/build; package update refuses
// an older bundle). On a trial boot the init reboots, rather than powering off, when it fails to set up or nasd
// does not serve within 5 minutes, so the loader counts the try.
//
// Spec, Key, the command lines, Files, the init's options, Backoff and
// the storage decisions (Stores, ProbeFS, Decide, MkfsCommand, MountSpec)
// are pure; Bootstrap and SlotImage are Linux-only and need root; Boot
// starts the firmware under qemu and waits for nasd.
package userland
