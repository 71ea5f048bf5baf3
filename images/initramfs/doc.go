// Package initramfs builds the newc cpio initramfs images the qemu lab and
// the firmware boot: a static Go /init (see ./init), kernel modules with
// the list /init loads them from, programs with the shared libraries and
// loader they need (read from their ELF headers, not by running ldd), and
// arbitrary files.
//
// The output is reproducible: entries are sorted, owned by root, dated 0,
// and every parent directory is written before its children. It is not
// compressed: under TCG, decompressing costs more boot time than reading
// a few more megabytes.
package initramfs
