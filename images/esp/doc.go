// Package esp builds the EFI System Partition every ftnas disk carries:
// systemd-boot at its own path and at the UEFI fallback path
// (\EFI\BOOT\BOOTX64.EFI, what firmware boots from a disk it has no boot
// entry for, such as a replacement disk), loader.conf, one loader entry
// per root slot (A, B) and each slot's kernel and initrd.
//
// The entries are named ftnas-RANK-SLOT[+LEFT[-DONE]].conf (EntryName)
// and loader.conf's default is the glob ftnas-* (DefaultPattern):
// systemd-boot boots the matching entry that sorts highest among those
// with boot tries left, so the default slot's entry has rank 1 and the
// other rank 0, and an update (package update) renames them, with a
// boot counter on the new slot's (Chosen models the choice).
//
// Files and the loader texts are pure; WriteImage formats a FAT32 image
// file with go-diskfs and writes the files into it. The image is built
// once and copied to every disk, so the ESPs are byte-identical
// (raid.HashESP checks it). Files are dated Epoch and the volume serial
// is fixed; only the volume-label and dot entries carry the build time.
package esp
