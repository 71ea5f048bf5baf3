// Package kernel fetches a Debian kernel package for the qemu lab and the
// firmware image, and picks kernel modules out of it with their
// dependencies.
//
// The Debian package carries no modules.dep (depmod runs at install time),
// so dependencies are read from each module's own .modinfo ELF section
// ("depends=" and "softdep=pre:"), which is what depmod itself reads.
// ParseModinfo and Order are pure; Kernel.Resolve walks the unpacked tree.
package kernel
