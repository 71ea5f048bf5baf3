package userland

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"ftnas/images/rootfs"
)

// Spec is the Debian part of the userland.
type Spec struct {
	// Suite is the Debian release, the one the host's apt (and so
	// package deb) fetches from.
	Suite string
	// Mirror is the archive URL.
	Mirror string
	// Variant is debootstrap's variant.
	Variant string
	// Packages are installed on top of the variant (without their
	// Recommends).
	Packages []string
}

// DefaultSpec is the firmware's userland: bookworm minbase with Samba
// (smbd, pdbedit, smbcontrol, smbstatus: nasd runs them), mdadm,
// iproute2 and btrfs-progs (the init makes the data volume btrfs: snapshots
// and checksums). useradd/groupadd (nasd makes system accounts)
// and e2fsprogs (the state filesystem's mkfs.ext4) are in minbase.
func DefaultSpec() Spec {
	return Spec{
		Suite:    "bookworm",
		Mirror:   "http://deb.debian.org/debian",
		Variant:  "minbase",
		Packages: []string{"btrfs-progs", "iproute2", "mdadm", "samba"},
	}
}

// Check reports what is wrong with a spec.
func (s Spec) Check() error {
	if s.Suite == "" || strings.ContainsAny(s.Suite, " /\n") {
		return fmt.Errorf("userland: bad suite %q", s.Suite)
	}
	u, err := url.Parse(s.Mirror)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("userland: bad mirror %q: want an http(s) URL", s.Mirror)
	}
	if s.Variant == "" || strings.ContainsAny(s.Variant, " /\n") {
		return fmt.Errorf("userland: bad variant %q", s.Variant)
	}
	for _, p := range s.Packages {
		if p == "" || strings.ContainsAny(p, " ,\n\t") {
			return fmt.Errorf("userland: bad package name %q", p)
		}
	}
	return nil
}

// packages returns the package list sorted, without duplicates.
func (s Spec) packages() []string {
	p := slices.Clone(s.Packages)
	slices.Sort(p)
	return slices.Compact(p)
}

// Key names a bootstrapped tree in the cache: a hash of the spec (package
// order does not matter), the tool that made it and release, the Date of
// the suite's Release file the host's apt lists hold ("" when it has
// none: then the key pins nothing but the spec).
func Key(s Spec, tool, release string) string {
	h := sha256.New()
	fmt.Fprintf(h, "ftnas-userland 1\nsuite %s\nmirror %s\nvariant %s\ntool %s\nrelease %s\n",
		s.Suite, strings.TrimRight(s.Mirror, "/"), s.Variant, tool, release)
	for _, p := range s.packages() {
		fmt.Fprintf(h, "package %s\n", p)
	}
	return s.Suite + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// ReleaseListName is the file name apt gives a suite's InRelease in
// /var/lib/apt/lists: the URL without its scheme, "/" written "_".
func ReleaseListName(mirror, suite string) (string, error) {
	u, err := url.Parse(strings.TrimRight(mirror, "/"))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("userland: bad mirror %q", mirror)
	}
	p := u.Host + u.Path + "/dists/" + suite + "/InRelease"
	return strings.ReplaceAll(p, "/", "_"), nil
}

// ParseReleaseDate returns the Date field of a Release or InRelease file
// (RFC 1123 with a numeric or named zone, as the archive writes it).
func ParseReleaseDate(text string) (time.Time, error) {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "Date:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		for _, layout := range []string{time.RFC1123, time.RFC1123Z} {
			if t, err := time.Parse(layout, v); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("userland: Release Date %q is not RFC 1123", v)
	}
	return time.Time{}, fmt.Errorf("userland: Release file has no Date field")
}

// Tools that make the tree, in order of preference.
const (
	ToolMmdebstrap  = "mmdebstrap"
	ToolDebootstrap = "debootstrap"
)

// excludes are paths dpkg does not unpack (documentation, manuals and
// translations: 30 MB nobody reads on an appliance); copyright files
// stay.
func excludes() []string {
	return []string{"/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*", "/usr/share/lintian/*"}
}

// BootstrapCommand returns the command line (argv[0] first) that makes
// s's tree in dir with tool.
func BootstrapCommand(tool string, s Spec, dir string) ([]string, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	pkgs := strings.Join(s.packages(), ",")
	switch tool {
	case ToolMmdebstrap:
		args := []string{tool, "--mode=root", "--variant=" + s.Variant, "--aptopt=APT::Install-Recommends \"false\""}
		if pkgs != "" {
			args = append(args, "--include="+pkgs)
		}
		for _, e := range excludes() {
			args = append(args, "--dpkgopt=path-exclude="+e)
		}
		args = append(args, "--dpkgopt=path-include=/usr/share/doc/*/copyright")
		return append(args, s.Suite, dir, s.Mirror), nil
	case ToolDebootstrap:
		args := []string{tool, "--variant=" + s.Variant}
		if pkgs != "" {
			args = append(args, "--include="+pkgs)
		}
		return append(args, s.Suite, dir, s.Mirror), nil
	}
	return nil, fmt.Errorf("userland: unknown bootstrap tool %q", tool)
}

// Epoch is SOURCE_DATE_EPOCH of every build: rootfs.Epoch.
func Epoch() int64 { return rootfs.Epoch().Unix() }

// CompressionLevel is zstd's level for the slot squashfs: 3 packs the
// Debian tree in seconds where the default 15 takes a minute on two
// cores, for about 15% more bytes.
const CompressionLevel = 3

// SquashfsCommand returns the mksquashfs command line that packs tree into
// out: zstd, every time Epoch, reproducible (mksquashfs sorts each
// directory itself), owners as in the tree, no progress bar.
func SquashfsCommand(tree, out string, level int) []string {
	e := strconv.FormatInt(Epoch(), 10)
	return []string{"mksquashfs", tree, out, "-noappend", "-comp", "zstd", "-Xcompression-level", strconv.Itoa(level),
		"-reproducible", "-mkfs-time", e, "-all-time", e, "-no-progress", "-quiet"}
}
