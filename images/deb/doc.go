// Package deb fetches Debian packages into a local cache and unpacks them,
// without installing anything on the host.
//
// The firmware image and the qemu lab are built from Debian packages (the
// kernel, mdadm, ...). Fetch resolves a package name to the candidate
// version the host's apt knows (apt-cache show, no network), downloads the
// .deb with `apt-get download` only when that exact version is not cached,
// and unpacks it with `dpkg-deb -x` into its own directory. Concurrent
// fetches of the same cache are serialised with a lock file.
//
// The pure part is ParseStanza/ParseDepends (apt-cache's RFC 822 output)
// and DebFileName.
package deb
