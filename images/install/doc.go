// Package install installs the firmware onto blank disks from a running
// box: `nasctl install --disks /dev/vdb,/dev/vdc --bundle FILE
// [--data-level raid1|raid5|raid6|raid10] --yes`, served by nasd (POST
// /v1/install, root) with Installer.Install. The running box is
// typically an installer medium: itself an ftnas image (images/disk),
// with its own md arrays named like the ones the install makes.
//
// Installer.Install, reading the bundle once, in order:
//
//  1. reads the bundle's header and checks its signature against the
//     box's trusted keys exactly as `nasctl update` does (update.Keyring
//     .Check; --allow-unsigned only on a box that trusts no key);
//  2. finds what the box runs from: every disk with a partition in a
//     running md array, and the ESP the loader was read from
//     (LoaderDevicePartUUID); reads from that ESP systemd-boot, the
//     running slot's entry's kernel command line, kernel and initrd;
//  3. inspects each named disk (sysfs: whole disk, partitions, holders,
//     size, sector size; its first and last MiB: Signatures) and checks
//     them (CheckDisks, pure, again in PlanInstall): a disk that is a
//     partition, that the box runs from (also the one holding the ESP
//     it booted from), or that is not blank (partitions, holders, an MBR,
//     a primary or backup GPT, a file system, LVM, LUKS, swap, md
//     superblock magic where md keeps one), and fewer disks than the data
//     level needs, are refused (ErrRefused), every bad disk named, before
//     anything is written. The partitions are sized like the running disk's
//     (LayoutFrom: ESP, root slot and state sizes; the data partition
//     takes the rest) with raid.Plan's standard layout;
//  4. writes every disk's GPT (opened exclusively), re-reads it and
//     waits for the partitions; creates the arrays (root A, root B,
//     state: RAID1; data: the level; all with an internal bitmap, and
//     without --assume-clean, since the disks were only checked blank at
//     their ends: md syncs them in the background); zeroes the first MiB
//     of state and data, so the new box's first boot formats them
//     (package userland: ext4 and btrfs);
//  5. writes the bundle's slot image to root A with update.WriteVerify
//     (read back, hashed against the signed manifest), then copies it to
//     root B and checks that too, so both slots hold a bootable image as
//     in a built image, and an update works from either;
//  6. builds one ESP image (esp.Files, esp.WriteImage: systemd-boot at
//     its own and the fallback path, loader.conf, both slots' entries,
//     slot A preferred) with the bundle's kernel and initrd when it has
//     them, else the running slot's, and writes it to every disk's ESP,
//     read back and hashed: every ESP is identical;
//  7. stops the arrays. Power off and boot from the new disks.
//
// # Array names: the installation id
//
// The new arrays have the same names as the medium's (ftnas-root-a, ...):
// the initramfs, the slot's init and the update find arrays by GPT
// partition name and superblock name, and the names say what an array is.
// What tells two ftnas boxes' arrays apart is an installation id: 16 hex
// digits (NewID), stored as the md homehost of every array of the
// installation (the superblock name is "ID:ftnas-root-a") and put on
// both loader entries' kernel command lines as ftnas.install=ID. The
// initramfs (boot.AssembleRoot) and the slot's init (boot.AssembleArray
// for state and data) then only take superblocks of that homehost
// (boot.ChooseIn), so a box assembles its own arrays even when another
// box's disks are attached with more members or more events: the
// installed box booted with the installer medium still plugged in, or
// the medium booted with the installed disks attached. While installing,
// the new arrays are created as /dev/md/ID-ROLE, never colliding with
// the running box's /dev/md/ftnas-ROLE; they are stopped at the end, and
// the new box's initramfs assembles them as /dev/md/ftnas-ROLE.
//
// Why the homehost and not array UUIDs on the command line: the id is
// one short parameter for all arrays, stays valid when an array is
// re-created or a disk adopted (adoption adds partitions to the running
// arrays, keeping their superblock names), and mdadm writes and reports
// it itself (MD_NAME). images/disk gives every image it builds an id the
// same way (disk.Options.InstallID, random by default), so media and
// boxes built by the image builder have it too. An image built before
// the id has no ftnas.install= and its arrays no id homehost ("any:"):
// without the parameter boot keeps the old choice (any homehost, the
// group with the most members), so old images still boot as before.
//
// The pure parts are CheckDisks, PlanInstall, Signatures, EntryCmdline,
// EntryOptions, LayoutFrom, ParseLevel and NewID; Installer.Install is
// Linux-only and needs root. The qemu test (qemu_linux_test.go) boots a
// one-disk medium with two blank disks and a bundle disk, installs
// through nasctl in the guest (the userland init's ftnas.test_install
// hook), boots the installed disks alone, then with the medium attached,
// then the medium with the installed disks attached, checking which
// partitions each array was assembled from. install_linux_test.go runs
// Install on loop devices to check its refusals write nothing.
//
// A failure after the partitioning (step 4 on) leaves the disks
// partitioned, with the arrays stopped; they are then not blank, and a
// second try needs them wiped (wipefs -a) first. The error says what
// failed.
//
// Not done: the installed box's update (update.Updater) finds the
// inactive slot's array by name (boot.Choose, no id), so an update
// while another box's disks are attached could pick their slot; the
// hot-plug manager's --raid-auto-adopt could, while the medium's arrays
// are degraded, adopt a blank disk meant for an install.
package install
