package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveSharePath(t *testing.T) {
	for _, mode := range []struct {
		name    string
		openat2 bool
	}{{"openat2", true}, {"lstat-fallback", false}} {
		t.Run(mode.name, func(t *testing.T) {
			base := t.TempDir()
			vol := filepath.Join(base, "vol")
			outside := filepath.Join(base, "outside")
			for _, d := range []string{vol + "/a/b", outside} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			os.Symlink(outside, vol+"/escape")    // absolute, out of the volume
			os.Symlink("../..", vol+"/a/up")      // relative, out of the volume
			os.Symlink("b", vol+"/a/inner")       // stays inside, still refused
			os.WriteFile(vol+"/file", nil, 0o644) // not a directory
			resolve := func(rel string, create bool) (string, error) {
				return resolveSharePath(vol, rel, create, mode.openat2)
			}

			got, err := resolve("a/b", false)
			if err != nil || got != vol+"/a/b" {
				t.Errorf("existing = %q, %v", got, err)
			}
			got, err = resolve("a/new/deeper", true)
			if err != nil || got != vol+"/a/new/deeper" {
				t.Errorf("create = %q, %v", got, err)
			}
			if fi, err := os.Stat(vol + "/a/new/deeper"); err != nil || !fi.IsDir() || fi.Mode().Perm()&^0o755 != 0 || fi.Mode().Perm()&0o700 != 0o700 {
				t.Errorf("created folder: %v %v", fi, err)
			}
			if _, err := resolve("a/b", true); err != nil {
				t.Errorf("create existing = %v", err)
			}
			if _, err := resolve("missing/x", false); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "missing") {
				t.Errorf("missing without create = %v", err)
			}
			if _, err := os.Stat(vol + "/missing"); !os.IsNotExist(err) {
				t.Error("folder created without create")
			}

			bad := []struct{ rel, want string }{
				{"../outside", `".."`},
				{"a/../../outside", `".."`},
				{outside, "not absolute"},
				{"escape", "escape is a symbolic link"},
				{"escape/x", "escape is a symbolic link"},
				{"a/up/outside", "a/up is a symbolic link"},
				{"a/inner", "a/inner is a symbolic link"},
				{"a/inner/c", "a/inner is a symbolic link"},
				{"file", "file is not a directory"},
				{"file/x", "file is not a directory"},
			}
			for _, c := range bad {
				for _, create := range []bool{false, true} {
					_, err := resolve(c.rel, create)
					if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
						t.Errorf("resolve(%q, create=%v) = %v, want ErrInvalid mentioning %q", c.rel, create, err, c.want)
					}
				}
			}
			if _, err := os.Stat(outside + "/x"); !os.IsNotExist(err) {
				t.Error("a folder was created outside the volume")
			}
			if _, err := os.Stat(vol + "/a/b/c"); !os.IsNotExist(err) {
				t.Error("a folder was created through the inner symlink")
			}

			_, err = resolveSharePath(filepath.Join(base, "novol"), "a", true, mode.openat2)
			if err == nil || !strings.Contains(err.Error(), "volume "+base+"/novol is missing") {
				t.Errorf("missing volume = %v", err)
			}
			if _, err := os.Stat(filepath.Join(base, "novol")); !os.IsNotExist(err) {
				t.Error("missing volume was created")
			}
			if _, err := resolveSharePath(vol+"/file", "a", true, mode.openat2); err == nil || !strings.Contains(err.Error(), "not a directory") {
				t.Errorf("volume is a file = %v", err)
			}
			if _, err := resolveSharePath("rel/vol", "a", true, mode.openat2); !errors.Is(err, ErrInvalid) {
				t.Errorf("relative volume = %v", err)
			}
		})
	}
}

func TestResolveSharePathVolumeSymlinkAllowed(t *testing.T) {
	base := t.TempDir()
	os.MkdirAll(base+"/real/x", 0o755)
	os.Symlink(base+"/real", base+"/vol")
	got, err := ResolveSharePath(base+"/vol", "x", false)
	if err != nil || got != base+"/vol/x" {
		t.Errorf("ResolveSharePath via volume symlink = %q, %v", got, err)
	}
}
