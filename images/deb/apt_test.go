package deb

import (
	"reflect"
	"strings"
	"testing"
)

const kernelMeta = `Package: linux-image-cloud-amd64
Source: linux-signed-amd64 (6.1.192+2)
Version: 6.1.192-2
Installed-Size: 13
Maintainer: Debian Kernel Team <debian-kernel@lists.debian.org>
Architecture: amd64
Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)
Description-en: Linux for x86-64 cloud (meta-package)
 This package depends on the latest Linux kernel and modules for use on
 Amazon EC2 instances.
Description-md5: 9ad4e6d0e2b9b4a6b6b5f1b8b9c3e0d1
Size: 1492

Package: linux-image-cloud-amd64
Version: 6.1.176-1
`

func TestParseStanza(t *testing.T) {
	st, err := ParseStanza(kernelMeta)
	if err != nil {
		t.Fatal(err)
	}
	if st["Version"] != "6.1.192-2" {
		t.Errorf("Version = %q, want the first record's", st["Version"])
	}
	if st["Architecture"] != "amd64" || st["Size"] != "1492" {
		t.Errorf("Architecture, Size = %q, %q", st["Architecture"], st["Size"])
	}
	if !strings.HasSuffix(st["Description-en"], "\nAmazon EC2 instances.") {
		t.Errorf("continuation not joined: %q", st["Description-en"])
	}
}

func TestParseStanzaErrors(t *testing.T) {
	for _, in := range []string{
		"",
		" leading continuation\nPackage: x\n",
		"Package x\n",
		"Version: 1\n",
		"Bad Field: 1\nPackage: x\n",
	} {
		if _, err := ParseStanza(in); err == nil {
			t.Errorf("ParseStanza(%q) succeeded, want error", in)
		}
	}
}

func TestParseDepends(t *testing.T) {
	tests := []struct {
		in   string
		want [][]Dependency
	}{
		{"", nil},
		{"linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)", [][]Dependency{{{"linux-image-6.1.0-56-cloud-amd64", "=", "6.1.192-2"}}}},
		{"kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool", [][]Dependency{
			{{"kmod", "", ""}},
			{{"linux-base", ">=", "4.3~"}},
			{{"initramfs-tools", ">=", "0.120+deb8u2"}, {"linux-initramfs-tool", "", ""}},
		}},
		{"libc6:amd64 (>= 2.34)", [][]Dependency{{{"libc6", ">=", "2.34"}}}},
	}
	for _, tt := range tests {
		got, err := ParseDepends(tt.in)
		if err != nil {
			t.Errorf("ParseDepends(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseDepends(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"a,,b", "a (>= 1", "a (1)", "a | ", "(= 1)"} {
		if _, err := ParseDepends(bad); err == nil {
			t.Errorf("ParseDepends(%q) succeeded, want error", bad)
		}
	}
}

func TestDebFileName(t *testing.T) {
	if got := DebFileName("qemu-system-x86", "1:7.2+dfsg-7", "amd64"); got != "qemu-system-x86_1%3a7.2+dfsg-7_amd64.deb" {
		t.Errorf("DebFileName = %q", got)
	}
}

func FuzzParseDepends(f *testing.F) {
	f.Add("kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool")
	f.Add("libc6:amd64 (>= 2.34)")
	f.Fuzz(func(t *testing.T, s string) {
		deps, err := ParseDepends(s)
		if err != nil {
			return
		}
		for _, alts := range deps {
			for _, d := range alts {
				if d.Name == "" || strings.ContainsAny(d.Name, " \t(),|") {
					t.Fatalf("bad name %q from %q", d.Name, s)
				}
			}
		}
	})
}

func FuzzParseStanza(f *testing.F) {
	f.Add(kernelMeta)
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStanza(s)
		if err == nil && st["Package"] == "" {
			t.Fatalf("no Package but no error for %q", s)
		}
	})
}
