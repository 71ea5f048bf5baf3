// Package kernel fetches a Debian kernel package for the qemu lab and the
// firmware image, and picks kernel modules out of it with their
// dependencies.
//
// The Debian package carries no modules.dep (depmod runs at install time),
// so dependencies are read from each module's own .modinfo ELF section
// ("depends=" and "softdep=pre:"), which is what depmod itself reads.
// A soft dependency may name an alias rather than a module (libcrc32c's
// "crc32c", built into the cloud flavour, the module crc32c_generic in the
// generic one); Resolve maps it through modules.alias as modprobe would
// (when the package ships that file), preferring a built-in, then a
// generic implementation. ParseModinfo and Order are pure; Kernel.Resolve
// walks the unpacked tree.
package kernel
