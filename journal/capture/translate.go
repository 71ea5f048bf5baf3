package capture

import (
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"ftnas/appliance/fileid"
	"ftnas/journal"
	"ftnas/kernel/changelog"
)

// Names in the volume root that are never replicated.
const (
	// ParkPrefix starts the names under which the standby keeps an entry
	// that had to get out of the way, in its volume root.
	ParkPrefix = ".ftnas-park."
	// OwnDir is the capture's own directory in the volume root (Sync
	// markers).
	OwnDir = ".ftnas-capture"
	// SnapPrefix starts the names of the read-only snapshots of the
	// volume the description is read from, in its volume root.
	SnapPrefix = fileid.SnapPrefix
)

// maxParkAge is how many batch ends a parked entry may stay parked before
// its share is rescanned to find it.
const maxParkAge = 3

type dirtyKind uint8

const (
	dirtyAttr    dirtyKind = 1 << iota // fetch attributes and xattrs
	dirtyContent                       // fetch contents (and metadata)
	// dirtyForced: records of the batch changed it on the standby (an
	// entry of a directory came, went or moved), so its metadata is
	// fetched even if the master's ctime says nothing changed there.
	dirtyForced
)

// Share is one share as the translator knows it: its FSID and the
// volume-relative path of its root.
type Share struct {
	FSID uint64
	Rel  string
}

// TranslateStats count the translator's work.
type TranslateStats struct {
	Changes   uint64 // changes translated
	Records   uint64 // records emitted
	Overflows uint64 // OpOverflow changes
	Rescans   uint64 // share rescans done
	Parked    int    // entries parked now
	Conflicts uint64 // entries not replicated because of a Stamp conflict
	Errors    uint64 // volume errors and invalid records (each logged)
}

// translator turns changes into records against the model. It does no I/O
// but through Volume, and is not safe for concurrent use.
type translator struct {
	m      *model
	vol    Volume
	log    *slog.Logger
	now    func() time.Time
	shares []Share // deepest root first
	gen    uint64
	parked map[*node]int // parked node → batch ends seen parked

	// the batch being translated
	out       []journal.Record
	dirty     []*node
	dirtyKind map[*node]dirtyKind
	dirtyTime map[*node]int64
	// read holds what a lookup in this batch read of a node: flush
	// ships it without reading the file again. Its ctime is older than
	// a later read's, which is the safe side (a rescan may fetch again
	// what it did not need to, never skip a change).
	read     map[*node]Obj
	rescan   map[uint64]bool
	at       int64  // capture time of the change being translated
	share    uint64 // share of the change being translated
	inRescan bool
	// toPrune: the directories a rescan walked, pruned at its end (see
	// flushPrunes).
	toPrune []*node
	stats   TranslateStats

	minPrefetch int // fewest entries worth a Prefetch (minPrefetch; tests lower it)
	pruneMax    int // most names bytes in one prune record (journal.MaxInline; tests lower it)

	hints *hintState // the file server's write hints (hints.go); nil: none
}

// newTranslator starts from a model holding only the volume root, so the
// first rescan of each share describes all of it.
func newTranslator(vol Volume, root DirRef, shares []Share, log *slog.Logger, now func() time.Time) *translator {
	t := &translator{
		m:         newModel(&node{st: root.Stamp, fid: root.FID, mode: journal.ModeDir | 0o755}),
		vol:       vol,
		log:       log,
		now:       now,
		parked:    map[*node]int{},
		dirtyKind: map[*node]dirtyKind{},
		dirtyTime: map[*node]int64{},
		read:      map[*node]Obj{},
		rescan:    map[uint64]bool{},

		minPrefetch: minPrefetch,
		pruneMax:    journal.MaxInline,
	}
	t.setShares(shares)
	return t
}

// setShares replaces the shares and schedules a rescan of every one (a new
// share is copied, a moved root is found again).
func (t *translator) setShares(shares []Share) {
	t.shares = make([]Share, 0, len(shares))
	for _, sh := range shares {
		sh.Rel = path.Clean(sh.Rel)
		t.shares = append(t.shares, sh)
		t.rescan[sh.FSID] = true
	}
	sort.SliceStable(t.shares, func(i, j int) bool { return len(t.shares[i].Rel) > len(t.shares[j].Rel) })
}

// rescanAll schedules a rescan of every share at the end of the batch.
func (t *translator) rescanAll() {
	for _, sh := range t.shares {
		t.rescan[sh.FSID] = true
	}
}

// pending reports whether the translator has work without a new change:
// rescans to do, or parked entries to place.
func (t *translator) pending() bool { return len(t.rescan) > 0 || len(t.parked) > 0 }

// batch translates changes read together and returns their records: the
// namespace records in order, then one content or attribute record per
// file changed (the standby fetches the state then current).
func (t *translator) batch(changes []changelog.Change) []journal.Record {
	t.out = make([]journal.Record, 0, len(changes)) // about as many records as changes
	if p, ok := t.vol.(prefetcher); ok {
		t.prefetch(p, changes)
	}
	for _, c := range changes {
		t.change(c)
	}
	if len(changes) == 0 {
		t.at = t.now().UnixNano()
	}
	t.finish()
	out := t.out
	t.out = nil
	t.stats.Records += uint64(len(out))
	t.stats.Parked = len(t.parked)
	return out
}

// minPrefetch is the fewest entries worth looking up ahead.
const minPrefetch = 8

// prefetch has the volume look up ahead the entries the batch names by
// their directory's handle that are new to the model (created, moved here,
// or written before the model had them): each costs a stamp, a stat and a
// handle, which wait on the volume more than they compute.
func (t *translator) prefetch(p prefetcher, changes []changelog.Change) {
	var es []entryRef
	seen := map[entryRef]bool{}
	for _, c := range changes {
		switch c.Op {
		case changelog.OpCreate, changelog.OpRename:
		case changelog.OpModify, changelog.OpCloseWrite, changelog.OpAttrib:
			if t.byFID(c.FID) != nil {
				continue
			}
		default:
			continue
		}
		if c.DirFID == "" || c.Path == "" || c.Path == "." {
			continue
		}
		d := t.m.byFID[c.DirFID]
		name := path.Base(c.Path)
		if d == nil || !d.isDir() || !t.inModel(d) || t.reserved(d, name) {
			continue
		}
		if n := d.kids[name]; n != nil && n.fid == c.FID {
			continue // known there: nothing new to stamp
		}
		e := entryRef{d.ref(), name}
		if !seen[e] {
			seen[e] = true
			es = append(es, e)
		}
	}
	if len(es) >= minPrefetch {
		p.Prefetch(es)
	}
}

func (t *translator) change(c changelog.Change) {
	t.stats.Changes++
	t.at = c.Time.UnixNano()
	if c.Time.IsZero() {
		t.at = t.now().UnixNano()
	}
	t.share = c.Share
	if t.hints != nil && (c.Op == changelog.OpModify || c.Op == changelog.OpCloseWrite || c.Op == changelog.OpAttrib) {
		defer t.hintChange(c)
	}
	switch c.Op {
	case changelog.OpOverflow:
		t.stats.Overflows++
		if t.knownShare(c.Share) {
			t.rescan[c.Share] = true
		} else {
			t.rescanAll()
		}
	case changelog.OpAttrib, changelog.OpModify, changelog.OpCloseWrite:
		kind := dirtyAttr
		if c.Op != changelog.OpAttrib {
			kind = dirtyContent
		}
		if n := t.byFID(c.FID); n != nil {
			t.markDirty(n, kind)
			return
		}
		if c.FID == "" {
			// No handle reported: the path, as it was, is all there is.
			if r := t.shareRoot(c.Share); r != nil {
				if n := t.m.lookup(r, c.Path); n != nil {
					t.markDirty(n, kind)
				}
			}
			return
		}
		// Not replicated yet: bring its place up to date.
		t.touch(c, false)
		if n := t.byFID(c.FID); n != nil {
			t.markDirty(n, kind)
		}
	case changelog.OpCreate, changelog.OpDelete, changelog.OpRename:
		t.touch(c, true)
	}
}

func (t *translator) byFID(fid string) *node {
	if fid == "" {
		return nil
	}
	return t.m.byFID[fid]
}

func (t *translator) knownShare(fsid uint64) bool {
	for _, sh := range t.shares {
		if sh.FSID == fsid {
			return true
		}
	}
	return false
}

// shareRoot is the model's node of the share's root, if it has one.
func (t *translator) shareRoot(fsid uint64) *node {
	for _, sh := range t.shares {
		if sh.FSID == fsid {
			n := t.m.lookup(t.m.root, sh.Rel)
			if n != nil && n.isDir() {
				return n
			}
			return nil
		}
	}
	return nil
}

type target struct {
	dir  *node
	name string
}

// touch reconciles every entry a namespace change may have affected: where
// the file is now on the master, the names the change gives (by the
// directories' handles, and by the paths as they were), and where the
// standby has the file. The master's place comes first, so a move is found
// as a move (one rename) before its old name is looked at. For a change of
// entries (create, delete, rename), the directories looked at get a setattr
// too: their times moved.
func (t *translator) touch(c changelog.Change, entries bool) {
	var ts []target
	add := func(d *node, name string) {
		if d == nil || !d.isDir() || name == "" || name == "." || name == ".." {
			return
		}
		for _, x := range ts {
			if x.dir == d && x.name == name {
				return
			}
		}
		ts = append(ts, target{d, name})
	}
	if t.byFID(c.FID) != nil {
		// Where the master has a file the standby has now. A file the
		// model does not have needs no such look: it has no old place
		// to move it from, and if it has moved since this change, the
		// rename is reported later and places it then.
		dirFID, name, _, ok, err := t.vol.Locate(c.FID)
		if err != nil {
			t.ioError("locate "+c.Path, err)
		} else if ok {
			add(t.m.byFID[dirFID], name)
		}
	}
	for _, x := range []struct{ dir, p string }{{c.DirFID, c.Path}, {c.OldDirFID, c.OldPath}} {
		if x.dir != "" && x.p != "" && x.p != "." {
			add(t.m.byFID[x.dir], path.Base(x.p))
		}
	}
	if r := t.shareRoot(c.Share); r != nil {
		for _, p := range []string{c.Path, c.OldPath} {
			if p == "" || p == "." {
				continue
			}
			dir, name := path.Split(p)
			add(t.m.lookup(r, dir), name)
		}
	}
	if n := t.byFID(c.FID); n != nil {
		for _, l := range append([]link(nil), n.links...) {
			add(l.dir, l.name)
		}
	}
	for _, x := range ts {
		t.reconcile(x.dir, x.name, nil)
		if entries && !t.reserved(x.dir, x.name) && t.inModel(x.dir) {
			// An entry came, went or moved: the directory's times
			// changed, also when the entry is gone again by now (a
			// create and a remove seen together leave no record).
			t.markDirty(x.dir, dirtyAttr)
		}
	}
}

// inModel reports whether n is still part of the model.
func (t *translator) inModel(n *node) bool {
	return n == t.m.root || (len(n.links) > 0 && t.m.byID[n.st.ID] == n)
}

// reserved reports whether name in d is the capture's own, never
// replicated.
func (t *translator) reserved(d *node, name string) bool {
	return d == t.m.root && (strings.HasPrefix(name, ParkPrefix) || name == OwnDir || strings.HasPrefix(name, SnapPrefix))
}

// reconcile makes the model's entry name of d what the master has there
// now (known, if the caller has just read it), emitting the records.
func (t *translator) reconcile(d *node, name string, known *Obj) {
	if !t.inModel(d) || !d.isDir() || t.reserved(d, name) {
		return
	}
	var cur Obj
	have := false
	if known != nil {
		cur, have = *known, true
	} else {
		o, ok, err := t.vol.Lookup(d.ref(), name)
		if err != nil {
			t.ioError("lookup "+name, err)
			return
		}
		cur, have = o, ok
	}
	if have && !t.replicated(d, name) {
		have = false
	}
	old := d.kids[name]
	if old != nil && have && old.fid == cur.FID && old.st == cur.Stamp {
		old.mode = cur.Mode
		t.read[old] = cur
		return
	}
	if old != nil {
		t.evict(d, name, old)
	}
	if have {
		t.place(d, name, cur)
		if n := d.kids[name]; n != nil && n.fid == cur.FID && n.st == cur.Stamp {
			t.read[n] = cur
		}
	}
}

// replicated reports whether entry name of d is in a share, or on the way
// from the volume root to one.
func (t *translator) replicated(d *node, name string) bool {
	for x, i := d, 0; x != nil && i < maxDepth; x, i = x.parent(), i+1 {
		if x.parked {
			return true // parked from a share, on its way back
		}
	}
	p := t.m.pathOf(d)
	if p == "" {
		return false
	}
	if p == "." {
		p = name
	} else {
		p += "/" + name
	}
	for _, sh := range t.shares {
		if sh.Rel == "." || p == sh.Rel || strings.HasPrefix(p, sh.Rel+"/") || strings.HasPrefix(sh.Rel, p+"/") {
			return true
		}
	}
	return false
}

// shareOf is the share a volume-relative path lies in (0: none).
func (t *translator) shareOf(rel string) uint64 {
	for _, sh := range t.shares {
		if sh.Rel == "." || rel == sh.Rel || strings.HasPrefix(rel, sh.Rel+"/") {
			return sh.FSID
		}
	}
	return 0
}

// evict takes n off the name name of d, where the master no longer has it:
// a hard link loses that name; a file or directory still alive elsewhere on
// the master is parked, so it moves rather than being copied again; a dead
// one is removed.
func (t *translator) evict(d *node, name string, n *node) {
	if !n.isDir() && len(n.links) > 1 {
		t.dropName(d, name, n, false)
		return
	}
	o, alive, err := t.vol.Inode(n.fid)
	if err != nil {
		t.ioError("stat "+name, err)
		alive, o.Mode = true, n.mode // keep it: parking loses nothing
	}
	if alive && o.Mode&journal.ModeType == n.mode&journal.ModeType {
		t.park(d, name, n)
		return
	}
	t.dropName(d, name, n, false)
}

// dropName removes the name name of d, which is n. A directory's entries
// go first (evicted, or all removed if purge: the subtree left the shares).
func (t *translator) dropName(d *node, name string, n *node, purge bool) {
	if n.isDir() {
		for _, k := range sortedKids(n) {
			kid := n.kids[k]
			if kid == nil {
				continue
			}
			if purge {
				t.dropName(n, k, kid, true)
			} else {
				t.evict(n, k, kid)
			}
		}
		t.emit(journal.Record{Op: journal.OpRmdir, File: n.st, Parent: d.st, Name: name})
	} else {
		t.emit(journal.Record{Op: journal.OpRemove, File: n.st, Parent: d.st, Name: name})
	}
	t.m.unlink(n, d, name)
	if len(n.links) == 0 {
		delete(t.parked, n)
		n.parked = false
		if !purge {
			t.vol.Removed(n.st)
		}
	}
	t.markDirty(d, dirtyAttr|dirtyForced)
}

// purgeNode removes every name of n.
func (t *translator) purgeNode(n *node) {
	for len(n.links) > 0 {
		l := n.links[len(n.links)-1]
		t.dropName(l.dir, l.name, n, true)
	}
	t.m.forget(n)
}

// parkName is where the standby keeps st while it is out of the way.
func parkName(st fileid.Stamp) string {
	return ParkPrefix + strconv.FormatUint(st.ID, 10) + "." + strconv.FormatUint(uint64(st.Gen), 10)
}

// park moves n from name in d into the volume root, out of the way.
func (t *translator) park(d *node, name string, n *node) {
	pn := parkName(n.st)
	if d == t.m.root && name == pn {
		return
	}
	if o := t.m.root.kids[pn]; o != nil && o != n {
		t.dropName(t.m.root, pn, o, true)
	}
	t.move(n, link{d, name}, t.m.root, pn)
	n.parked = true
	if _, ok := t.parked[n]; !ok {
		t.parked[n] = 0
	}
}

// move renames n's name from to (d, name).
func (t *translator) move(n *node, from link, d *node, name string) {
	t.emit(journal.Record{Op: journal.OpRename, File: n.st, Parent: from.dir.st, Name: from.name, NewParent: d.st, NewName: name})
	t.m.link(n, d, name)
	t.m.unlink(n, from.dir, from.name)
	if n.parked && !(d == t.m.root && strings.HasPrefix(name, ParkPrefix)) {
		n.parked = false
		delete(t.parked, n)
	}
	t.markDirty(from.dir, dirtyAttr|dirtyForced)
	t.markDirty(d, dirtyAttr|dirtyForced)
}

// place puts the master's cur at the free name name of d: a file the model
// has elsewhere is moved (or linked, if all its names are still valid),
// others are created.
func (t *translator) place(d *node, name string, cur Obj) {
	if old := d.kids[name]; old != nil {
		t.evict(d, name, old)
	}
	n := t.m.byFID[cur.FID]
	var others []link
	if n != nil && n.st != cur.Stamp {
		// The file got another Stamp (re-issued): another file to the
		// standby. Its other names (hard links) carry the new Stamp too:
		// they are placed again once it is created, else they would be
		// missing on the standby until something changed there.
		if !n.isDir() {
			for _, l := range n.links {
				if (l.dir != d || l.name != name) && !(l.dir == t.m.root && strings.HasPrefix(l.name, ParkPrefix)) {
					others = append(others, l)
				}
			}
		}
		t.purgeNode(n)
		n = nil
	}
	if n == nil {
		if o := t.m.byID[cur.Stamp.ID]; o != nil {
			if _, alive, err := t.vol.Inode(o.fid); err != nil || alive {
				t.stats.Conflicts++
				t.log.Warn("capture: two files carry one identity; not replicating the second until it is re-issued",
					"stamp", cur.Stamp, "name", name)
				return
			}
			t.purgeNode(o)
		}
		t.create(d, name, cur)
		for _, l := range others {
			t.reconcile(l.dir, l.name, nil)
		}
		return
	}
	n.mode = cur.Mode
	if n.isDir() {
		if n == t.m.root || d == n {
			t.stats.Conflicts++
			return
		}
		if t.m.within(d, n) {
			// The master moved d out of n; the standby has it inside:
			// get the way clear first.
			c := t.m.childOnPath(d, n)
			if c == nil || len(c.links) == 0 {
				t.stats.Conflicts++
				return
			}
			t.park(c.links[0].dir, c.links[0].name, c)
		}
		t.move(n, n.links[0], d, name)
		return
	}
	for _, l := range append([]link(nil), n.links...) {
		if (l.dir == t.m.root && strings.HasPrefix(l.name, ParkPrefix)) || !t.validLink(l, cur.FID) {
			t.move(n, l, d, name)
			return
		}
	}
	if t.emit(journal.Record{Op: journal.OpLink, File: n.st, Parent: d.st, Name: name}) {
		t.m.link(n, d, name)
		t.markDirty(d, dirtyAttr|dirtyForced)
	}
}

// validLink reports whether the master still has the file fid at l.
func (t *translator) validLink(l link, fid string) bool {
	o, ok, err := t.vol.Lookup(l.dir.ref(), l.name)
	return err == nil && ok && o.FID == fid
}

// create makes cur, new to the standby, at name in d; a directory's
// entries follow.
func (t *translator) create(d *node, name string, cur Obj) {
	r := journal.Record{File: cur.Stamp, Parent: d.st, Name: name, UID: cur.UID, GID: cur.GID}
	switch cur.Mode & journal.ModeType {
	case journal.ModeDir:
		r.Op, r.Mode = journal.OpMkdir, cur.Mode&journal.ModePerm
	case journal.ModeLink:
		r.Op, r.Target = journal.OpSymlink, cur.Target
	case journal.ModeChar, journal.ModeBlock:
		r.Op, r.Mode, r.Rdev = journal.OpCreate, cur.Mode&(journal.ModeType|journal.ModePerm), cur.Rdev
	case journal.ModeReg, journal.ModeFIFO, journal.ModeSocket:
		r.Op, r.Mode = journal.OpCreate, cur.Mode&(journal.ModeType|journal.ModePerm)
	default:
		t.stats.Errors++
		t.log.Warn("capture: unknown file type", "name", name, "mode", fmt.Sprintf("%#o", cur.Mode))
		return
	}
	if !t.emit(r) {
		return
	}
	n := &node{st: cur.Stamp, fid: cur.FID, mode: cur.Mode}
	t.m.add(n)
	t.m.link(n, d, name)
	t.markDirty(d, dirtyAttr|dirtyForced)
	if n.isReg() && cur.Size > 0 {
		t.markDirty(n, dirtyContent)
	} else {
		t.markDirty(n, dirtyAttr)
	}
	if n.isDir() {
		t.walk(n)
	}
}

// walk reconciles every entry of directory d with the master's. A fresh
// directory's entries are all new; in a rescan it also compares every entry
// the model has, fetches again what changed since it was shipped (by
// ctime), and descends into every directory, also those moved here.
func (t *translator) walk(d *node) {
	rescan := t.inRescan
	d.walked = t.gen
	names, ok, err := t.vol.List(d.ref())
	if err != nil {
		t.ioError("list "+t.m.pathOf(d), err)
		return
	}
	if !ok {
		return // gone: its eviction comes with its parent
	}
	sort.Strings(names)
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		seen[name] = true
		if !t.inModel(d) {
			return
		}
		o, ok, err := t.vol.Lookup(d.ref(), name)
		if err != nil {
			t.ioError("lookup "+name, err)
			continue
		}
		if !ok {
			t.reconcile(d, name, nil)
		} else {
			t.reconcile(d, name, &o)
		}
		if rescan {
			t.refetchChanged(d, name)
		}
	}
	if !rescan || !t.inModel(d) {
		return
	}
	for _, k := range sortedKids(d) {
		if !seen[k] {
			t.reconcile(d, k, nil)
			// What the master has there now may have moved here, after
			// the listing, from a directory not walked yet (which will
			// not list it): it is compared here or never.
			t.refetchChanged(d, k)
		}
	}
	t.toPrune = append(t.toPrune, d)
	for _, k := range sortedKids(d) {
		if kid := d.kids[k]; kid != nil && kid.isDir() && kid.walked != t.gen && !kid.parked {
			t.walk(kid)
		}
	}
}

// refetchChanged, in a rescan, has the file at name in d (as reconcile
// just read it) fetched again if its ctime differs from the one it was
// shipped with: a change whose event was lost. Every entry the walk
// reconciles is compared, also one placed there by a name the listing did
// not give (the model's, or one gone again between the listing and its
// lookup): a file moved there during the rescan is not found by the walk
// of the directory it left.
func (t *translator) refetchChanged(d *node, name string) {
	n := d.kids[name]
	if n == nil {
		return
	}
	o, ok := t.read[n]
	if !ok || n.fid != o.FID || n.ctime == o.Ctime {
		return
	}
	if n.isReg() {
		t.markDirty(n, dirtyContent)
	} else {
		t.markDirty(n, dirtyAttr)
	}
}

// flushPrunes prunes the directories the rescan walked, once all of its
// namespace records are out: a file the master moved from one directory to
// another while the standby was away (or followed an older log) is then
// moved on the standby too, by the create that names its Stamp at the new
// place (the applier moves an entry it holds), before the prune of the
// directory it left could remove it (and its contents, to be fetched again,
// with them: chaos seed 89 lost a renamed file's data so when the master
// died before the fetch).
func (t *translator) flushPrunes() {
	done := make(map[*node]bool, len(t.toPrune))
	for _, d := range t.toPrune {
		if !done[d] && t.inModel(d) {
			done[d] = true
			t.prune(d)
		}
	}
	clear(t.toPrune)
	t.toPrune = t.toPrune[:0]
}

// prune tells the standby, in a rescan, that d's entries are exactly the
// ones the model has for it now: those the records so far gave it (the
// master's, but for entries that failed to replicate). The standby removes
// every other entry it has there: files the master deleted or renamed
// while the standby was away or following an older log, which no record
// of this log names. Parked entries are in the volume root, not in d, on
// both nodes; a hard link is one name among d's like any other. Only
// directories of a share (or parked from one) are pruned, never the
// volume root or the directories on the way to a share's root, which hold
// what is not replicated. Names are split over several records when they
// exceed pruneMax bytes, the ranges tiling the name space.
func (t *translator) prune(d *node) {
	if d == t.m.root || !t.inModel(d) || !t.inShare(d) {
		return
	}
	names := sortedKids(d)
	r := journal.Record{Op: journal.OpPrune, File: d.st, Flags: journal.FlagInline, Data: []byte{}}
	for _, name := range names {
		if len(r.Data) > 0 && len(r.Data)+1+len(name) > t.pruneMax {
			r.NewName = name
			t.emit(r)
			r = journal.Record{Op: journal.OpPrune, File: d.st, Flags: journal.FlagInline, Name: name, Data: []byte{}}
		}
		r.Data = journal.AppendPruneName(r.Data, name)
	}
	t.emit(r)
}

// inShare reports whether directory d is in a share (its root or below),
// or parked from one.
func (t *translator) inShare(d *node) bool {
	for x, i := d, 0; x != nil && i < maxDepth; x, i = x.parent(), i+1 {
		if x.parked {
			return true
		}
	}
	p := t.m.pathOf(d)
	return p != "" && t.shareOf(p) != 0
}

// rescanShare compares the whole share with the model: the way from the
// volume root to the share's root, then everything below it.
func (t *translator) rescanShare(fsid uint64) {
	var sh Share
	found := false
	for _, s := range t.shares {
		if s.FSID == fsid {
			sh, found = s, true
		}
	}
	if !found {
		return
	}
	t.stats.Rescans++
	t.gen++
	t.inRescan = true
	defer func() { t.inRescan = false }()
	defer t.flushPrunes()
	t.share = fsid
	d := t.m.root
	if sh.Rel != "." {
		for _, c := range strings.Split(sh.Rel, "/") {
			t.reconcile(d, c, nil)
			next := d.kids[c]
			if next == nil || !next.isDir() {
				t.log.Info("capture: share root not on the volume", "share", fsid, "root", sh.Rel)
				return
			}
			d = next
		}
	}
	if o, ok, err := t.vol.Inode(d.fid); err == nil && ok && o.Ctime != d.ctime {
		t.markDirty(d, dirtyAttr)
	}
	if d.walked != t.gen {
		t.walk(d) // else just walked, made by the way here
	}
	t.walkParked()
}

// walkParked compares the parked entries the rescan did not reach: the walk
// skips parked directories (their place is reconciled later), and parks
// those moved on the master before it reached them, so the changes lost
// with an overflow inside them would be missed for good once unpark puts
// them back in place. Each is compared where it is parked (its records are
// valid there); a walk may park more.
func (t *translator) walkParked() {
	for {
		var todo []*node
		for n := range t.parked {
			if n.parked && t.inModel(n) && n.walked != t.gen {
				todo = append(todo, n)
			}
		}
		if len(todo) == 0 {
			return
		}
		sort.Slice(todo, func(i, j int) bool { return todo[i].st.ID < todo[j].st.ID })
		for _, n := range todo {
			if n.walked == t.gen || !t.inModel(n) {
				continue
			}
			n.walked = t.gen
			// A directory's own attributes too: its walk compares only
			// its entries, and its parent's walk did not reach it.
			o, ok, err := t.vol.Inode(n.fid)
			if err != nil {
				t.ioError("stat parked "+t.m.pathOf(n), err)
			} else if ok && o.Ctime != n.ctime {
				if n.isReg() {
					t.markDirty(n, dirtyContent)
				} else {
					t.markDirty(n, dirtyAttr)
				}
			}
			if n.isDir() {
				t.walk(n)
			}
		}
	}
}

// unpark places parked entries where the master has them now, removes
// those that left the shares or died, and has a share rescanned for one
// that stays parked too long.
func (t *translator) unpark() {
	ns := make([]*node, 0, len(t.parked))
	for n := range t.parked {
		ns = append(ns, n)
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i].st.ID < ns[j].st.ID })
	for _, n := range ns {
		if !n.parked || !t.inModel(n) {
			delete(t.parked, n)
			continue
		}
		pl := n.links[0]
		_, alive, err := t.vol.Inode(n.fid)
		if err != nil {
			t.ioError("stat parked "+pl.name, err)
			continue
		}
		if !alive {
			t.dropName(pl.dir, pl.name, n, false)
			continue
		}
		dirFID, name, rel, ok, err := t.vol.Locate(n.fid)
		if err != nil {
			t.ioError("locate parked "+pl.name, err)
		}
		if ok {
			if t.shareOf(rel) == 0 {
				t.dropName(pl.dir, pl.name, n, true) // left the shares
				continue
			}
			if d := t.m.byFID[dirFID]; d != nil && t.inModel(d) && d != n {
				t.reconcile(d, name, nil)
				if !n.parked {
					continue
				}
			}
		}
		t.parked[n]++
		if t.parked[n] >= maxParkAge {
			t.parked[n] = 0
			fsid := t.shareOf(rel)
			if !ok || fsid == 0 {
				t.rescanAll()
			} else {
				t.rescan[fsid] = true
			}
		}
	}
}

// finish ends a batch: rescans, parked entries, then the content and
// attribute records.
func (t *translator) finish() {
	if len(t.rescan) > 0 {
		fsids := make([]uint64, 0, len(t.rescan))
		for f := range t.rescan {
			fsids = append(fsids, f)
		}
		sort.Slice(fsids, func(i, j int) bool { return fsids[i] < fsids[j] })
		clear(t.rescan)
		for _, f := range fsids {
			t.rescanShare(f)
		}
	}
	if len(t.parked) > 0 {
		t.unpark()
	}
	t.flush()
}

func (t *translator) markDirty(n *node, k dirtyKind) {
	if _, ok := t.dirtyKind[n]; !ok {
		t.dirty = append(t.dirty, n)
		t.dirtyTime[n] = t.at
	}
	t.dirtyKind[n] |= k
}

// flush emits one record per changed file: a write (fetch contents and
// metadata) for a regular file whose contents changed, else a setattr
// (fetch metadata).
func (t *translator) flush() {
	if t.hints != nil {
		t.hintsBegin()
	}
	stats := t.statDirty()
	for _, n := range t.dirty {
		k := t.dirtyKind[n]
		if !t.inModel(n) {
			continue
		}
		if t.hints != nil && t.shipHints(n, k) {
			continue // shipped with its data (hints_translate.go)
		}
		o, cached := t.read[n]
		if !cached {
			var err error
			var alive bool
			if r, ok := stats[n]; ok {
				o, alive, err = r.o, r.ok, r.err
			} else {
				o, alive, err = t.vol.Inode(n.fid)
			}
			if err != nil {
				t.ioError("stat for shipping", err)
				continue
			}
			if !alive {
				continue // its removal follows
			}
			if k == dirtyAttr && n.ctime != 0 && o.Ctime == n.ctime {
				// Attributes only, unchanged on the master since
				// its state was shipped in full, and not changed
				// on the standby by this batch: the change was
				// shipped with it (e.g. the event of the capture's
				// own stamping, read after the file was). Only a
				// read made now tells: one made earlier in the
				// batch may predate the change. Contents are
				// always fetched again.
				continue
			}
		}
		r := journal.Record{Op: journal.OpSetAttr, File: n.st, Time: t.dirtyTime[n]}
		if k&dirtyContent != 0 && o.Mode&journal.ModeType == journal.ModeReg {
			r.Op = journal.OpWrite
		}
		// ctime remembers the state shipped in full: a setattr does not
		// ship a regular file's contents.
		if t.emit(r) && (r.Op == journal.OpWrite || o.Mode&journal.ModeType != journal.ModeReg) {
			n.ctime = o.Ctime
		}
	}
	if t.hints != nil {
		t.hintsEnd()
	}
	t.dirty = t.dirty[:0]
	clear(t.dirtyKind)
	clear(t.dirtyTime)
	clear(t.read)
}

// statDirty has a Volume that can read inodes several at a time read
// those flush needs (the dirty files the batch did not read), all at once.
func (t *translator) statDirty() map[*node]inodeRead {
	f, ok := t.vol.(inodeFetcher)
	if !ok {
		return nil
	}
	var ns []*node
	for _, n := range t.dirty {
		if _, cached := t.read[n]; !cached && t.inModel(n) {
			ns = append(ns, n)
		}
	}
	if len(ns) < t.minPrefetch {
		return nil
	}
	fids := make([]string, len(ns))
	for i, n := range ns {
		fids[i] = n.fid
	}
	rs := f.Inodes(fids)
	m := make(map[*node]inodeRead, len(ns))
	for i, n := range ns {
		m[n] = rs[i]
	}
	return m
}

// emit appends r to the batch's records, with its share and time filled
// in. It reports whether r was valid.
func (t *translator) emit(r journal.Record) bool {
	if r.Share == 0 {
		r.Share = t.recordShare(r)
	}
	if r.Time == 0 {
		r.Time = t.at
	}
	if err := r.Validate(); err != nil {
		t.stats.Errors++
		t.log.Error("capture: record not emitted", "err", err)
		return false
	}
	t.out = append(t.out, r)
	return true
}

// recordShare picks the share a record belongs to: the one of the
// directory (or file) it names, else the change's.
func (t *translator) recordShare(r journal.Record) uint64 {
	for _, st := range []fileid.Stamp{r.NewParent, r.Parent, r.File} {
		if n := t.m.byID[st.ID]; st.ID != 0 && n != nil {
			if fsid := t.shareOf(t.m.pathOf(n)); fsid != 0 {
				return fsid
			}
		}
	}
	if t.share != 0 {
		return t.share
	}
	if len(t.shares) > 0 {
		return t.shares[0].FSID
	}
	return 1
}

func (t *translator) ioError(what string, err error) {
	t.stats.Errors++
	t.log.Warn("capture: volume error", "op", what, "err", err)
	// The entry is compared again by a rescan; one failing in a rescan
	// is retried by the next (finish cleared the due ones before).
	if t.share != 0 && t.knownShare(t.share) {
		t.rescan[t.share] = true
	}
}
