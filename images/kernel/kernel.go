package kernel

import (
	"bufio"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"ftnas/images/deb"
)

// MetaPackage is the Debian meta-package whose dependency names the
// current cloud kernel: small, and it has md, raid1/456/10, bonding,
// dm-flakey and virtio as modules.
const MetaPackage = "linux-image-cloud-amd64"

// Kernel is an unpacked kernel package.
type Kernel struct {
	// Release is the kernel's uname -r, e.g. 6.1.0-56-cloud-amd64.
	Release string
	Package deb.Package
	// Vmlinuz is the path of the kernel image.
	Vmlinuz string
	// ModulesDir is lib/modules/<release> in the unpacked tree.
	ModulesDir string
}

// Module is a loadable module file.
type Module struct {
	Name string
	Path string // absolute path of the .ko on the host
}

// Fetch makes sure the kernel meta names (MetaPackage when "") is
// downloaded and unpacked in the cache. With opts.Offline it only looks in
// the cache.
func Fetch(ctx context.Context, meta string, opts deb.Options) (Kernel, error) {
	if meta == "" {
		meta = MetaPackage
	}
	var p deb.Package
	var err error
	if opts.Offline {
		flavour, ok := strings.CutPrefix(meta, "linux-image-")
		if !ok {
			return Kernel{}, fmt.Errorf("kernel: fetch %s offline: not a linux-image-FLAVOUR meta-package", meta)
		}
		cache := opts.CacheDir
		if cache == "" {
			cache = deb.DefaultCacheDir()
		}
		p, err = deb.FindCached(cache, "linux-image-*-"+flavour)
	} else {
		p, err = fetchOnline(ctx, meta, opts)
	}
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel: fetch %s: %w", meta, err)
	}
	k, err := Open(p.Root)
	if err != nil {
		return Kernel{}, err
	}
	k.Package = p
	return k, nil
}

func fetchOnline(ctx context.Context, meta string, opts deb.Options) (deb.Package, error) {
	st, err := deb.Show(ctx, meta)
	if err != nil {
		return deb.Package{}, err
	}
	deps, err := deb.ParseDepends(st["Depends"])
	if err != nil {
		return deb.Package{}, err
	}
	name := ""
	for _, alts := range deps {
		if n := alts[0].Name; strings.HasPrefix(n, "linux-image-") {
			name = n
			break
		}
	}
	if name == "" {
		return deb.Package{}, fmt.Errorf("%s depends on no linux-image package (Depends: %q)", meta, st["Depends"])
	}
	return deb.Fetch(ctx, name, opts)
}

// Open finds the kernel in an unpacked kernel package tree.
func Open(root string) (Kernel, error) {
	vmlinuz, err := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if err != nil || len(vmlinuz) != 1 {
		return Kernel{}, fmt.Errorf("kernel: open %s: want one boot/vmlinuz-*, found %d (%v)", root, len(vmlinuz), err)
	}
	release := strings.TrimPrefix(filepath.Base(vmlinuz[0]), "vmlinuz-")
	mods := filepath.Join(root, "lib", "modules", release)
	if _, err := os.Stat(mods); err != nil {
		return Kernel{}, fmt.Errorf("kernel: open %s: %w", root, err)
	}
	return Kernel{Release: release, Vmlinuz: vmlinuz[0], ModulesDir: mods, Package: deb.Package{Root: root}}, nil
}

// Resolve returns the module files needed to load names (module or file
// names, "-" or "_"), dependencies first. Built-in modules are left out.
func (k Kernel) Resolve(names ...string) ([]Module, error) {
	paths := map[string]string{}
	err := filepath.WalkDir(filepath.Join(k.ModulesDir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			paths[NormalizeName(filepath.Base(p))] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kernel: resolve modules: %w", err)
	}
	builtin, err := readBuiltin(filepath.Join(k.ModulesDir, "modules.builtin"))
	if err != nil {
		return nil, fmt.Errorf("kernel: resolve modules: %w", err)
	}
	// Aliases come from modules.alias when the package has it (depmod
	// writes it at install time, so a Debian package usually does not),
	// else from every module's own modinfo, read on the first miss.
	aliases, err := readAliases(filepath.Join(k.ModulesDir, "modules.alias"))
	if err != nil {
		return nil, fmt.Errorf("kernel: resolve modules: %w", err)
	}
	scanned := len(aliases) > 0
	lookup := func(name string) (Modinfo, error) {
		if _, ok := paths[name]; !ok && !builtin[name] && !scanned {
			scanned = true
			// Built-in modules' aliases (sha256: sha256_generic, built
			// in, before sha256_ssse3, a module needing SSSE3).
			if err := readBuiltinAliases(filepath.Join(k.ModulesDir, "modules.builtin.modinfo"), aliases); err != nil {
				return Modinfo{}, err
			}
			for mod, p := range paths {
				mi, err := ReadModinfo(p)
				if err != nil {
					return Modinfo{}, err
				}
				for _, a := range mi.Aliases {
					aliases[a] = append(aliases[a], mod)
				}
			}
			for _, mods := range aliases {
				slices.Sort(mods) // map order: make the pick repeatable
			}
		}
		p, ok := paths[name]
		if !ok {
			if builtin[name] {
				return Modinfo{}, ErrBuiltin
			}
			// A soft dependency may name an alias, not a module
			// (libcrc32c's "crc32c": crc32c_generic in a kernel that
			// does not build it in), as modprobe resolves it.
			if m := pickAlias(aliases[name], paths, builtin); m != "" {
				if builtin[m] {
					return Modinfo{}, ErrBuiltin
				}
				return ReadModinfo(paths[m])
			}
			return Modinfo{}, ErrNoModule
		}
		return ReadModinfo(p)
	}
	order, err := Order(names, lookup)
	if err != nil {
		return nil, err
	}
	out := make([]Module, len(order))
	for i, n := range order {
		out[i] = Module{Name: n, Path: paths[n]}
	}
	return out, nil
}

// ReadModinfo reads the .modinfo section of a module file.
func ReadModinfo(path string) (Modinfo, error) {
	f, err := elf.Open(path)
	if err != nil {
		return Modinfo{}, fmt.Errorf("kernel: read modinfo %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return Modinfo{}, fmt.Errorf("kernel: read modinfo %s: no .modinfo section", path)
	}
	b, err := sec.Data()
	if err != nil {
		return Modinfo{}, fmt.Errorf("kernel: read modinfo %s: %w", path, err)
	}
	mi, err := ParseModinfo(b)
	if err != nil {
		return Modinfo{}, fmt.Errorf("kernel: read modinfo %s: %w", path, err)
	}
	return mi, nil
}

func readBuiltin(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out[NormalizeName(filepath.Base(l))] = true
		}
	}
	return out, sc.Err()
}

// readAliases reads modules.alias: alias name -> module names, for the
// plain aliases (no wildcards: device aliases are not asked for by name).
// A missing file means no aliases.
func readAliases(path string) (map[string][]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string][]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseAliases(f)
}

// readBuiltinAliases adds the plain aliases of built-in modules from
// modules.builtin.modinfo ("module.alias=name" entries, NUL-separated),
// which the kernel build writes. A missing file adds nothing.
func readBuiltinAliases(path string, into map[string][]string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range strings.Split(string(b), "\x00") {
		mod, kv, ok := strings.Cut(e, ".")
		if !ok {
			continue
		}
		if v, ok := strings.CutPrefix(kv, "alias="); ok && !strings.ContainsAny(v, "*?[") {
			name := NormalizeName(v)
			into[name] = append(into[name], NormalizeName(mod))
		}
	}
	return nil
}

// parseAliases parses modules.alias lines ("alias NAME MODULE").
func parseAliases(r io.Reader) (map[string][]string, error) {
	out := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "alias" || strings.ContainsAny(f[1], "*?[") {
			continue
		}
		name := NormalizeName(f[1])
		out[name] = append(out[name], NormalizeName(f[2]))
	}
	return out, sc.Err()
}

// pickAlias chooses the module an alias loads: one built in if any (nothing
// to load), else a generic implementation (it works on every CPU), else
// the first the kernel has.
func pickAlias(mods []string, paths map[string]string, builtin map[string]bool) string {
	for _, m := range mods {
		if builtin[m] {
			return m
		}
	}
	for _, m := range mods {
		if _, ok := paths[m]; ok && strings.HasSuffix(m, "_generic") {
			return m
		}
	}
	for _, m := range mods {
		if _, ok := paths[m]; ok {
			return m
		}
	}
	return ""
}

// Names returns the module names of mods, in order.
func Names(mods []Module) []string {
	out := make([]string, len(mods))
	for i, m := range mods {
		out[i] = m.Name
	}
	return out
}

// VirtioModules are the drivers for qemu's virtio-pci disks and NICs.
func VirtioModules() []string { return []string{"virtio_pci", "virtio_blk", "virtio_net"} }

// MDModules are Linux software RAID: md and its RAID1/10/4/5/6 personalities.
func MDModules() []string { return []string{"md_mod", "raid1", "raid10", "raid456"} }

// DMModules are device-mapper and dm-flakey (fault injection in tests).
func DMModules() []string { return []string{"dm_mod", "dm_flakey"} }
