package fileid

import "sync"

// maxGone bounds the stamps a goneSet remembers; the oldest are forgotten
// first (a forgotten one costs a scan if it is ever asked for again).
const maxGone = 1 << 16

// goneSet remembers the stamps whose last name nasd saw removed (Tree.Removed),
// so that resolving one answers ErrStale at once instead of scanning the
// whole volume for a file that is not there. That is common: a file
// created, written and removed again before the standby fetched it (an
// editor's or a compiler's temporary file), or an NFS client asking about
// a file it deleted.
//
// A stamp is never allocated twice, so a gone stamp comes back only if
// nasd itself puts it somewhere again (the standby's applier re-creating
// it, Tree.Moved), which takes it out of the set.
type goneSet struct {
	mu    sync.Mutex
	set   map[Stamp]struct{}
	order []Stamp // insertion order, for forgetting the oldest
	head  int     // order[head:] are the live entries (some may be taken out)
}

func (g *goneSet) add(st Stamp) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.set == nil {
		g.set = make(map[Stamp]struct{})
	}
	if _, ok := g.set[st]; ok {
		return
	}
	for len(g.set) >= maxGone && g.head < len(g.order) {
		delete(g.set, g.order[g.head])
		g.head++
	}
	if g.head > len(g.order)/2 {
		g.order = append(g.order[:0], g.order[g.head:]...)
		g.head = 0
	}
	g.set[st] = struct{}{}
	g.order = append(g.order, st)
}

func (g *goneSet) remove(st Stamp) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.set, st) // its place in order is skipped when it comes up
}

func (g *goneSet) has(st Stamp) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.set[st]
	return ok
}
