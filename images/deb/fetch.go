package deb

import (
	"log/slog"
	"os"
	"path/filepath"
)

// DefaultCacheDir is where fetched packages live: $FTNAS_CACHE, else
// /var/cache/ftnas.
func DefaultCacheDir() string {
	if d := os.Getenv("FTNAS_CACHE"); d != "" {
		return d
	}
	return "/var/cache/ftnas"
}

// Options configures Fetch.
type Options struct {
	// CacheDir holds deb/ (downloaded files) and root/ (unpacked trees).
	// Empty means DefaultCacheDir().
	CacheDir string
	// Offline never runs apt: it returns the newest unpacked tree of the
	// package already in the cache.
	Offline bool
	Logger  *slog.Logger
}

func (o Options) cacheDir() string {
	if o.CacheDir != "" {
		return o.CacheDir
	}
	return DefaultCacheDir()
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Package is a fetched, unpacked package.
type Package struct {
	Name    string
	Version string
	Arch    string
	// Deb is the downloaded file ("" when found offline).
	Deb string
	// Root is the directory the package was unpacked into; its files are
	// at their installed paths below it (Root/sbin/mdadm, ...).
	Root string
}

// rootName is the directory name of an unpacked package in root/.
func rootName(pkg, version string) string {
	return pkg + "_" + version
}

// completeMarker is written into an unpacked tree once it is whole.
const completeMarker = ".ftnas-complete"

func isComplete(root string) bool {
	_, err := os.Stat(filepath.Join(root, completeMarker))
	return err == nil
}
