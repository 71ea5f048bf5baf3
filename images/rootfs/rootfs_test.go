package rootfs

import (
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
)

func TestLayout(t *testing.T) {
	es, err := Layout(Spec{Slot: "a", Init: "/host/init", Files: []File{{Path: "/etc/ftnas/version", Data: []byte("1\n")}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		kind := "f"
		if e.Dir {
			kind = "d"
		}
		got = append(got, kind+e.Path)
	}
	want := "d/dev d/etc d/etc/ftnas f/etc/ftnas/slot f/etc/ftnas/version d/mnt d/proc d/run d/sbin f/sbin/init d/sys d/tmp"
	if g := strings.Join(got, " "); g != want {
		t.Errorf("Layout = %s\nwant %s", g, want)
	}
	for _, bad := range []Spec{
		{Slot: "", Init: "/i"},
		{Slot: "a"},
		{Slot: "a", Init: "/i", Files: []File{{Path: "rel", Data: []byte{}}}},
		{Slot: "a", Init: "/i", Files: []File{{Path: "/sbin/init", Data: []byte{}}}},
		{Slot: "a", Init: "/i", Files: []File{{Path: "/sbin/init/x", Data: []byte{}}}},
		{Slot: "a", Init: "/i", Files: []File{{Path: "/x", Source: "/s", Data: []byte{}}}},
	} {
		if _, err := Layout(bad); err == nil {
			t.Errorf("Layout(%+v) accepted", bad)
		}
	}
}

// TestWriteSquashfs writes an image and reads it back with go-diskfs;
// the kernel mounting it is the qemu test's job (images/disk).
func TestWriteSquashfs(t *testing.T) {
	dir := t.TempDir()
	init := filepath.Join(dir, "init")
	body := strings.Repeat("static init ", 50_000)
	if err := os.WriteFile(init, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "root.squashfs")
	size, err := WriteSquashfs(img, 16<<20, Spec{Slot: "b", Init: init})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if size%4096 != 0 || fi.Size() != size || size >= int64(len(body)) {
		t.Errorf("size %d, file %d bytes: want a compressed image, a multiple of 4 KiB", size, fi.Size())
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sb [96]byte
	if _, err := f.ReadAt(sb[:], 0); err != nil {
		t.Fatal(err)
	}
	if got := int64(binary.LittleEndian.Uint32(sb[sbMkfsTime:])); got != Epoch().Unix() {
		t.Errorf("mkfs time %d, want %d", got, Epoch().Unix())
	}
	sq, err := squashfs.Read(file.New(f, true), size, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		r, err := sq.OpenFile(strings.TrimPrefix(p, "/"), os.O_RDONLY)
		if err != nil {
			t.Fatalf("open %s: %v", p, err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		return string(b)
	}
	if read(InitPath) != body {
		t.Error("/sbin/init differs from its source")
	}
	if got := read(SlotFile); got != "b\n" {
		t.Errorf("slot file = %q", got)
	}
	st, err := sq.Stat(strings.TrimPrefix(InitPath, "/"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 || !st.ModTime().Equal(Epoch()) {
		t.Errorf("/sbin/init mode %v mtime %v, want 0755 dated %v", st.Mode(), st.ModTime(), Epoch())
	}
	for _, d := range MountPoints() {
		if st, err := sq.Stat(strings.TrimPrefix(d, "/")); err != nil || !st.IsDir() {
			t.Errorf("mount point %s: %v", d, err)
		}
	}
	if _, err := WriteSquashfs(img, 16<<20, Spec{Slot: "b", Init: init}); err == nil {
		t.Error("WriteSquashfs overwrote an existing image")
	}
	if _, err := WriteSquashfs(filepath.Join(dir, "tiny"), 64<<10, Spec{Slot: "b", Init: init}); err == nil {
		t.Error("an image larger than maxSize was written")
	}
}
