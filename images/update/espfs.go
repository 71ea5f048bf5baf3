package update

import (
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"

	"ftnas/images/esp"
)

// ESP is an ESP's FAT file system opened for editing (go-diskfs, no
// mount): an image file or a partition device.
type ESP struct {
	fsys *fat32.FileSystem
}

// OpenESP reads the FAT32 file system of size bytes at offset in f,
// which must be open for reading and writing.
func OpenESP(f *os.File, offset, size int64) (*ESP, error) {
	fsys, err := fat32.Read(file.New(f, false), size, offset, 512)
	if err != nil {
		return nil, fmt.Errorf("update: read the ESP's FAT file system on %s: %w", f.Name(), err)
	}
	return &ESP{fsys: fsys}, nil
}

// EntryNames lists the loader entry directory's files, sorted.
func (e *ESP) EntryNames() ([]string, error) {
	ents, err := e.fsys.ReadDir(strings.TrimPrefix(esp.EntryDir, "/"))
	if err != nil {
		return nil, fmt.Errorf("update: ESP: list %s: %w", esp.EntryDir, err)
	}
	var out []string
	for _, d := range ents {
		if !d.IsDir() {
			out = append(out, d.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// Entries parses the loader entries.
func (e *ESP) Entries() (Entries, error) {
	names, err := e.EntryNames()
	if err != nil {
		return nil, err
	}
	return ParseEntries(names)
}

// Apply renames entries in order.
func (e *ESP) Apply(renames []Rename) error {
	for _, r := range renames {
		if err := e.fsys.Rename(path.Join(esp.EntryDir, r.From), path.Join(esp.EntryDir, r.To)); err != nil {
			return fmt.Errorf("update: ESP: rename %s to %s: %w", r.From, r.To, err)
		}
	}
	return nil
}

// ReadFile returns the file at p.
func (e *ESP) ReadFile(p string) ([]byte, error) {
	b, err := e.fsys.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("update: ESP: read %s: %w", p, err)
	}
	return b, nil
}

// WriteFile replaces (or creates) the file at p with size bytes from r,
// dated esp.Epoch like every file the image was built with.
func (e *ESP) WriteFile(p string, r io.Reader, size int64) error {
	// Remove an old file first: a shorter file would otherwise keep the
	// old clusters' tail. (go-diskfs's Stat error does not say whether
	// the file is missing; a file that cannot be looked at fails below.)
	if _, err := e.fsys.Stat(p); err == nil {
		if err := e.fsys.Remove(p); err != nil {
			return fmt.Errorf("update: ESP: replace %s: %w", p, err)
		}
	}
	w, err := e.fsys.OpenFile(p, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return fmt.Errorf("update: ESP: create %s: %w", p, err)
	}
	n, err := io.Copy(w, io.LimitReader(r, size))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("wrote %d of %d bytes", n, size)
	}
	if err != nil {
		return fmt.Errorf("update: ESP: write %s: %w", p, err)
	}
	if err := e.fsys.Chtimes(p, esp.Epoch(), esp.Epoch(), esp.Epoch()); err != nil {
		return fmt.Errorf("update: ESP: date %s: %w", p, err)
	}
	return nil
}

// FixLoaderConf sets loader.conf's default to esp.DefaultPattern when it
// says anything else; it reports whether it wrote.
func (e *ESP) FixLoaderConf() (bool, error) {
	b, err := e.ReadFile(esp.LoaderConfPath)
	if err != nil {
		return false, err
	}
	text, changed := LoaderConf(string(b))
	if !changed {
		return false, nil
	}
	return true, e.WriteFile(esp.LoaderConfPath, strings.NewReader(text), int64(len(text)))
}
