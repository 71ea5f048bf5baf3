package guest

import (
	"fmt"
	"strings"
)

// Param is one kernel command-line parameter.
type Param struct {
	Key   string
	Value string
	// HasValue tells "key=" (empty value) from a bare "key".
	HasValue bool
}

// ParseCmdline splits a kernel command line the way the kernel does:
// parameters are separated by whitespace, and double quotes protect
// whitespace ("ftnas.run=\"/bin/t -v\"" or "\"ftnas.run=/bin/t -v\"").
// The quotes are dropped.
func ParseCmdline(s string) ([]Param, error) {
	var out []Param
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return out, nil
		}
		var b strings.Builder
		inQuote := false
		start := i
		for ; i < len(s); i++ {
			c := s[i]
			if c == '"' {
				inQuote = !inQuote
				continue
			}
			if !inQuote && isSpace(c) {
				break
			}
			b.WriteByte(c)
		}
		if inQuote {
			return nil, fmt.Errorf("guest: parse cmdline: unterminated quote in %q", s[start:])
		}
		k, v, has := strings.Cut(b.String(), "=")
		out = append(out, Param{Key: k, Value: v, HasValue: has})
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' }

// Lookup returns the value of the last parameter named key.
func Lookup(params []Param, key string) (string, bool) {
	v, ok := "", false
	for _, p := range params {
		if p.Key == key {
			v, ok = p.Value, true
		}
	}
	return v, ok
}

// Quote makes a kernel command-line parameter key=value whose value may
// contain spaces. Values with double quotes cannot be expressed.
func Quote(key, value string) (string, error) {
	if strings.ContainsRune(value, '"') {
		return "", fmt.Errorf("guest: quote %s: value %q contains a double quote", key, value)
	}
	if strings.ContainsAny(value, " \t\n") {
		return key + `="` + value + `"`, nil
	}
	return key + "=" + value, nil
}
