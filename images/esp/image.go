package esp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
)

const mib = int64(1) << 20

// MinImageSize is the smallest ESP WriteImage makes: below it FAT32 (with
// the 512-byte clusters go-diskfs picks for small volumes) has fewer than
// 65525 clusters, and firmware would read it as FAT16.
const MinImageSize = 34 * mib

// WriteImage creates the file name (which must not exist) of size bytes
// (a multiple of 1 MiB) holding a FAT32 filesystem with files. On error
// the file is removed.
func WriteImage(name string, size int64, files []File) (err error) {
	if size < MinImageSize || size%mib != 0 {
		return fmt.Errorf("esp: write image %s: size %d is not a multiple of 1 MiB of at least %d MiB", name, size, MinImageSize/mib)
	}
	var need int64
	for _, f := range files {
		n, err := fileSize(f)
		if err != nil {
			return fmt.Errorf("esp: write image %s: %w", name, err)
		}
		need += n
	}
	if need > size*9/10 {
		return fmt.Errorf("esp: write image %s: %d MiB of files do not fit a %d MiB ESP (keep 10%% for the FAT and directories)", name, need>>20, size>>20)
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("esp: write image: %w", err)
	}
	defer func() {
		err = errors.Join(err, f.Close())
		if err != nil {
			os.Remove(name)
			err = fmt.Errorf("esp: write image %s: %w", name, err)
		}
	}()
	if err := f.Truncate(size); err != nil {
		return err
	}
	fsys, err := fat32.Create(file.New(f, false), size, 0, 512, Label, true)
	if err != nil {
		return fmt.Errorf("format FAT32: %w", err)
	}
	// Directories first, parents before children.
	dirs := map[string]bool{}
	for _, fl := range files {
		for d := path.Dir(fl.Path); d != "/" && d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	sort.Strings(sorted)
	for _, d := range sorted {
		if err := fsys.Mkdir(d); err != nil {
			return fmt.Errorf("mkdir %s: %w", d, err)
		}
		if err := fsys.Chtimes(d, Epoch(), Epoch(), Epoch()); err != nil {
			return fmt.Errorf("date %s: %w", d, err)
		}
	}
	for _, fl := range files {
		if err := writeFile(fsys, fl); err != nil {
			return err
		}
	}
	return nil
}

func fileSize(f File) (int64, error) {
	if f.Path == "" || f.Path[0] != '/' || path.Clean(f.Path) != f.Path {
		return 0, fmt.Errorf("file %q: want a clean absolute path", f.Path)
	}
	if f.Source == "" {
		return int64(len(f.Data)), nil
	}
	if f.Data != nil {
		return 0, fmt.Errorf("file %s: both Source and Data", f.Path)
	}
	fi, err := os.Stat(f.Source)
	if err != nil {
		return 0, fmt.Errorf("file %s: %w", f.Path, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("file %s: source %s is not a regular file", f.Path, f.Source)
	}
	return fi.Size(), nil
}

func writeFile(fsys *fat32.FileSystem, fl File) error {
	var r io.Reader
	if fl.Source != "" {
		src, err := os.Open(fl.Source)
		if err != nil {
			return fmt.Errorf("file %s: %w", fl.Path, err)
		}
		defer src.Close()
		r = src
	} else {
		r = bytes.NewReader(fl.Data)
	}
	w, err := fsys.OpenFile(fl.Path, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("create %s: %w", fl.Path, err)
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return fmt.Errorf("write %s: %w", fl.Path, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", fl.Path, err)
	}
	if err := fsys.Chtimes(fl.Path, Epoch(), Epoch(), Epoch()); err != nil {
		return fmt.Errorf("date %s: %w", fl.Path, err)
	}
	return nil
}
