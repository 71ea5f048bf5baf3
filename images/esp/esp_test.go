package esp

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
)

func testConfig(t *testing.T) Config {
	dir := t.TempDir()
	write := func(name string, n int) string {
		p := filepath.Join(dir, name)
		b := bytes.Repeat([]byte(name), n/len(name)+1)[:n]
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return Config{
		Bootloader: write("sdboot", 100_000),
		Slots: []Slot{
			{Name: "a", Kernel: write("vmlinuz", 3_000_001), Initrd: write("initrd", 1_000_000), Options: "console=ttyS0 ftnas.slot=a"},
			{Name: "b", Kernel: write("vmlinuz", 3_000_001), Initrd: write("initrd", 1_000_000), Options: "ftnas.slot=b"},
		},
	}
}

func TestLoaderTexts(t *testing.T) {
	c := testConfig(t)
	if got, want := LoaderConf(c), "default ftnas-*\ntimeout 0\nconsole-mode keep\neditor no\n"; got != want {
		t.Errorf("LoaderConf = %q, want %q", got, want)
	}
	c.Default, c.Timeout = "b", 3
	if got := LoaderConf(c); !strings.HasPrefix(got, "default ftnas-*\ntimeout 3\n") {
		t.Errorf("LoaderConf with timeout 3 = %q", got)
	}
	if got := c.EntryPath("b"); got != "/loader/entries/ftnas-1-b.conf" {
		t.Errorf("EntryPath(b) with default b = %q", got)
	}
	if got := c.EntryPath("a"); got != "/loader/entries/ftnas-0-a.conf" {
		t.Errorf("EntryPath(a) with default b = %q", got)
	}
	want := "title ftnas slot A\nlinux /ftnas/a/vmlinuz\ninitrd /ftnas/a/initrd.img\noptions console=ttyS0 ftnas.slot=a\n"
	if got := Entry(c.Slots[0]); got != want {
		t.Errorf("Entry = %q, want %q", got, want)
	}
}

func TestFilesErrors(t *testing.T) {
	good := testConfig(t)
	for _, tt := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Bootloader = "" }, "no Bootloader"},
		{func(c *Config) { c.Slots = nil }, "no Slots"},
		{func(c *Config) { c.Slots[1].Name = "a" }, "twice"},
		{func(c *Config) { c.Slots[1].Name = "B/" }, "bad slot name"},
		{func(c *Config) { c.Slots[0].Initrd = "" }, "needs Kernel and Initrd"},
		{func(c *Config) { c.Slots[0].Options = "a\nb" }, "one line"},
		{func(c *Config) { c.Default = "c" }, "default slot"},
		{func(c *Config) { c.Timeout = -1 }, "Timeout"},
	} {
		c := good
		c.Slots = append([]Slot(nil), good.Slots...)
		tt.edit(&c)
		if _, err := Files(c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Files: error %v, want %q", err, tt.want)
		}
	}
}

// TestWriteImage writes an ESP and reads every file back through an
// independent opening of the image.
func TestWriteImage(t *testing.T) {
	c := testConfig(t)
	files, err := Files(c)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	wantPaths := "/EFI/BOOT/BOOTX64.EFI /EFI/systemd/systemd-bootx64.efi /ftnas/a/initrd.img /ftnas/a/vmlinuz /ftnas/b/initrd.img /ftnas/b/vmlinuz /loader/entries/ftnas-0-b.conf /loader/entries/ftnas-1-a.conf /loader/loader.conf"
	if got := strings.Join(paths, " "); got != wantPaths {
		t.Fatalf("Files paths = %s\nwant %s", got, wantPaths)
	}
	img := filepath.Join(t.TempDir(), "esp.img")
	if err := WriteImage(img, 40<<20, files); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsys, err := fat32.Read(file.New(f, true), 40<<20, 0, 512)
	if err != nil {
		t.Fatal(err)
	}
	if l := fsys.Label(); strings.TrimSpace(l) != Label {
		t.Errorf("label %q, want %q", l, Label)
	}
	for _, fl := range files {
		want := fl.Data
		if fl.Source != "" {
			if want, err = os.ReadFile(fl.Source); err != nil {
				t.Fatal(err)
			}
		}
		r, err := fsys.OpenFile(fl.Path, os.O_RDONLY)
		if err != nil {
			t.Errorf("open %s: %v", fl.Path, err)
			continue
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: read %d bytes (err %v), want %d bytes as written", fl.Path, len(got), err, len(want))
		}
		fi, err := fsys.Stat(strings.TrimPrefix(fl.Path, "/"))
		if err != nil {
			t.Errorf("stat %s: %v", fl.Path, err)
		} else if !fi.ModTime().Equal(Epoch()) {
			t.Errorf("%s: mtime %v, want %v", fl.Path, fi.ModTime(), Epoch())
		}
	}
	// A second image of the same files has the same bytes except the
	// entries dated at build time; at least the size must match and the
	// file must not be written over.
	if err := WriteImage(img, 40<<20, files); err == nil {
		t.Error("WriteImage overwrote an existing file")
	}
}

func TestWriteImageErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 40<<20); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		size  int64
		files []File
		want  string
	}{
		{20 << 20, nil, "at least"},
		{(40 << 20) + 1, nil, "multiple of 1 MiB"},
		{40 << 20, []File{{Path: "/k", Source: big}}, "do not fit"},
		{40 << 20, []File{{Path: "k", Data: []byte("x")}}, "clean absolute path"},
		{40 << 20, []File{{Path: "/k", Source: filepath.Join(dir, "nope")}}, "no such file"},
	} {
		name := filepath.Join(dir, "esp.img")
		err := WriteImage(name, tt.size, tt.files)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("WriteImage(%d, %v): %v, want %q", tt.size, tt.files, err, tt.want)
		}
		if _, err := os.Stat(name); err == nil {
			t.Errorf("WriteImage left %s after an error", name)
			os.Remove(name)
		}
	}
}
