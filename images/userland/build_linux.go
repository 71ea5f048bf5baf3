package userland

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"ftnas/images/deb"
	"ftnas/images/initramfs"
	"ftnas/images/rootfs"
)

// FindTool returns the first bootstrap tool on PATH: mmdebstrap (faster:
// one apt run, no second stage), else debootstrap.
func FindTool() (string, error) {
	for _, t := range []string{ToolMmdebstrap, ToolDebootstrap} {
		if _, err := exec.LookPath(t); err == nil {
			return t, nil
		}
	}
	return "", fmt.Errorf("userland: neither %s nor %s is installed (apt-get install mmdebstrap squashfs-tools)", ToolMmdebstrap, ToolDebootstrap)
}

// HostRelease returns the Date of s's suite Release file in the host's
// apt lists, RFC 3339, or "" when the host has none.
func HostRelease(s Spec) string {
	name, err := ReleaseListName(s.Mirror, s.Suite)
	if err != nil {
		return ""
	}
	b, err := os.ReadFile(filepath.Join("/var/lib/apt/lists", name))
	if err != nil {
		return ""
	}
	t, err := ParseReleaseDate(string(b))
	if err != nil {
		return ""
	}
	return t.Format(time.RFC3339)
}

const completeMarker = ".ftnas-complete"

// Bootstrap returns the tree for o's spec, making it when the cache does
// not hold it (about 100 s with mmdebstrap, 320 MB). Concurrent callers
// are serialised with a lock file next to the tree.
func Bootstrap(ctx context.Context, o Options) (Tree, error) {
	start := time.Now()
	s := o.Spec
	if s.Suite == "" {
		s = DefaultSpec()
	}
	if err := s.Check(); err != nil {
		return Tree{}, err
	}
	tool := o.Tool
	if tool == "" {
		var err error
		if tool, err = FindTool(); err != nil {
			return Tree{}, err
		}
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	cache := o.CacheDir
	if cache == "" {
		cache = deb.DefaultCacheDir()
	}
	release := HostRelease(s)
	key := Key(s, tool, release)
	dir := filepath.Join(cache, "userland", key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Tree{}, fmt.Errorf("userland: bootstrap: %w", err)
	}
	unlock, err := lock(filepath.Join(dir, ".lock"))
	if err != nil {
		return Tree{}, err
	}
	defer unlock()
	t := Tree{Key: key, Root: filepath.Join(dir, "root")}
	if _, err := os.Stat(filepath.Join(dir, completeMarker)); err == nil {
		if t.Manifest, err = os.ReadFile(filepath.Join(dir, "manifest")); err != nil {
			return Tree{}, fmt.Errorf("userland: cached tree %s: %w", key, err)
		}
		t.Cached, t.Took = true, time.Since(start)
		return t, nil
	}
	tmp := filepath.Join(dir, "root.tmp")
	for _, p := range []string{tmp, t.Root} {
		if err := os.RemoveAll(p); err != nil {
			return Tree{}, fmt.Errorf("userland: bootstrap: %w", err)
		}
	}
	argv, err := BootstrapCommand(tool, s, tmp)
	if err != nil {
		return Tree{}, err
	}
	logf("userland: bootstrapping %s (release %q) with %s into %s", s.Suite, release, tool, dir)
	logPath := filepath.Join(dir, "bootstrap.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return Tree{}, fmt.Errorf("userland: bootstrap: %w", err)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(Epoch(), 10), "LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	err = cmd.Run()
	logFile.Close()
	if err != nil {
		os.RemoveAll(tmp)
		return Tree{}, fmt.Errorf("userland: %s: %w (log: %s: %s)", strings.Join(argv, " "), err, logPath, tail(logPath, 600))
	}
	if err := scrub(tmp); err != nil {
		return Tree{}, err
	}
	out, err := exec.CommandContext(ctx, "dpkg-query", "--admindir="+filepath.Join(tmp, "var/lib/dpkg"), "-W", "-f", "${Package}=${Version}\n").Output()
	if err != nil {
		return Tree{}, fmt.Errorf("userland: list packages of %s: %w", tmp, err)
	}
	t.Manifest = manifestLines(string(out))
	if err := os.WriteFile(filepath.Join(dir, "manifest"), t.Manifest, 0o644); err != nil {
		return Tree{}, fmt.Errorf("userland: bootstrap: %w", err)
	}
	if err := os.Rename(tmp, t.Root); err != nil {
		return Tree{}, fmt.Errorf("userland: bootstrap: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, completeMarker), nil, 0o644); err != nil {
		return Tree{}, fmt.Errorf("userland: bootstrap: %w", err)
	}
	t.Took = time.Since(start)
	logf("userland: bootstrapped %s in %v: %d packages", key, t.Took.Round(time.Second), bytes.Count(t.Manifest, []byte("\n")))
	return t, nil
}

// scrub removes what the bootstrap leaves that is specific to the build
// machine or the build time: apt's lists and caches, logs, ld.so's aux
// cache.
func scrub(root string) error {
	var errs []error
	for _, pattern := range []string{
		"var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/cache/apt/archives/*.deb",
		"var/log/*.log", "var/log/apt/*", "var/cache/ldconfig/aux-cache", "var/cache/debconf/*-old",
		"var/lib/dpkg/*-old", "etc/*-",
	} {
		ms, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			return fmt.Errorf("userland: scrub %s: %w", pattern, err)
		}
		for _, m := range ms {
			if fi, err := os.Lstat(m); err == nil && !fi.IsDir() {
				errs = append(errs, os.Remove(m))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("userland: scrub %s: %w", root, err)
	}
	return nil
}

func tail(path string, n int64) string {
	b, _ := os.ReadFile(path)
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return strings.TrimSpace(string(b))
}

func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("userland: lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("userland: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// SlotImage packs t with files added (see Files) into out (which must
// not exist) as a zstd squashfs at level. The image does not depend on
// the slot it is written to. The last image packed from a tree is kept
// next to it and reused when the same files are added again.
func SlotImage(ctx context.Context, t Tree, files []rootfs.File, out string, level int) (Image, error) {
	start := time.Now()
	h, err := filesHash(files, level)
	if err != nil {
		return Image{}, err
	}
	dir := filepath.Dir(t.Root)
	unlock, err := lock(filepath.Join(dir, ".lock"))
	if err != nil {
		return Image{}, err
	}
	defer unlock()
	imgDir := filepath.Join(dir, "images")
	cached := filepath.Join(imgDir, h+".squashfs")
	im := Image{Path: out}
	if _, err := os.Stat(cached); err == nil {
		im.Cached = true
	} else {
		if err := packImage(ctx, t, files, imgDir, cached, level); err != nil {
			return Image{}, err
		}
	}
	if err := copyFile(cached, out); err != nil {
		return Image{}, err
	}
	fi, err := os.Stat(out)
	if err != nil {
		return Image{}, fmt.Errorf("userland: slot image: %w", err)
	}
	im.Size = fi.Size()
	if im.Size%4096 != 0 {
		return Image{}, fmt.Errorf("userland: slot image %s is %d bytes, not a multiple of 4 KiB", out, im.Size)
	}
	if im.SHA256, err = hashFile(out); err != nil {
		return Image{}, err
	}
	im.Took = time.Since(start)
	return im, nil
}

// packImage hard-links the tree into a staging directory, replaces the
// files there (never writing through a link into the tree) and packs it.
// Older images of the tree are removed.
func packImage(ctx context.Context, t Tree, files []rootfs.File, imgDir, dst string, level int) error {
	if err := os.RemoveAll(imgDir); err != nil {
		return fmt.Errorf("userland: slot image: %w", err)
	}
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		return fmt.Errorf("userland: slot image: %w", err)
	}
	stage := filepath.Join(imgDir, "stage")
	defer os.RemoveAll(stage)
	if out, err := exec.CommandContext(ctx, "cp", "-a", "--link", t.Root, stage).CombinedOutput(); err != nil {
		return fmt.Errorf("userland: stage %s: %w: %s", t.Root, err, strings.TrimSpace(string(out)))
	}
	for _, f := range files {
		if err := place(stage, f); err != nil {
			return err
		}
	}
	tmp := dst + ".tmp"
	argv := SquashfsCommand(stage, tmp, level)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// The times are on the command line; mksquashfs refuses
	// SOURCE_DATE_EPOCH as well.
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SOURCE_DATE_EPOCH=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("userland: %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("userland: slot image: %w", err)
	}
	return nil
}

// place writes f into the staging tree, unlinking what is there first.
func place(stage string, f rootfs.File) error {
	if !filepath.IsAbs(f.Path) || filepath.Clean(f.Path) != f.Path {
		return fmt.Errorf("userland: file %q: want a clean absolute path", f.Path)
	}
	dst := filepath.Join(stage, f.Path)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("userland: place %s: %w", f.Path, err)
	}
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("userland: place %s: %w", f.Path, err)
	}
	mode := f.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	data := f.Data
	if f.Source != "" {
		var err error
		if data, err = os.ReadFile(f.Source); err != nil {
			return fmt.Errorf("userland: place %s: %w", f.Path, err)
		}
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		return fmt.Errorf("userland: place %s: %w", f.Path, err)
	}
	return os.Chmod(dst, mode) // past the umask
}

// filesHash hashes the added files' paths, modes and contents and the
// compression level: with the tree's key, what an image is made of.
func filesHash(files []rootfs.File, level int) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "level %d\n", level)
	for _, f := range files {
		data := f.Data
		if f.Source != "" {
			var err error
			if data, err = os.ReadFile(f.Source); err != nil {
				return "", fmt.Errorf("userland: file %s: %w", f.Path, err)
			}
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(h, "%s %o %x\n", f.Path, f.Mode.Perm(), sum)
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("userland: copy: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("userland: copy: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("userland: copy to %s: %w", dst, cerr)
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("userland: copy to %s: %w", dst, err)
	}
	return nil
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("userland: hash: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("userland: hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// BuildImage makes the slot image at out: the (cached) tree, nasd, nasctl
// and the slot init built into binDir (static, from the ftnas module the
// current directory is in) and extra (e.g. UpdateKeyFiles), packed (or
// taken from the cache) at level.
func BuildImage(ctx context.Context, o Options, binDir, out string, level int, extra ...rootfs.File) (Tree, Image, error) {
	t, err := Bootstrap(ctx, o)
	if err != nil {
		return Tree{}, Image{}, err
	}
	var b Binaries
	for _, p := range []struct {
		pkg string
		dst *string
	}{{NasdPackage, &b.Nasd}, {NasctlPackage, &b.Nasctl}, {InitPackage, &b.Init}} {
		*p.dst = filepath.Join(binDir, "userland-"+filepath.Base(p.pkg))
		if err := initramfs.GoBuild(ctx, p.pkg, *p.dst, ""); err != nil {
			return t, Image{}, err
		}
	}
	files, err := Files(b, t.Manifest)
	if err != nil {
		return t, Image{}, err
	}
	im, err := SlotImage(ctx, t, append(files, extra...), out, level)
	return t, im, err
}
