// Package disk writes ftnas firmware installations: N raw disk images
// (or, later, real disks), each partitioned identically with GPT as
// raid.Plan lays them out, each carrying a byte-identical ESP (systemd-boot,
// loader entries and kernel + initrd for root slots A and B, see package
// esp), and md RAID1 arrays over all disks for root A, root B and state
// plus the data array.
//
// The host writes the GPTs and ESPs itself (go-diskfs, no root, no loop
// devices). It has no md, so the arrays are made by a short qemu guest
// (./internal/installer, direct kernel boot): mdadm --create with
// metadata 1.2 and internal bitmaps and the installation id as homehost
// (Options.InstallID, random by default; also ftnas.install= on both
// loader entries, so the boot assembles this installation's arrays and
// no other box's: see package install), then the root slot squashfs images
// (package rootfs's placeholder, or Inputs.SlotImage, the real userland
// package userland builds) are copied onto their arrays and read back. Build
// checks afterwards that every disk's ESP hashes the same
// (raid.HashESP).
//
// The result boots under UEFI from any one disk: firmware → fallback
// \EFI\BOOT\BOOTX64.EFI (systemd-boot) → kernel + initramfs (package boot:
// assemble root A degraded from the disks present) → the slot's
// /sbin/init. The qemu test boots each disk alone under OVMF to prove it.
package disk
