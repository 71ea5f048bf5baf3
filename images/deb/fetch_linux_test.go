package deb

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestFetchMdadm downloads (once; the cache keeps it) and unpacks mdadm,
// the smallest package the lab uses.
func TestFetchMdadm(t *testing.T) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("needs apt-get: ", err)
	}
	cache := DefaultCacheDir()
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Skipf("needs a writable package cache %s (or set FTNAS_CACHE): %v", cache, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := Fetch(ctx, "mdadm", Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "mdadm" || p.Version == "" {
		t.Errorf("Fetch = %+v", p)
	}
	if fi, err := os.Stat(filepath.Join(p.Root, "sbin", "mdadm")); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("unpacked mdadm: %v, %v", fi, err)
	}
	off, err := Fetch(ctx, "mdadm", Options{CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if off.Root != p.Root {
		t.Errorf("offline Root = %q, want %q", off.Root, p.Root)
	}
	if _, err := Fetch(ctx, "no-such-package-ftnas", Options{CacheDir: cache}); err == nil {
		t.Error("fetching a missing package succeeded")
	}
	if _, err := FindCached(t.TempDir(), "mdadm"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FindCached in an empty cache: %v, want not-exist", err)
	}
}
