package deb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Show returns apt-cache's record of the candidate version of pkg. It reads
// the local package lists only (no network).
func Show(ctx context.Context, pkg string) (Stanza, error) {
	out, err := run(ctx, "", "apt-cache", "show", "--no-all-versions", pkg)
	if err != nil {
		return nil, fmt.Errorf("deb: show %s: %w", pkg, err)
	}
	st, err := ParseStanza(out)
	if err != nil {
		return nil, fmt.Errorf("deb: show %s: %w", pkg, err)
	}
	return st, nil
}

// Fetch makes sure the candidate version of pkg is downloaded and unpacked
// in the cache and returns where.
func Fetch(ctx context.Context, pkg string, opts Options) (Package, error) {
	if opts.Offline {
		return FindCached(opts.cacheDir(), pkg)
	}
	st, err := Show(ctx, pkg)
	if err != nil {
		return Package{}, err
	}
	p := Package{Name: st["Package"], Version: st["Version"], Arch: st["Architecture"]}
	if p.Version == "" || p.Arch == "" {
		return Package{}, fmt.Errorf("deb: fetch %s: apt-cache record lacks Version or Architecture", pkg)
	}
	cache := opts.cacheDir()
	debDir := filepath.Join(cache, "deb")
	p.Deb = filepath.Join(debDir, DebFileName(p.Name, p.Version, p.Arch))
	p.Root = filepath.Join(cache, "root", rootName(p.Name, p.Version))
	if isComplete(p.Root) {
		return p, nil
	}
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return Package{}, fmt.Errorf("deb: fetch %s: %w", pkg, err)
	}
	unlock, err := lock(filepath.Join(cache, ".lock"))
	if err != nil {
		return Package{}, fmt.Errorf("deb: fetch %s: %w", pkg, err)
	}
	defer unlock()
	if isComplete(p.Root) { // another process finished it meanwhile
		return p, nil
	}
	log := opts.logger()
	if _, err := os.Stat(p.Deb); err != nil {
		log.Info("deb: downloading", "package", p.Name, "version", p.Version, "size", st["Size"])
		if _, err := run(ctx, debDir, "apt-get", "download", "-q", p.Name+"="+p.Version); err != nil {
			return Package{}, fmt.Errorf("deb: download %s=%s: %w", p.Name, p.Version, err)
		}
		if _, err := os.Stat(p.Deb); err != nil {
			return Package{}, fmt.Errorf("deb: download %s=%s: expected file: %w", p.Name, p.Version, err)
		}
	}
	tmp := p.Root + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return Package{}, fmt.Errorf("deb: unpack %s: %w", p.Deb, err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return Package{}, fmt.Errorf("deb: unpack %s: %w", p.Deb, err)
	}
	log.Info("deb: unpacking", "file", p.Deb, "dir", p.Root)
	if _, err := run(ctx, "", "dpkg-deb", "-x", p.Deb, tmp); err != nil {
		return Package{}, fmt.Errorf("deb: unpack %s: %w", p.Deb, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, completeMarker), []byte(p.Name+" "+p.Version+"\n"), 0o644); err != nil {
		return Package{}, fmt.Errorf("deb: unpack %s: %w", p.Deb, err)
	}
	if err := os.RemoveAll(p.Root); err != nil {
		return Package{}, fmt.Errorf("deb: unpack %s: %w", p.Deb, err)
	}
	if err := os.Rename(tmp, p.Root); err != nil {
		return Package{}, fmt.Errorf("deb: unpack %s: %w", p.Deb, err)
	}
	return p, nil
}

// FindCached returns the most recently unpacked complete tree of pkg in
// cacheDir, without running apt.
func FindCached(cacheDir, pkg string) (Package, error) {
	matches, err := filepath.Glob(filepath.Join(cacheDir, "root", pkg+"_*"))
	if err != nil {
		return Package{}, fmt.Errorf("deb: find cached %s: %w", pkg, err)
	}
	type cand struct {
		dir   string
		mtime int64
	}
	var cands []cand
	for _, m := range matches {
		if !isComplete(m) {
			continue
		}
		fi, err := os.Stat(filepath.Join(m, completeMarker))
		if err != nil {
			continue
		}
		cands = append(cands, cand{m, fi.ModTime().UnixNano()})
	}
	if len(cands) == 0 {
		return Package{}, fmt.Errorf("deb: find cached %s: %w", pkg, os.ErrNotExist)
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].mtime > cands[j].mtime })
	base := filepath.Base(cands[0].dir)
	name, version, _ := strings.Cut(base, "_")
	return Package{Name: name, Version: version, Root: cands[0].dir}, nil
}

func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

func run(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		var ee *exec.ExitError
		if errors.As(err, &ee) && msg != "" {
			return "", fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), lastLines(msg, 3))
		}
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return stdout.String(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}
