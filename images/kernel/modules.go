package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Modinfo is what a module's .modinfo section says about its loading.
type Modinfo struct {
	Name    string
	Depends []string // hard dependencies: must load first
	SoftPre []string // soft pre-dependencies: load first when they exist
	Aliases []string // plain aliases (no wildcards), e.g. "crc32c"
}

// NormalizeName maps a module or file name to the kernel's module name:
// dashes become underscores and a .ko suffix is dropped.
func NormalizeName(s string) string {
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// ParseModinfo parses the contents of a .modinfo section: NUL-separated
// key=value strings.
func ParseModinfo(section []byte) (Modinfo, error) {
	var mi Modinfo
	for _, kv := range bytes.Split(section, []byte{0}) {
		if len(kv) == 0 {
			continue
		}
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue // not a key=value entry; depmod ignores these too
		}
		switch k {
		case "name":
			mi.Name = NormalizeName(v)
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					mi.Depends = append(mi.Depends, NormalizeName(d))
				}
			}
		case "alias":
			if !strings.ContainsAny(v, "*?[") {
				mi.Aliases = append(mi.Aliases, NormalizeName(v))
			}
		case "softdep":
			// "pre: a b post: c"
			mode := ""
			for _, f := range strings.Fields(v) {
				switch f {
				case "pre:", "post:":
					mode = f
				default:
					if mode == "pre:" {
						mi.SoftPre = append(mi.SoftPre, NormalizeName(f))
					}
				}
			}
		}
	}
	if mi.Name == "" {
		return Modinfo{}, errors.New("kernel: parse modinfo: no name= entry")
	}
	return mi, nil
}

// ErrBuiltin is returned by a lookup for a module compiled into the kernel.
var ErrBuiltin = errors.New("built into the kernel")

// ErrNoModule is returned by a lookup for a module the kernel doesn't have.
var ErrNoModule = errors.New("no such module")

// Order returns the module names to load for want, each after everything it
// depends on, each once. lookup returns a module's Modinfo, ErrBuiltin (the
// module is skipped) or ErrNoModule (an error for a wanted module or hard
// dependency; a soft dependency is skipped).
func Order(want []string, lookup func(name string) (Modinfo, error)) ([]string, error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var out []string
	var visit func(name string, soft bool, path []string) error
	visit = func(name string, soft bool, path []string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("kernel: module dependency cycle: %s -> %s", strings.Join(path, " -> "), name)
		}
		mi, err := lookup(name)
		switch {
		case errors.Is(err, ErrBuiltin):
			state[name] = done
			return nil
		case errors.Is(err, ErrNoModule) && soft:
			state[name] = done
			return nil
		case err != nil:
			if len(path) > 0 {
				return fmt.Errorf("kernel: module %s (needed by %s): %w", name, path[len(path)-1], err)
			}
			return fmt.Errorf("kernel: module %s: %w", name, err)
		}
		if canon := NormalizeName(mi.Name); canon != name {
			// An alias (see Kernel.Resolve): the module it names is
			// what is loaded, once.
			state[name] = done
			if state[canon] == done {
				return nil
			}
			name = canon
		}
		state[name] = visiting
		path = append(path, name)
		for _, d := range mi.SoftPre {
			if err := visit(d, true, path); err != nil {
				return err
			}
		}
		for _, d := range mi.Depends {
			if err := visit(d, false, path); err != nil {
				return err
			}
		}
		state[name] = done
		out = append(out, name)
		return nil
	}
	for _, w := range want {
		if err := visit(NormalizeName(w), false, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}
