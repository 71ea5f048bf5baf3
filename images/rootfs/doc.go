// Package rootfs builds the read-only squashfs image of a root slot (A or
// B): the userland the initramfs mounts from the slot's md RAID1 and hands
// over to. This package writes the placeholder: one static Go program,
// ./init, installed as /sbin/init, that proves the hand-over (it runs from
// the slot, on md) and powers off. The appliance's real userland (Debian
// with Samba and mdadm, nasd, nasctl) is built by package userland with
// mksquashfs and handed to disk.Build as Inputs.SlotImage.
//
// Layout is pure: the directory and file list of an image. WriteSquashfs
// writes it with go-diskfs, dates every entry Epoch and trims the file to
// the filesystem's size rounded up to 4 KiB.
package rootfs
