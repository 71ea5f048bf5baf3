package rootfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
)

// Paths in the root image.
const (
	InitPath = "/sbin/init"
	// SlotFile holds the slot's name ("a\n"), so the userland can check
	// that it runs from the slot the boot entry asked for.
	SlotFile = "/etc/ftnas/slot"
)

// MountPoints are the empty directories the initramfs moves its mounts
// onto (a read-only root cannot create them).
func MountPoints() []string {
	return []string{"/dev", "/proc", "/sys", "/run", "/tmp", "/mnt"}
}

// Epoch is the date of every entry in the image.
func Epoch() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }

// Spec is one root slot's image.
type Spec struct {
	// Slot is the slot's name, written to SlotFile.
	Slot string
	// Init is the host path of a static executable installed as
	// /sbin/init.
	Init string
	// Files are further files.
	Files []File
}

// File is one regular file: a host file (Source) or Data.
type File struct {
	Path   string
	Source string
	Data   []byte
	Mode   os.FileMode // permission bits; 0 means 0644
}

// Entry is one directory or file of a laid-out image.
type Entry struct {
	File
	Dir bool
}

// Layout lists the image's entries, parents before children, sorted.
func Layout(spec Spec) ([]Entry, error) {
	if spec.Slot == "" || strings.ContainsAny(spec.Slot, "/ \n") {
		return nil, fmt.Errorf("rootfs: bad slot name %q", spec.Slot)
	}
	if spec.Init == "" {
		return nil, errors.New("rootfs: spec has no Init")
	}
	files := append([]File{
		{Path: InitPath, Source: spec.Init, Mode: 0o755},
		{Path: SlotFile, Data: []byte(spec.Slot + "\n")},
	}, spec.Files...)
	byPath := map[string]Entry{}
	for _, d := range MountPoints() {
		byPath[d] = Entry{File: File{Path: d, Mode: 0o755}, Dir: true}
	}
	for _, f := range files {
		if f.Path == "" || f.Path[0] != '/' || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return nil, fmt.Errorf("rootfs: file %q: want a clean absolute path", f.Path)
		}
		if f.Source != "" && f.Data != nil {
			return nil, fmt.Errorf("rootfs: file %s: both Source and Data", f.Path)
		}
		if _, ok := byPath[f.Path]; ok {
			return nil, fmt.Errorf("rootfs: %s listed twice", f.Path)
		}
		if f.Mode == 0 {
			f.Mode = 0o644
		}
		byPath[f.Path] = Entry{File: f}
	}
	for p := range byPath {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if e, ok := byPath[d]; ok {
				if !e.Dir {
					return nil, fmt.Errorf("rootfs: %s is both a file and a directory", d)
				}
				continue
			}
			byPath[d] = Entry{File: File{Path: d, Mode: 0o755}, Dir: true}
		}
	}
	out := make([]Entry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// squashfs superblock fields (little-endian).
const (
	sbMkfsTime  = 8
	sbBytesUsed = 40
)

// WriteSquashfs writes spec's image to name (which must not exist), at
// most maxSize bytes, and returns its size (a multiple of 4 KiB).
func WriteSquashfs(name string, maxSize int64, spec Spec) (size int64, err error) {
	entries, err := Layout(spec)
	if err != nil {
		return 0, err
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return 0, fmt.Errorf("rootfs: write squashfs: %w", err)
	}
	defer func() {
		err = errors.Join(err, f.Close())
		if err != nil {
			os.Remove(name)
			err = fmt.Errorf("rootfs: write squashfs %s: %w", name, err)
		}
	}()
	sq, err := squashfs.Create(file.New(f, false), maxSize, 0, 0)
	if err != nil {
		return 0, err
	}
	ws := sq.Workspace()
	defer os.RemoveAll(ws)
	for _, e := range entries {
		if err := populate(ws, e); err != nil {
			return 0, err
		}
	}
	// Date entries deepest first, so creating a child does not re-date
	// its parent.
	for i := len(entries) - 1; i >= 0; i-- {
		if err := os.Chtimes(workspacePath(ws, entries[i].Path), Epoch(), Epoch()); err != nil {
			return 0, err
		}
	}
	if err := os.Chtimes(ws, Epoch(), Epoch()); err != nil {
		return 0, err
	}
	root := uint32(0)
	if err := sq.Finalize(squashfs.FinalizeOptions{Compression: &squashfs.CompressorGzip{CompressionLevel: 9, WindowSize: 15, Strategies: map[squashfs.GzipStrategy]bool{squashfs.GzipDefault: true}}, FileUID: &root, FileGID: &root}); err != nil {
		return 0, fmt.Errorf("finalize: %w", err)
	}
	var sb [96]byte
	if _, err := f.ReadAt(sb[:], 0); err != nil {
		return 0, fmt.Errorf("read superblock: %w", err)
	}
	if string(sb[:4]) != "hsqs" {
		return 0, fmt.Errorf("no squashfs magic in what go-diskfs wrote: %q", sb[:4])
	}
	used := int64(binary.LittleEndian.Uint64(sb[sbBytesUsed:]))
	size = (used + 4095) / 4096 * 4096
	if size > maxSize {
		return 0, fmt.Errorf("%d bytes do not fit in %d", size, maxSize)
	}
	binary.LittleEndian.PutUint32(sb[sbMkfsTime:], uint32(Epoch().Unix()))
	if _, err := f.WriteAt(sb[sbMkfsTime:sbMkfsTime+4], sbMkfsTime); err != nil {
		return 0, fmt.Errorf("date superblock: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		return 0, err
	}
	return size, nil
}

func workspacePath(ws, p string) string { return filepath.Join(ws, filepath.FromSlash(p)) }

func populate(ws string, e Entry) error {
	dst := workspacePath(ws, e.Path)
	if e.Dir {
		if err := os.Mkdir(dst, e.Mode.Perm()); err != nil {
			return fmt.Errorf("mkdir %s: %w", e.Path, err)
		}
		return os.Chmod(dst, e.Mode.Perm()) // past the umask
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, e.Mode.Perm())
	if err != nil {
		return fmt.Errorf("create %s: %w", e.Path, err)
	}
	if e.Source != "" {
		in, err := os.Open(e.Source)
		if err != nil {
			out.Close()
			return fmt.Errorf("file %s: %w", e.Path, err)
		}
		_, err = io.Copy(out, in)
		in.Close()
		if err != nil {
			out.Close()
			return fmt.Errorf("file %s: %w", e.Path, err)
		}
	} else if _, err := out.Write(e.Data); err != nil {
		out.Close()
		return fmt.Errorf("file %s: %w", e.Path, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("file %s: %w", e.Path, err)
	}
	return os.Chmod(dst, e.Mode.Perm())
}
