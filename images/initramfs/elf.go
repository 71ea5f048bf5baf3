package initramfs

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
)

// Lib is a shared object a program needs: Path in the image, Source on the
// host.
type Lib struct {
	Path   string
	Source string
}

// libDirs is where the loader looks without an ld.so.cache, Debian's
// multiarch directories first.
func libDirs() []string {
	return []string{
		"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
		"/lib64", "/usr/lib64", "/lib", "/usr/lib",
	}
}

// SharedLibs returns the dynamic loader and every shared library an ELF
// program needs, directly or through other libraries, looked up under
// root ("" means /). A static program needs none.
func SharedLibs(program, root string) ([]Lib, error) {
	if root == "" {
		root = "/"
	}
	var out []Lib
	seen := map[string]bool{}
	interp, needed, err := elfDeps(program)
	if err != nil {
		return nil, fmt.Errorf("initramfs: shared libraries of %s: %w", program, err)
	}
	if interp != "" {
		src := filepath.Join(root, interp)
		if _, err := os.Stat(src); err != nil {
			return nil, fmt.Errorf("initramfs: shared libraries of %s: loader: %w", program, err)
		}
		out = append(out, Lib{Path: interp, Source: src})
		seen[path.Base(interp)] = true
	}
	queue := needed
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		lib, err := findLib(name, root)
		if err != nil {
			return nil, fmt.Errorf("initramfs: shared libraries of %s: %w", program, err)
		}
		out = append(out, lib)
		_, more, err := elfDeps(lib.Source)
		if err != nil {
			return nil, fmt.Errorf("initramfs: shared libraries of %s: %w", program, err)
		}
		queue = append(queue, more...)
	}
	return out, nil
}

func findLib(name, root string) (Lib, error) {
	for _, d := range libDirs() {
		src := filepath.Join(root, d, name)
		if _, err := os.Stat(src); err == nil {
			return Lib{Path: path.Join(d, name), Source: src}, nil
		}
	}
	return Lib{}, fmt.Errorf("library %s not found under %s in %v", name, root, libDirs())
}

// elfDeps reads an ELF file's PT_INTERP and DT_NEEDED entries.
func elfDeps(file string) (interp string, needed []string, err error) {
	f, err := elf.Open(file)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", nil, fmt.Errorf("%s: read PT_INTERP: %w", file, err)
		}
		if i := len(b); i > 0 && b[i-1] == 0 {
			b = b[:i-1]
		}
		interp = string(b)
	}
	needed, err = f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return "", nil, fmt.Errorf("%s: DT_NEEDED: %w", file, err)
	}
	return interp, needed, nil
}
