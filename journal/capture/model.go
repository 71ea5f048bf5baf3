package capture

import (
	"path"
	"sort"
	"strings"

	"ftnas/appliance/fileid"
	"ftnas/journal"
)

// node is one file as the standby has it.
type node struct {
	st     fileid.Stamp
	fid    string
	mode   uint32           // st_mode as last seen on the master (type bits are what matter)
	links  []link           // its names; a directory has one (the volume root none)
	kids   map[string]*node // a directory's entries
	ctime  int64            // the master's ctime when its state was last shipped in full; 0: never
	parked bool             // moved out of the way into the volume root
	walked uint64           // the rescan generation that last visited it
}

// link is one name of a node.
type link struct {
	dir  *node
	name string
}

func (n *node) isDir() bool { return n.mode&journal.ModeType == journal.ModeDir }

func (n *node) isReg() bool { return n.mode&journal.ModeType == journal.ModeReg }

// parent is the directory of n's first name (nil for the volume root).
func (n *node) parent() *node {
	if len(n.links) == 0 {
		return nil
	}
	return n.links[0].dir
}

func (n *node) ref() DirRef { return DirRef{FID: n.fid, Stamp: n.st} }

// model is the standby's namespace, as the emitted records make it.
type model struct {
	root  *node
	byID  map[uint64]*node
	byFID map[string]*node
}

func newModel(root *node) *model {
	root.kids = map[string]*node{}
	m := &model{root: root, byID: map[uint64]*node{}, byFID: map[string]*node{}}
	m.byID[root.st.ID] = root
	m.byFID[root.fid] = root
	return m
}

// add registers a new node (without names yet).
func (m *model) add(n *node) {
	if n.isDir() && n.kids == nil {
		n.kids = map[string]*node{}
	}
	m.byID[n.st.ID] = n
	m.byFID[n.fid] = n
}

// link gives n the name name in dir.
func (m *model) link(n, dir *node, name string) {
	dir.kids[name] = n
	n.links = append(n.links, link{dir, name})
}

// unlink takes the name name in dir from n; a node without names is
// forgotten.
func (m *model) unlink(n, dir *node, name string) {
	if dir.kids[name] == n {
		delete(dir.kids, name)
	}
	for i, l := range n.links {
		if l.dir == dir && l.name == name {
			n.links = append(n.links[:i], n.links[i+1:]...)
			break
		}
	}
	if len(n.links) == 0 && n != m.root {
		m.forget(n)
	}
}

func (m *model) forget(n *node) {
	if m.byID[n.st.ID] == n {
		delete(m.byID, n.st.ID)
	}
	if m.byFID[n.fid] == n {
		delete(m.byFID, n.fid)
	}
}

// lookup follows rel (slash-separated, relative to dir; "." or "" is dir).
func (m *model) lookup(dir *node, rel string) *node {
	if rel == "" || rel == "." {
		return dir
	}
	n := dir
	for _, c := range strings.Split(path.Clean(rel), "/") {
		if n == nil || !n.isDir() {
			return nil
		}
		n = n.kids[c]
	}
	return n
}

// within reports whether d is n or below it.
func (m *model) within(d, n *node) bool {
	for i := 0; d != nil && i < maxDepth; i++ {
		if d == n {
			return true
		}
		d = d.parent()
	}
	return false
}

// childOnPath returns the child of n on the way down to d (d below n).
func (m *model) childOnPath(d, n *node) *node {
	for i := 0; d != nil && i < maxDepth; i++ {
		p := d.parent()
		if p == n {
			return d
		}
		d = p
	}
	return nil
}

// pathOf is n's volume-relative path by its first names ("." for the root).
func (m *model) pathOf(n *node) string {
	var parts []string
	for i := 0; n != nil && n != m.root && i < maxDepth; i++ {
		if len(n.links) == 0 {
			return ""
		}
		parts = append(parts, n.links[0].name)
		n = n.links[0].dir
	}
	if len(parts) == 0 {
		return "."
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, "/")
}

// sortedKids returns dir's entry names in order (deterministic records).
func sortedKids(dir *node) []string {
	names := make([]string, 0, len(dir.kids))
	for k := range dir.kids {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// maxDepth bounds walks up the model, guarding against a loop.
const maxDepth = 4096
