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
//  0. reads the bundle's header (ReadBundleHeader) and checks its
//     signature (Keyring.Check) against the public keys the box trusts,
//     the PEM files in Updater.KeysDir (/etc/ftnas/update-keys, put into
//     the slot image by the build): an unsigned bundle, one signed by no
//     trusted key, or one whose manifest changed after it was signed is
//     refused (ErrUntrusted, an ErrFormat) before anything is touched. A
//     box that trusts no key (a development machine) refuses every
//     bundle unless the operator allows an unchecked one
//     (Options.AllowUnsigned, `nasctl update --allow-unsigned`);
//  0. refuses a bundle older than the running release (ErrDowngrade,
//     CheckDowngrade) unless the operator allows a downgrade
//     (Options.AllowDowngrade, `nasctl update --allow-downgrade`):
//     releases are ordered by a serial, a build number in the signed
//     manifest (Manifest.Serial, from images/cmd/build -serial), and the
//     running slot says its own in /etc/ftnas/release (Release, put into
//     the slot image by the build). A bundle without a serial (format 2
//     before serials) is serial 0; a slot without the file (built before
//     serials, or a development machine) runs serial 0 and takes any
//     bundle; an unreadable file refuses every bundle unless allowed. The
//     check runs after the signature's, so the serial compared is the
//     signed one, and a replayed old bundle fails it like any older one;
//     the running release itself (the same serial) may be written again;
//  1. finds the running slot (ftnas.slot= on the kernel command line)
//     and so the target;
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
// Bundles are signed with Ed25519 over the manifest bytes as stored; the
// manifest carries every part's size and SHA-256, so a signature covers
// the payload, and a part that does not match its hash fails while it is
// written (step 3 or 4), as before. A bundle may carry several
// signatures, each with its key's id (KeyID: the first 8 bytes of the
// SHA-256 of the public key); one by a trusted key suffices, so keys can
// be rotated: a release trusts the old and the new key, and later
// bundles are signed by the new one (or by both, for boxes still on an
// older release). The build (images/cmd/build) signs with the keys it is
// given, or with a development key kept in its cache (DevSigningKey).
// Format 1 bundles (unsigned) are still read, and refused as "unsigned
// bundle (format 1)". A box whose firmware predates serials refuses a
// manifest with one (its parser refuses unknown fields): it takes a
// bundle built with -serial 0 first. The downgrade check compares with
// the running slot only: a box that fell back from a failed update to an
// older slot takes that older slot's release again.
//
// The pure parts are the bundle format (ReadHeader, ReadBundleHeader,
// ParseManifest, Header, ReadPart), the signatures (Keyring.Verify,
// Keyring.Check, the key files), the entry plans (PlanPrepare, PlanSwitch,
// PlanBless, LoaderConf) and the ESP editing on a FAT image (ESP, over
// any io.ReaderAt/WriterAt); Updater's steps on devices are Linux-only.
//
// The read-back goes through md, which reads one
// mirror; the others are as md wrote them.
package update
