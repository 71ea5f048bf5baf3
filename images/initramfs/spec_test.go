package initramfs

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cavaliergopher/cpio"
)

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readArchive(t *testing.T, b []byte) (names []string, hdrs map[string]*cpio.Header, data map[string]string) {
	t.Helper()
	hdrs, data = map[string]*cpio.Header{}, map[string]string{}
	r := cpio.NewReader(bytes.NewReader(b))
	for {
		h, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		hdrs[h.Name] = h
		data[h.Name] = string(body)
		if h.Mode&^cpio.ModePerm == cpio.TypeSymlink {
			data[h.Name] = h.Linkname
		}
	}
}

func TestBuild(t *testing.T) {
	init := writeTemp(t, "init", "INIT")
	mod1 := writeTemp(t, "md-mod.ko", "MD")
	mod2 := writeTemp(t, "raid1.ko", "R1")
	spec := Spec{
		Init:    init,
		Modules: []string{mod1, mod2},
		Run:     "/bin/test -v",
		Files: []File{
			{Path: "/etc/hostname", Data: []byte("guest\n")},
			{Path: "/bin/sh", Link: "busybox"},
			{Path: "/usr/share/x/empty", Data: []byte{}, Mode: 0o600},
		},
	}
	var a, b bytes.Buffer
	if err := Build(&a, spec); err != nil {
		t.Fatal(err)
	}
	if err := Build(&b, spec); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two builds of one spec differ")
	}
	if !bytes.HasPrefix(a.Bytes(), []byte("070701")) {
		t.Errorf("not a newc archive: %q", a.Bytes()[:6])
	}
	names, hdrs, data := readArchive(t, a.Bytes())
	want := []string{"bin", "bin/sh", "etc", "etc/ftnas", "etc/ftnas/modules", "etc/ftnas/run", "etc/hostname",
		"init", "lib", "lib/modules", "lib/modules/md-mod.ko", "lib/modules/raid1.ko",
		"usr", "usr/share", "usr/share/x", "usr/share/x/empty"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("entries\n got %v\nwant %v", names, want)
	}
	if got := data["etc/ftnas/modules"]; got != "/lib/modules/md-mod.ko\n/lib/modules/raid1.ko\n" {
		t.Errorf("module list = %q", got)
	}
	if data["init"] != "INIT" || hdrs["init"].Mode != cpio.TypeReg|0o755 {
		t.Errorf("init = %q mode %o", data["init"], hdrs["init"].Mode)
	}
	if data["etc/ftnas/run"] != "/bin/test -v\n" {
		t.Errorf("run = %q", data["etc/ftnas/run"])
	}
	if hdrs["bin/sh"].Mode&^cpio.ModePerm != cpio.TypeSymlink || data["bin/sh"] != "busybox" {
		t.Errorf("symlink: mode %o target %q", hdrs["bin/sh"].Mode, data["bin/sh"])
	}
	if hdrs["usr/share/x/empty"].Mode.Perm() != 0o600 || !hdrs["usr"].Mode.IsDir() {
		t.Errorf("modes: empty %o usr %o", hdrs["usr/share/x/empty"].Mode, hdrs["usr"].Mode)
	}
	if !hdrs["etc/hostname"].ModTime.Equal(hdrs["init"].ModTime) || hdrs["init"].ModTime.Unix() != 0 {
		t.Errorf("mtime not 0: %v", hdrs["init"].ModTime)
	}
}

func TestBuildErrors(t *testing.T) {
	init := writeTemp(t, "init", "INIT")
	other := writeTemp(t, "other", "X")
	tests := []struct {
		name string
		spec Spec
		err  string
	}{
		{"no init", Spec{}, "no Init"},
		{"missing init", Spec{Init: "/nonexistent/init"}, "add /init"},
		{"not a module", Spec{Init: init, Modules: []string{other}}, "not a .ko"},
		{"clash", Spec{Init: init, Files: []File{{Path: "/a", Data: []byte("1")}, {Path: "/a", Data: []byte("2")}}}, "two different files for /a"},
		{"file and dir", Spec{Init: init, Files: []File{{Path: "/a", Data: []byte("1")}, {Path: "/a/b", Data: []byte("2")}}}, "/a is both a file and a directory"},
		{"root", Spec{Init: init, Files: []File{{Path: "/", Data: []byte("1")}}}, "bad path"},
		{"source and data", Spec{Init: init, Files: []File{{Path: "/a", Source: other, Data: []byte("1")}}}, "both Source and Data"},
		{"symlink with data", Spec{Init: init, Files: []File{{Path: "/a", Link: "b", Data: []byte("1")}}}, "symlink has no"},
		{"program without path", Spec{Init: init, Programs: []Program{{Source: init}}}, "needs Source and Path"},
		{"program not ELF", Spec{Init: init, Programs: []Program{{Source: other, Path: "/bin/x"}}}, "shared libraries of"},
	}
	for _, tt := range tests {
		err := Build(io.Discard, tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: Build error = %v, want %q", tt.name, err, tt.err)
		}
	}
	// The same file twice is fine (two programs sharing libc).
	spec := Spec{Init: init, Files: []File{{Path: "/a", Source: other}, {Path: "a", Source: other}}}
	if err := Build(io.Discard, spec); err != nil {
		t.Errorf("identical duplicate: %v", err)
	}
}
