package initramfs

import (
	"context"
	"debug/elf"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSharedLibs(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("needs a dynamically linked sh on the host:", err)
	}
	libs, err := SharedLibs(sh, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	hasLoader, hasLibc := false, false
	for _, l := range libs {
		names = append(names, l.Path)
		if strings.Contains(l.Path, "ld-linux") {
			hasLoader = true
		}
		if filepath.Base(l.Path) == "libc.so.6" {
			hasLibc = true
		}
	}
	if !hasLoader || !hasLibc {
		t.Errorf("SharedLibs(%s) = %v; want the loader and libc", sh, names)
	}
	if _, err := SharedLibs(sh, t.TempDir()); err == nil {
		t.Error("resolving against an empty root succeeded")
	}
}

// TestGoBuildInit builds the real /init and checks it is static: the
// kernel runs it before any library exists.
func TestGoBuildInit(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go tool:", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "init")
	if err := GoBuild(ctx, InitPackage, out, ""); err != nil {
		t.Fatal(err)
	}
	libs, err := SharedLibs(out, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) != 0 {
		t.Errorf("/init needs %v; want a static binary", libs)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		t.Errorf("machine %v", f.Machine)
	}
	if err := GoBuild(ctx, "ftnas/no/such/pkg", out, ""); err == nil || !strings.Contains(err.Error(), "ftnas/no/such/pkg") {
		t.Errorf("building a missing package: %v", err)
	}
}
