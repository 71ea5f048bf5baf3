// Package guest is the runtime of ftnas's initramfs /init and of test
// programs that run inside a qemu guest: it mounts the basic filesystems,
// loads kernel modules in a given order (finit_module), reads the kernel
// command line, waits for block devices, prints the result marker the host
// watches the console for, and powers the machine off.
//
// ParseCmdline and the result-line helpers are pure and build everywhere;
// the rest is Linux-only.
package guest
