package kernel

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"ftnas/images/deb"
)

// TestFetchAndResolve fetches the cloud kernel (27 MB, once; then cached)
// and resolves the lab's modules from its real .modinfo sections.
func TestFetchAndResolve(t *testing.T) {
	opts := deb.Options{}
	if _, err := exec.LookPath("apt-get"); err != nil {
		opts.Offline = true
	}
	if err := os.MkdirAll(deb.DefaultCacheDir(), 0o755); err != nil {
		opts.Offline = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	k, err := Fetch(ctx, "", opts)
	if opts.Offline && err != nil {
		t.Skipf("no kernel in the cache and cannot fetch one (needs apt-get and a writable %s): %v", deb.DefaultCacheDir(), err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s at %s", k.Release, k.Vmlinuz)
	want := append(append(append(VirtioModules(), MDModules()...), DMModules()...), "bonding")
	mods, err := k.Resolve(want...)
	if err != nil {
		t.Fatal(err)
	}
	names := Names(mods)
	t.Logf("modules: %v", names)
	pos := func(n string) int {
		i := slices.Index(names, n)
		if i < 0 {
			t.Fatalf("module %s missing from %v", n, names)
		}
		return i
	}
	for _, dep := range [][2]string{
		{"virtio_ring", "virtio_pci"}, {"virtio", "virtio_blk"}, {"virtio_pci_modern_dev", "virtio_pci"},
		{"md_mod", "raid1"}, {"raid6_pq", "raid456"}, {"async_xor", "raid456"}, {"xor", "async_xor"},
		{"dm_mod", "dm_flakey"}, {"tls", "bonding"}, {"failover", "net_failover"}, {"net_failover", "virtio_net"},
	} {
		if pos(dep[0]) > pos(dep[1]) {
			t.Errorf("%s loads after %s, which needs it: %v", dep[0], dep[1], names)
		}
	}
	for _, m := range mods {
		if _, err := os.Stat(m.Path); err != nil {
			t.Error(err)
		}
	}
	if _, err := k.Resolve("no_such_module"); err == nil {
		t.Error("resolving a missing module succeeded")
	}
	off, err := Fetch(ctx, "", deb.Options{Offline: true})
	if err != nil || off.Release != k.Release {
		t.Errorf("offline fetch = %+v, %v; want release %s", off, err, k.Release)
	}
}
