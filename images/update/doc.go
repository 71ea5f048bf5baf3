// Package update is the firmware's A/B update: an update bundle (a
// versioned header with a manifest, the new root slot's squashfs and,
// optionally, the slot's kernel and initrd, each with its SHA-256) is
// written to the root slot the box is not running, read back and
// checked, and the boot entries are switched so that the new slot boots
// next with a limited number of tries (systemd-boot's boot counting).
//
// The loader entries on the ESP are named esp.EntryName: the preferred
// slot has rank 1, the other rank 0, and loader.conf's default is the
// glob ftnas-*, so systemd-boot boots the entry whose name sorts highest
// among those with tries left. The update (Updater.Update):
//
//  1. reads the bundle's header (ReadHeader) and finds the running slot
//     (ftnas.slot= on the kernel command line) and so the target;
//  2. marks the target's entry as having no tries left and makes the
//     running slot's entry the preferred one (PlanPrepare), on the ESP
//     the loader booted from, then copies that ESP to every member disk
//     (raid.Adopter.SyncESP), so no disk boots the half-written slot;
//  3. assembles the target slot's md array when it is not running,
//     writes the squashfs to it, syncs, drops the cache and reads it
//     back, comparing the SHA-256 with the manifest's;
//  4. writes the kernel and initrd, when the bundle has them, to the
//     target's directory on the ESP, renames the entries (PlanSwitch:
//     running to rank 0, target to rank 1 with "+3" tries) and copies
//     the ESP to every disk again.
//
// On the next boot systemd-boot renames the target's entry before each
// attempt (+3 → +2-1 → +1-2 → +0-3). A slot that does not come up (the
// initramfs cannot mount it, or its init finds nasd not serving in
// time) reboots; once no tries are left systemd-boot boots the old slot,
// which is still a good entry. A slot that comes up blesses itself
// (Updater.Bless, called by the slot's init once nasd serves): its entry
// loses the counter, and the ESP it booted from is copied to every disk.
//
// The pure parts are the bundle format (ReadHeader, ParseManifest,
// Header, ReadPart), the entry plans (PlanPrepare, PlanSwitch,
// PlanBless, LoaderConf) and the ESP editing on a FAT image (ESP, over
// any io.ReaderAt/WriterAt); Updater's steps on devices are Linux-only.
//
// The bundle is not signed: whoever may run `nasctl update` is root on
// the box already. The read-back goes through md, which reads one
// mirror; the others are as md wrote them.
package update
