package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// skipped reports whether a tree entry is left out of the hash: the
// appliance's own files and the bench's markers.
func skipped(name string) bool {
	return strings.HasPrefix(name, ".ftnas-") || strings.HasPrefix(name, ".replbench-")
}

// fileKey identifies a version of a file well enough to reuse its content
// hash: ctime cannot be set back by a writer.
type fileKey struct {
	dev, ino   uint64
	size       int64
	mtime      int64
	ctime, cns int64
}

// hasher hashes trees, caching content hashes across calls.
type hasher struct {
	cache map[fileKey][32]byte
}

func newHasher() *hasher { return &hasher{cache: map[fileKey][32]byte{}} }

// tree returns the hex hash of root's tree and the number of entries in it.
func (h *hasher) tree(root string) (string, int, error) {
	sum := sha256.New()
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("tree hash of %s: %w", root, err)
		}
		if p != root && skipped(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("tree hash: %w", err)
		}
		var content string
		switch {
		case fi.Mode().IsRegular():
			c, err := h.file(p, fi)
			if err != nil {
				return err
			}
			content = hex.EncodeToString(c[:])
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("tree hash: %w", err)
			}
			content = t
		}
		size := fi.Size()
		if fi.IsDir() {
			size = 0 // directory sizes are the file system's business
		}
		fmt.Fprintf(sum, "%q %s %d %s\n", rel, fi.Mode().String(), size, content)
		n++
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(sum.Sum(nil)), n, nil
}

func (h *hasher) file(p string, fi fs.FileInfo) ([32]byte, error) {
	k, ok := statKey(fi)
	if ok {
		if c, ok := h.cache[k]; ok {
			return c, nil
		}
	}
	f, err := os.Open(p)
	if err != nil {
		return [32]byte{}, fmt.Errorf("tree hash: %w", err)
	}
	defer f.Close()
	s := sha256.New()
	if _, err := io.Copy(s, f); err != nil {
		return [32]byte{}, fmt.Errorf("tree hash: read %s: %w", p, err)
	}
	var c [32]byte
	copy(c[:], s.Sum(nil))
	if ok {
		h.cache[k] = c
	}
	return c, nil
}
