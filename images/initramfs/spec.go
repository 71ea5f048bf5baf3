package initramfs

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cavaliergopher/cpio"

	"ftnas/images/guest"
)

// Spec says what goes into an initramfs.
type Spec struct {
	// Init is the host path of a static executable installed as /init.
	Init string
	// Modules are host paths of kernel modules in load order. They are
	// installed in /lib/modules and listed, in order, in
	// /etc/ftnas/modules for /init.
	Modules []string
	// Programs are executables installed with the shared libraries and
	// dynamic loader they need.
	Programs []Program
	// Files are installed as they are.
	Files []File
	// Run, when set, is written to /etc/ftnas/run: the command /init runs
	// when the kernel command line has no ftnas.run=.
	Run string
	// LibRoot is the directory tree shared libraries are looked up in
	// ("" means /).
	LibRoot string
}

// Program is an executable to install at Path, read from Source.
type Program struct {
	Source string
	Path   string
}

// File is one file or symlink in the image.
type File struct {
	Path string // absolute path in the image
	// Exactly one of Source (a host file), Data or Link (a symlink
	// target) is used; Data may be empty.
	Source string
	Data   []byte
	Link   string
	Mode   fs.FileMode // permission bits; 0 means 0644 (0755 for Programs)
}

// entry is a resolved archive member.
type entry struct {
	path   string // without the leading slash
	mode   cpio.FileMode
	source string
	data   []byte
	link   string
}

// plan turns a spec (with its programs' libraries already resolved) into
// sorted archive entries, adding parent directories and rejecting two
// different contents at one path.
func plan(spec Spec, libs map[string][]Lib) ([]entry, error) {
	byPath := map[string]entry{}
	add := func(e entry) error {
		p := path.Clean("/" + e.path)
		if p == "/" {
			return fmt.Errorf("initramfs: bad path %q", e.path)
		}
		e.path = strings.TrimPrefix(p, "/")
		if old, ok := byPath[e.path]; ok {
			if old.source == e.source && old.link == e.link && bytes.Equal(old.data, e.data) && old.mode == e.mode {
				return nil
			}
			return fmt.Errorf("initramfs: two different files for /%s", e.path)
		}
		byPath[e.path] = e
		return nil
	}
	if spec.Init == "" {
		return nil, fmt.Errorf("initramfs: spec has no Init")
	}
	if err := add(entry{path: "init", mode: cpio.TypeReg | 0o755, source: spec.Init}); err != nil {
		return nil, err
	}
	var list strings.Builder
	for _, m := range spec.Modules {
		base := filepath.Base(m)
		if !strings.HasSuffix(base, ".ko") {
			return nil, fmt.Errorf("initramfs: module %s: not a .ko file", m)
		}
		p := "/lib/modules/" + base
		if err := add(entry{path: p, mode: cpio.TypeReg | 0o644, source: m}); err != nil {
			return nil, err
		}
		list.WriteString(p + "\n")
	}
	if len(spec.Modules) > 0 {
		if err := add(entry{path: guest.ModulesList, mode: cpio.TypeReg | 0o644, data: []byte(list.String())}); err != nil {
			return nil, err
		}
	}
	if spec.Run != "" {
		if err := add(entry{path: guest.RunFile, mode: cpio.TypeReg | 0o644, data: []byte(spec.Run + "\n")}); err != nil {
			return nil, err
		}
	}
	for _, p := range spec.Programs {
		if p.Path == "" || p.Source == "" {
			return nil, fmt.Errorf("initramfs: program %+v needs Source and Path", p)
		}
		if err := add(entry{path: p.Path, mode: cpio.TypeReg | 0o755, source: p.Source}); err != nil {
			return nil, err
		}
		for _, l := range libs[p.Source] {
			if err := add(entry{path: l.Path, mode: cpio.TypeReg | 0o755, source: l.Source}); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range spec.Files {
		perm := cpio.FileMode(f.Mode.Perm())
		if perm == 0 {
			perm = 0o644
		}
		e := entry{path: f.Path, source: f.Source, data: f.Data, link: f.Link}
		switch {
		case f.Link != "":
			if f.Source != "" || f.Data != nil {
				return nil, fmt.Errorf("initramfs: file %s: a symlink has no Source or Data", f.Path)
			}
			e.mode = cpio.TypeSymlink | 0o777
		case f.Source != "" && f.Data != nil:
			return nil, fmt.Errorf("initramfs: file %s: both Source and Data", f.Path)
		default:
			e.mode = cpio.TypeReg | perm
		}
		if err := add(e); err != nil {
			return nil, err
		}
	}
	// Parent directories.
	for p := range byPath {
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			if old, ok := byPath[d]; ok {
				if !old.mode.IsDir() {
					return nil, fmt.Errorf("initramfs: /%s is both a file and a directory", d)
				}
				continue
			}
			byPath[d] = entry{path: d, mode: cpio.TypeDir | 0o755}
		}
	}
	out := make([]entry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	// Sorting by path puts every directory before its children.
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, nil
}

// Build resolves the spec's programs' libraries and writes the archive.
func Build(w io.Writer, spec Spec) error {
	libs := map[string][]Lib{}
	for _, p := range spec.Programs {
		if p.Path == "" || p.Source == "" {
			return fmt.Errorf("initramfs: program %+v needs Source and Path", p)
		}
		l, err := SharedLibs(p.Source, spec.LibRoot)
		if err != nil {
			return err
		}
		libs[p.Source] = l
	}
	entries, err := plan(spec, libs)
	if err != nil {
		return err
	}
	cw := cpio.NewWriter(w)
	for i, e := range entries {
		if err := writeEntry(cw, e, int64(i+1)); err != nil {
			return fmt.Errorf("initramfs: add /%s: %w", e.path, err)
		}
	}
	if err := cw.Close(); err != nil {
		return fmt.Errorf("initramfs: close archive: %w", err)
	}
	return nil
}

func writeEntry(cw *cpio.Writer, e entry, inode int64) error {
	hdr := &cpio.Header{Name: e.path, Mode: e.mode, Links: 1, Inode: inode}
	var body io.Reader
	switch {
	case e.mode.IsDir():
		hdr.Links = 2
	case e.link != "":
		hdr.Size = int64(len(e.link))
		body = strings.NewReader(e.link)
	case e.source != "":
		f, err := os.Open(e.source)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", e.source)
		}
		hdr.Size = fi.Size()
		body = f
	default:
		hdr.Size = int64(len(e.data))
		body = bytes.NewReader(e.data)
	}
	if err := cw.WriteHeader(hdr); err != nil {
		return err
	}
	if body == nil {
		return nil
	}
	n, err := io.Copy(cw, body)
	if err != nil {
		return err
	}
	if n != hdr.Size {
		return fmt.Errorf("wrote %d of %d bytes (file changed?)", n, hdr.Size)
	}
	return nil
}

// WriteFile builds the archive into a file.
func WriteFile(name string, spec Spec) error {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("initramfs: create %s: %w", name, err)
	}
	if err := Build(f, spec); err != nil {
		f.Close()
		os.Remove(name)
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("initramfs: write %s: %w", name, err)
	}
	return nil
}
