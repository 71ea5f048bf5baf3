package changelog

import (
	"path"
	"strings"
)

// maxDepth bounds a walk up the tree, guarding against a loop.
const maxDepth = 4096

// dirTree maps directory file handles to where the directory is, as the
// event stream says: each directory is (parent handle, name), and one anchor
// (the volume root) has an absolute path. Replaying create, delete and
// rename of directories in event order keeps every path as it was when the
// event being read happened — unlike asking the kernel (open_by_handle_at),
// which answers with where the directory is now, after events still queued.
// A rename is one update, however large the subtree.
type dirTree struct {
	nodes map[string]dirNode
}

type dirNode struct {
	parent string // parent's handle key; "" for the anchor
	name   string // entry name in parent; the absolute path for the anchor
}

func newDirTree() *dirTree { return &dirTree{nodes: map[string]dirNode{}} }

// anchor sets the directory with handle key k at absolute path p.
func (t *dirTree) anchor(k, p string) { t.nodes[k] = dirNode{name: path.Clean(p)} }

// set records that directory k is entry name of directory parent.
func (t *dirTree) set(k, parent, name string) {
	if n, ok := t.nodes[k]; ok && n.parent == "" {
		return // the anchor does not move
	}
	t.nodes[k] = dirNode{parent: parent, name: name}
}

// remove forgets directory k. A directory can only be removed empty, so
// nothing is left pointing at it.
func (t *dirTree) remove(k string) {
	if n, ok := t.nodes[k]; ok && n.parent != "" {
		delete(t.nodes, k)
	}
}

// path returns the absolute path of directory k, with ok false if k or an
// ancestor is unknown.
func (t *dirTree) path(k string) (string, bool) {
	var names []string
	for range maxDepth {
		n, ok := t.nodes[k]
		if !ok {
			return "", false
		}
		if n.parent == "" {
			if len(names) == 0 {
				return n.name, true
			}
			var b strings.Builder
			b.WriteString(n.name)
			for i := len(names) - 1; i >= 0; i-- {
				if !strings.HasSuffix(b.String(), "/") {
					b.WriteByte('/')
				}
				b.WriteString(names[i])
			}
			return b.String(), true
		}
		names = append(names, n.name)
		k = n.parent
	}
	return "", false
}

// reset forgets everything but the anchor.
func (t *dirTree) reset() {
	for k, n := range t.nodes {
		if n.parent != "" {
			delete(t.nodes, k)
		}
	}
}

// len is the number of known directories.
func (t *dirTree) len() int { return len(t.nodes) }
