package userland

import "time"

// Options configure Bootstrap.
type Options struct {
	// CacheDir holds userland/KEY/; "" means deb.DefaultCacheDir().
	CacheDir string
	// Spec; a zero Spec means DefaultSpec().
	Spec Spec
	// Tool is mmdebstrap or debootstrap; "" means FindTool().
	Tool string
	// Logf gets progress; nil drops it.
	Logf func(format string, args ...any)
}

// Tree is a bootstrapped Debian tree in the cache.
type Tree struct {
	Key string
	// Root is the tree; it must not be changed.
	Root string
	// Manifest is the package=version list, one a line, sorted.
	Manifest []byte
	// Cached is true when the tree was already there.
	Cached bool
	// Took is how long the bootstrap (or the cache look-up) took.
	Took time.Duration
}

// Image is a packed slot squashfs.
type Image struct {
	Path   string
	Size   int64
	SHA256 string
	// Cached is true when the cache already held an image of the same
	// tree, files and compression.
	Cached bool
	Took   time.Duration
}
