// Package lab is the glue lab tests use to boot code in qemu: it finds or
// fetches the Debian cloud kernel and mdadm (skipping the test with the
// reason when it cannot), builds static Go programs, and packs them with
// the generic /init and the needed modules into an initramfs.
//
// Fetching needs apt-get and a writable cache (FTNAS_CACHE, default
// /var/cache/ftnas); once fetched, nothing needs the network.
package lab
