package main

import (
	"fmt"
	"regexp"
	"strings"
)

// member is a node whose network namespace the watcher looks into.
type member struct {
	Name  string // as in the report: n1, n2
	NetNS string // `ip netns` name
}

var memberName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// parseMembers parses NAME=NETNS arguments.
func parseMembers(args []string) ([]member, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("want at least one MEMBER=NETNS")
	}
	seen := map[string]bool{}
	var ms []member
	for _, a := range args {
		name, ns, ok := strings.Cut(a, "=")
		if !ok || !memberName.MatchString(name) || ns == "" || strings.ContainsAny(ns, "/ ") {
			return nil, fmt.Errorf("member %q: want NAME=NETNS (NAME of a-z, 0-9, _ and -; NETNS an `ip netns` name)", a)
		}
		if seen[name] {
			return nil, fmt.Errorf("member %q given twice", name)
		}
		seen[name] = true
		ms = append(ms, member{name, ns})
	}
	return ms, nil
}
