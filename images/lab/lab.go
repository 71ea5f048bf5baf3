package lab

import (
	"context"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ftnas/images/deb"
	"ftnas/images/initramfs"
	"ftnas/images/kernel"
)

// fetchOptions is offline unless apt-get exists and the cache is writable.
func fetchOptions() (deb.Options, string) {
	cache := deb.DefaultCacheDir()
	if _, err := exec.LookPath("apt-get"); err != nil {
		return deb.Options{CacheDir: cache, Offline: true}, "apt-get not found"
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return deb.Options{CacheDir: cache, Offline: true}, "cache not writable: " + err.Error()
	}
	probe, err := os.CreateTemp(cache, ".probe-")
	if err != nil {
		return deb.Options{CacheDir: cache, Offline: true}, "cache not writable: " + err.Error()
	}
	probe.Close()
	os.Remove(probe.Name())
	return deb.Options{CacheDir: cache}, ""
}

// Kernel returns the Debian cloud kernel, fetching it into the cache when
// it is not there yet (27 MB), or skips the test.
func Kernel(t testing.TB) kernel.Kernel {
	t.Helper()
	opts, why := fetchOptions()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	k, err := kernel.Fetch(ctx, "", opts)
	if err != nil {
		if opts.Offline {
			t.Skipf("no Debian cloud kernel in %s and cannot fetch one (%s): run `go run ./images/cmd/fetch` as root: %v", opts.CacheDir, why, err)
		}
		t.Fatal(err)
	}
	return k
}

// Package returns the unpacked Debian package name, fetching it when
// needed, or skips the test.
func Package(t testing.TB, name string) deb.Package {
	t.Helper()
	opts, why := fetchOptions()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := deb.Fetch(ctx, name, opts)
	if err != nil {
		if opts.Offline {
			t.Skipf("no %s package in %s and cannot fetch one (%s): run `go run ./images/cmd/fetch` as root: %v", name, opts.CacheDir, why, err)
		}
		t.Fatal(err)
	}
	return p
}

// Mdadm returns mdadm from its Debian package as an initramfs program at
// /sbin/mdadm (its shared libraries come from the host, which runs the
// same Debian release).
func Mdadm(t testing.TB) initramfs.Program {
	t.Helper()
	p := Package(t, "mdadm")
	return initramfs.Program{Source: filepath.Join(p.Root, "sbin", "mdadm"), Path: "/sbin/mdadm"}
}

// GoBinary builds the main package pkg (an import path such as
// "ftnas/raid/internal/guesttest") as a static linux/amd64 program in a
// temporary directory and returns its path.
func GoBinary(t testing.TB, pkg string) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go tool to build guest programs:", err)
	}
	out := filepath.Join(t.TempDir(), path.Base(pkg))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := initramfs.GoBuild(ctx, pkg, out, ""); err != nil {
		t.Fatal(err)
	}
	trackSources(t, ctx, pkg)
	return out
}

// trackSources opens the Go files pkg is built from (outside the standard
// library), so that go test's result cache, which notes the files a test
// opens, is invalidated when the guest program changes. Without it a
// cached PASS would outlive an edit to code that only runs in the guest.
func trackSources(t testing.TB, ctx context.Context, pkg string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-f",
		`{{if not .Standard}}{{range .GoFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{end}}`, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lab: go list %s: %v", pkg, err)
	}
	for _, f := range strings.Fields(string(out)) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("lab: track %s: %v", f, err)
		}
		_ = b
	}
}

// Image is what a test initramfs holds besides the generic /init.
type Image struct {
	// Modules are module names; they are resolved against the kernel
	// with their dependencies and loaded in order by /init.
	Modules []string
	// GoPrograms maps an image path (/bin/raidtest) to a Go main package.
	GoPrograms map[string]string
	// Programs are host executables with their libraries (mdadm).
	Programs []initramfs.Program
	Files    []initramfs.File
	// Run is /init's default command (ftnas.run= overrides it).
	Run string
}

// Initramfs builds an initramfs for k in a temporary directory and
// returns its path.
func Initramfs(t testing.TB, k kernel.Kernel, img Image) string {
	t.Helper()
	mods, err := k.Resolve(img.Modules...)
	if err != nil {
		t.Fatal(err)
	}
	spec := initramfs.Spec{
		Init:     GoBinary(t, initramfs.InitPackage),
		Programs: img.Programs,
		Files:    img.Files,
		Run:      img.Run,
	}
	for _, m := range mods {
		spec.Modules = append(spec.Modules, m.Path)
	}
	for p, pkg := range img.GoPrograms {
		spec.Files = append(spec.Files, initramfs.File{Path: p, Source: GoBinary(t, pkg), Mode: 0o755})
	}
	out := filepath.Join(t.TempDir(), "initrd.cpio")
	if err := initramfs.WriteFile(out, spec); err != nil {
		t.Fatal(err)
	}
	return out
}
