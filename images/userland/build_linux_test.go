package userland

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPlace checks that staging never writes through a hard link into
// the cached tree.
func TestPlace(t *testing.T) {
	dir := t.TempDir()
	tree, stage := filepath.Join(dir, "tree"), filepath.Join(dir, "stage")
	if err := os.MkdirAll(filepath.Join(tree, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "etc/hostname"), []byte("builder\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(stage, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(tree, "etc/hostname"), filepath.Join(stage, "etc/hostname")); err != nil {
		t.Fatal(err)
	}
	files, err := Files(Binaries{Nasd: "/n", Nasctl: "/c", Init: "/i"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path == "/etc/hostname" || f.Path == "/etc/machine-id" {
			if err := place(stage, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	if b, _ := os.ReadFile(filepath.Join(tree, "etc/hostname")); string(b) != "builder\n" {
		t.Errorf("the tree's file became %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(stage, "etc/hostname")); string(b) != "ftnas\n" {
		t.Errorf("the staged file is %q", b)
	}
	if err := place(stage, files[0]); err == nil {
		t.Error("placing a missing source file passed")
	}
}

// TestSlotImageReproducible packs a small tree twice, from copies made
// at different times in different caches, and wants the same bytes.
func TestSlotImageReproducible(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("needs mksquashfs (apt-get install squashfs-tools):", err)
	}
	bin := t.TempDir()
	for _, n := range []string{"nasd", "nasctl", "init"} {
		if err := os.WriteFile(filepath.Join(bin, n), []byte("#!/bin/true "+n+"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files, err := Files(Binaries{Nasd: filepath.Join(bin, "nasd"), Nasctl: filepath.Join(bin, "nasctl"), Init: filepath.Join(bin, "init")}, []byte("samba=2:4.17\n"))
	if err != nil {
		t.Fatal(err)
	}
	var sums []string
	for i, when := range []time.Time{time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Now()} {
		root := filepath.Join(t.TempDir(), "userland", "k", "root")
		for _, d := range []string{"etc", "usr/sbin", "var/lib/samba"} {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("builder\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(root, "var/lib/samba"), 0, 42); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(root, "etc/hostname"), when, when); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "slot.squashfs")
		im, err := SlotImage(t.Context(), Tree{Key: "k", Root: root}, files, out, CompressionLevel)
		if err != nil {
			t.Fatal(err)
		}
		if im.Cached || im.Size%4096 != 0 {
			t.Errorf("pack %d: %+v: want a fresh image of whole 4 KiB blocks", i, im)
		}
		sums = append(sums, im.SHA256)
		again, err := SlotImage(t.Context(), Tree{Key: "k", Root: root}, files, out+"2", CompressionLevel)
		if err != nil || !again.Cached || again.SHA256 != im.SHA256 {
			t.Errorf("pack %d again: %+v, %v: want the cached image", i, again, err)
		}
		if b, _ := os.ReadFile(filepath.Join(root, "etc/hostname")); string(b) != "builder\n" {
			t.Errorf("packing changed the tree's /etc/hostname to %q", b)
		}
		if i == 0 {
			cmd := exec.Command("unsquashfs", "-lln", out)
			cmd.Env = append(os.Environ(), "TZ=UTC")
			ls, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("unsquashfs: %v: %s", err, ls)
			}
			for _, want := range []string{"-rwxr-xr-x 0/0", "/usr/sbin/init", "/usr/sbin/nasd", "/usr/bin/nasctl", "drwxr-xr-x 0/42", "/var/lib/samba", "2024-01-01 00:00 squashfs-root/etc/hostname"} {
				if !strings.Contains(string(ls), want) {
					t.Errorf("image listing lacks %q:\n%s", want, ls)
				}
			}
		}
	}
	if sums[0] != sums[1] {
		t.Errorf("two packs of the same tree differ: %s and %s", sums[0], sums[1])
	}
}
