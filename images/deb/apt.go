package deb

import (
	"bufio"
	"fmt"
	"strings"
)

// Stanza is one package record as apt-cache show prints it: field name to
// value, continuation lines joined with "\n".
type Stanza map[string]string

// ParseStanza parses the first record of apt-cache show output.
func ParseStanza(text string) (Stanza, error) {
	st := Stanza{}
	last := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			if len(st) > 0 {
				break // end of the first record
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last == "" {
				return nil, fmt.Errorf("deb: parse stanza: continuation line %q before any field", line)
			}
			st[last] += "\n" + strings.TrimSpace(line)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("deb: parse stanza: bad field line %q", line)
		}
		last = k
		st[k] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("deb: parse stanza: %w", err)
	}
	if st["Package"] == "" {
		return nil, fmt.Errorf("deb: parse stanza: no Package field")
	}
	return st, nil
}

// Dependency is one alternative of a Depends entry.
type Dependency struct {
	Name     string
	Relation string // "=", ">=", "<<", ... or ""
	Version  string
}

// ParseDepends parses a Depends field: comma-separated entries, each a
// list of "|" alternatives, each "name (op version)" with an optional
// :arch qualifier (dropped).
func ParseDepends(field string) ([][]Dependency, error) {
	var out [][]Dependency
	if strings.TrimSpace(field) == "" {
		return nil, nil
	}
	for _, entry := range strings.Split(field, ",") {
		var alts []Dependency
		for _, alt := range strings.Split(entry, "|") {
			alt = strings.TrimSpace(alt)
			if alt == "" {
				return nil, fmt.Errorf("deb: parse depends %q: empty alternative", field)
			}
			var d Dependency
			name, rest, hasVer := strings.Cut(alt, "(")
			d.Name = strings.TrimSpace(name)
			if i := strings.IndexByte(d.Name, ':'); i >= 0 {
				d.Name = d.Name[:i]
			}
			if d.Name == "" || strings.ContainsAny(d.Name, " \t)") {
				return nil, fmt.Errorf("deb: parse depends %q: bad package name in %q", field, alt)
			}
			if hasVer {
				rel, ok := strings.CutSuffix(strings.TrimSpace(rest), ")")
				if !ok {
					return nil, fmt.Errorf("deb: parse depends %q: unclosed version in %q", field, alt)
				}
				f := strings.Fields(rel)
				if len(f) != 2 {
					return nil, fmt.Errorf("deb: parse depends %q: bad version constraint %q", field, rel)
				}
				d.Relation, d.Version = f[0], f[1]
			}
			alts = append(alts, d)
		}
		out = append(out, alts)
	}
	return out, nil
}

// DebFileName is the name apt-get download gives a package file: the
// epoch's colon is written %3a.
func DebFileName(pkg, version, arch string) string {
	return fmt.Sprintf("%s_%s_%s.deb", pkg, strings.ReplaceAll(version, ":", "%3a"), arch)
}
