package capture

import (
	"fmt"
	"io"
	"log/slog"
	"path"
	"sort"
	"strings"
	"testing"
	"time"

	"ftnas/appliance/fileid"
	"ftnas/journal"
	"ftnas/kernel/changelog"
)

// debugLog and debugTrace, when set (TestTranslateSeed), trace the fake
// pipe's work.
var (
	debugLog   *slog.Logger
	debugTrace testing.TB
)

func quiet() *slog.Logger {
	if debugLog != nil {
		return debugLog
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fnode is one inode of the fake master volume.
type fnode struct {
	fid     string
	st      fileid.Stamp
	mode    uint32
	uid     uint32
	size    int64
	ctime   int64
	target  string
	content string
	links   []flink           // names (a directory has one, the root none)
	kids    map[string]*fnode // directories
}

type flink struct {
	dir  *fnode
	name string
}

func (n *fnode) isDir() bool { return n.mode&journal.ModeType == journal.ModeDir }

// fakeFS is a master volume in memory. Operations on it record the changes
// a Filter would report for share 1 (rooted at "s"), with the paths as they
// were when each change happened.
type fakeFS struct {
	t       testing.TB
	root    *fnode
	byFID   map[string]*fnode
	byStamp map[fileid.Stamp]*fnode
	nextFID int
	nextID  uint64
	clock   int64
	share   string // volume-relative root of share 1
	changes []changelog.Change
	removed int    // Removed calls
	oldDir  string // rename: the FID of the old path's directory
	// during, if set, runs before each Volume call (named by call, and
	// the handle it is about): changes the volume while the capture reads
	// it, as the real one does.
	during func(call, fid string)
	inHook bool
}

// poke runs f.during, not reentrantly.
func (f *fakeFS) poke(call, fid string) {
	if f.during == nil || f.inHook {
		return
	}
	f.inHook = true
	defer func() { f.inHook = false }()
	f.during(call, fid)
}

func newFakeFS(t testing.TB) *fakeFS {
	f := &fakeFS{t: t, byFID: map[string]*fnode{}, byStamp: map[fileid.Stamp]*fnode{}, nextID: 100, share: "s"}
	f.root = f.newNode(journal.ModeDir | 0o755)
	f.root.st = fileid.Stamp{ID: 1, Gen: 1}
	f.byStamp[f.root.st] = f.root
	s := f.newNode(journal.ModeDir | 0o755)
	f.addLink(s, f.root, "s")
	return f
}

func (f *fakeFS) newNode(mode uint32) *fnode {
	f.nextFID++
	f.clock++
	n := &fnode{fid: fmt.Sprintf("%08x", f.nextFID), mode: mode, ctime: f.clock}
	if n.isDir() {
		n.kids = map[string]*fnode{}
	}
	f.byFID[n.fid] = n
	return n
}

func (f *fakeFS) addLink(n, dir *fnode, name string) {
	dir.kids[name] = n
	n.links = append(n.links, flink{dir, name})
	f.clock++
	dir.ctime = f.clock
}

func (f *fakeFS) dropLink(n, dir *fnode, name string) {
	delete(dir.kids, name)
	for i, l := range n.links {
		if l.dir == dir && l.name == name {
			n.links = append(n.links[:i], n.links[i+1:]...)
			break
		}
	}
	f.clock++
	dir.ctime = f.clock
	n.ctime = f.clock
}

// walk resolves a share-relative path.
func (f *fakeFS) walk(p string) *fnode {
	n := f.root.kids[f.share]
	if p == "." || p == "" {
		return n
	}
	for _, c := range strings.Split(p, "/") {
		if n == nil || !n.isDir() {
			return nil
		}
		n = n.kids[c]
	}
	return n
}

func (f *fakeFS) note(op changelog.Op, p, old string, n *fnode) {
	if debugTrace != nil {
		debugTrace.Logf("op %s %s %s fid=%s", op, old, p, n.fid)
	}
	f.clock++
	c := changelog.Change{Op: op, Share: 1, Path: p, OldPath: old, FID: n.fid, IsDir: n.isDir(), Time: time.Unix(0, f.clock)}
	if d := f.walk(path.Dir(p)); d != nil && p != "." {
		c.DirFID = d.fid
	}
	if old != "" {
		c.OldDirFID = f.oldDir
	}
	f.changes = append(f.changes, c)
}

func (f *fakeFS) mk(p string, mode uint32) *fnode {
	dir := f.walk(path.Dir(p))
	if dir == nil || !dir.isDir() || dir.kids[path.Base(p)] != nil {
		f.t.Fatalf("fake: create %s: parent missing or name taken", p)
	}
	n := f.newNode(mode)
	f.addLink(n, dir, path.Base(p))
	f.note(changelog.OpCreate, p, "", n)
	return n
}

func (f *fakeFS) mkdir(p string) *fnode  { return f.mk(p, journal.ModeDir|0o755) }
func (f *fakeFS) create(p string) *fnode { return f.mk(p, journal.ModeReg|0o644) }
func (f *fakeFS) symlink(p, target string) *fnode {
	n := f.mk(p, journal.ModeLink|0o777)
	n.target = target
	return n
}

func (f *fakeFS) write(p, data string) {
	n := f.walk(p)
	n.content += data
	n.size = int64(len(n.content))
	f.clock++
	n.ctime = f.clock
	f.note(changelog.OpModify, p, "", n)
	f.note(changelog.OpCloseWrite, p, "", n)
}

func (f *fakeFS) chmod(p string, perm uint32) {
	n := f.walk(p)
	n.mode = n.mode&journal.ModeType | perm
	f.clock++
	n.ctime = f.clock
	f.note(changelog.OpAttrib, p, "", n)
}

func (f *fakeFS) link(old, p string) {
	n := f.walk(old)
	f.addLink(n, f.walk(path.Dir(p)), path.Base(p))
	f.note(changelog.OpCreate, p, "", n)
}

func (f *fakeFS) unlink(p string) {
	n := f.walk(p)
	f.dropLink(n, f.walk(path.Dir(p)), path.Base(p))
	f.note(changelog.OpDelete, p, "", n)
	if len(n.links) == 0 {
		delete(f.byFID, n.fid)
		delete(f.byStamp, n.st)
	}
}

// rename moves old to p, replacing a file or an empty directory there.
func (f *fakeFS) rename(old, p string) {
	n := f.walk(old)
	nd := f.walk(path.Dir(p))
	if v := nd.kids[path.Base(p)]; v != nil {
		if v == n {
			return
		}
		f.dropLink(v, nd, path.Base(p))
		if len(v.links) == 0 {
			delete(f.byFID, v.fid)
			delete(f.byStamp, v.st)
		}
	}
	od := f.walk(path.Dir(old))
	f.oldDir = od.fid
	f.dropLink(n, od, path.Base(old))
	f.addLink(n, nd, path.Base(p))
	f.note(changelog.OpRename, p, old, n)
}

// Volume.

func (f *fakeFS) obj(n *fnode) Obj {
	return Obj{FID: n.fid, Stamp: n.st, Mode: n.mode, UID: n.uid, Size: n.size, Ctime: n.ctime, Target: n.target}
}

func (f *fakeFS) live(fid string) *fnode {
	n := f.byFID[fid]
	if n == nil || (n != f.root && len(n.links) == 0) {
		return nil
	}
	return n
}

func (f *fakeFS) Lookup(dir DirRef, name string) (Obj, bool, error) {
	f.poke("Lookup", dir.FID)
	d := f.live(dir.FID)
	if d == nil || !d.isDir() {
		return Obj{}, false, nil
	}
	n := d.kids[name]
	if n == nil {
		return Obj{}, false, nil
	}
	if n.st.ID == 0 {
		f.nextID++
		n.st = fileid.Stamp{ID: f.nextID, Gen: 7}
		f.byStamp[n.st] = n
		f.clock++
		n.ctime = f.clock
	}
	return f.obj(n), true, nil
}

func (f *fakeFS) List(dir DirRef) ([]string, bool, error) {
	f.poke("List", dir.FID)
	d := f.live(dir.FID)
	if d == nil || !d.isDir() {
		return nil, false, nil
	}
	var names []string
	for k := range d.kids {
		names = append(names, k)
	}
	return names, true, nil
}

func (f *fakeFS) Inode(fid string) (Obj, bool, error) {
	f.poke("Inode", fid)
	n := f.live(fid)
	if n == nil {
		return Obj{}, false, nil
	}
	o := f.obj(n)
	o.Stamp = fileid.Stamp{}
	return o, true, nil
}

func (f *fakeFS) Locate(fid string) (string, string, string, bool, error) {
	f.poke("Locate", fid)
	n := f.live(fid)
	if n == nil || len(n.links) == 0 {
		return "", "", "", false, nil
	}
	l := n.links[len(n.links)-1] // like the kernel: some name, not necessarily the first
	return l.dir.fid, l.name, f.relOf(n), true, nil
}

func (f *fakeFS) relOf(n *fnode) string {
	var parts []string
	for n != f.root {
		l := n.links[len(n.links)-1]
		parts = append([]string{l.name}, parts...)
		n = l.dir
	}
	return strings.Join(parts, "/")
}

func (f *fakeFS) Removed(fileid.Stamp) { f.removed++ }

// snode is one file of the fake standby.
type snode struct {
	st      fileid.Stamp
	mode    uint32
	uid     uint32
	target  string
	content string
	nlink   int
	kids    map[string]*snode
}

// fakeStandby applies records strictly: anything a real applier would
// fail on, or that would silently do something else than the record says
// (a create over another file, a rename over an entry, a duplicate Stamp),
// is an error.
//
// A relaxed one is a standby that followed an older log and applies a new
// one from its start, as FSApplier does: a create over an entry with the
// record's Stamp keeps it, one over another entry replaces it, a Stamp it
// already has elsewhere is given to the new file too, and a prune removes
// what it does not list. A strict one fails a prune whose names are not
// exactly what it has in the range (the model and the standby disagree).
type fakeStandby struct {
	master  *fakeFS
	root    *snode
	byID    map[uint64]*snode
	seq     uint64
	relaxed bool
	pruned  int // entries a prune removed (their subtrees not counted)
}

func newFakeStandby(master *fakeFS) *fakeStandby {
	r := &snode{st: master.root.st, mode: journal.ModeDir | 0o755, kids: map[string]*snode{}}
	return &fakeStandby{master: master, root: r, byID: map[uint64]*snode{r.st.ID: r}}
}

func (s *fakeStandby) dir(st fileid.Stamp) (*snode, error) {
	d := s.byID[st.ID]
	if d == nil || d.st != st || d.kids == nil {
		return nil, fmt.Errorf("directory %v not on the standby", st)
	}
	return d, nil
}

func (s *fakeStandby) apply(r journal.Record) error {
	if err := r.Validate(); err != nil {
		return err
	}
	s.seq++
	switch r.Op {
	case journal.OpCreate, journal.OpMkdir, journal.OpSymlink:
		d, err := s.dir(r.Parent)
		if err != nil {
			return err
		}
		if e := d.kids[r.Name]; e != nil && s.relaxed && e.st == r.File {
			s.byID[r.File.ID] = e
			return nil // applied before
		} else if e != nil && s.relaxed {
			s.unname(d, r.Name)
		}
		if e := d.kids[r.Name]; e != nil {
			return fmt.Errorf("create %s: name taken by %v", r.Name, e.st)
		}
		if s.byID[r.File.ID] != nil && !s.relaxed {
			return fmt.Errorf("create %s: stamp %v already on the standby", r.Name, r.File)
		}
		n := &snode{st: r.File, mode: r.Mode, uid: r.UID, target: r.Target, nlink: 1}
		switch r.Op {
		case journal.OpMkdir:
			n.mode |= journal.ModeDir
			n.kids = map[string]*snode{}
		case journal.OpSymlink:
			n.mode = journal.ModeLink | 0o777
		}
		d.kids[r.Name] = n
		s.byID[r.File.ID] = n
	case journal.OpLink:
		d, err := s.dir(r.Parent)
		if err != nil {
			return err
		}
		n := s.byID[r.File.ID]
		if n == nil || n.kids != nil {
			return fmt.Errorf("link %s: %v missing or a directory", r.Name, r.File)
		}
		if d.kids[r.Name] != nil {
			return fmt.Errorf("link %s: name taken", r.Name)
		}
		d.kids[r.Name] = n
		n.nlink++
	case journal.OpRemove, journal.OpRmdir:
		d, err := s.dir(r.Parent)
		if err != nil {
			return err
		}
		n := d.kids[r.Name]
		if n == nil || n.st != r.File {
			return fmt.Errorf("remove %s: not %v", r.Name, r.File)
		}
		if (r.Op == journal.OpRmdir) != (n.kids != nil) {
			return fmt.Errorf("%s of %s: wrong type", r.Op, r.Name)
		}
		if len(n.kids) > 0 {
			return fmt.Errorf("rmdir %s: not empty", r.Name)
		}
		delete(d.kids, r.Name)
		n.nlink--
		if n.nlink == 0 {
			delete(s.byID, n.st.ID)
		}
	case journal.OpRename:
		from, err := s.dir(r.Parent)
		if err != nil {
			return err
		}
		to, err := s.dir(r.NewParent)
		if err != nil {
			return err
		}
		n := from.kids[r.Name]
		if n == nil || n.st != r.File {
			return fmt.Errorf("rename %s: not %v", r.Name, r.File)
		}
		if to.kids[r.NewName] != nil {
			return fmt.Errorf("rename %s to %s: destination taken", r.Name, r.NewName)
		}
		if n.kids != nil && s.within(to, n) {
			return fmt.Errorf("rename %s into itself", r.Name)
		}
		delete(from.kids, r.Name)
		to.kids[r.NewName] = n
	case journal.OpWrite, journal.OpSetAttr:
		n := s.byID[r.File.ID]
		if n == nil || n.st != r.File {
			return fmt.Errorf("%s: %v not on the standby", r.Op, r.File)
		}
		m := s.master.byStamp[r.File]
		if m == nil {
			return nil // vanished on the master
		}
		n.mode, n.uid = m.mode, m.uid
		if r.Op == journal.OpWrite {
			n.content = m.content
		}
	case journal.OpPrune:
		if r.File == s.root.st {
			return fmt.Errorf("prune of the volume root")
		}
		d, err := s.dir(r.File)
		if err != nil {
			return err
		}
		if !s.inShare(d) {
			return fmt.Errorf("prune of %v, outside the share", r.File)
		}
		listed := map[string]bool{}
		for _, n := range journal.PruneNames(r.Data) {
			listed[n] = true
			if d.kids[n] == nil {
				return fmt.Errorf("prune lists %s, which the standby does not have", n)
			}
		}
		for _, k := range sortedNames(d.kids) {
			if k < r.Name || r.NewName != "" && k >= r.NewName || listed[k] {
				continue
			}
			if !s.relaxed {
				return fmt.Errorf("prune of %s: the standby has it, the model does not", k)
			}
			s.unname(d, k)
			s.pruned++
		}
	default:
		return fmt.Errorf("unexpected %s", r.Op)
	}
	return nil
}

// unname removes the name k of d, a directory with everything below it.
func (s *fakeStandby) unname(d *snode, k string) {
	n := d.kids[k]
	delete(d.kids, k)
	n.nlink--
	if n.nlink > 0 {
		return
	}
	if s.byID[n.st.ID] == n {
		delete(s.byID, n.st.ID)
	}
	for _, kk := range sortedNames(n.kids) {
		s.unname(n, kk)
	}
}

// inShare reports whether d is the share's root or below it (or parked).
func (s *fakeStandby) inShare(d *snode) bool {
	share := s.root.kids[s.master.share]
	if share == nil {
		return false
	}
	if s.within(d, share) {
		return true
	}
	for k, n := range s.root.kids {
		if strings.HasPrefix(k, ParkPrefix) && n.kids != nil && s.within(d, n) {
			return true
		}
	}
	return false
}

func sortedNames(m map[string]*snode) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func (s *fakeStandby) within(d, n *snode) bool {
	if d == n {
		return true
	}
	for _, k := range n.kids {
		if k.kids != nil && s.within(d, k) {
			return true
		}
	}
	return false
}

// diff returns the first difference between the master's share and the
// standby's, or "".
func diff(f *fakeFS, s *fakeStandby) string {
	var walk func(p string, m *fnode, sn *snode) string
	walk = func(p string, m *fnode, sn *snode) string {
		if m.st != sn.st {
			return fmt.Sprintf("%s: stamp %v on the master, %v on the standby", p, m.st, sn.st)
		}
		if m.mode&journal.ModeType != sn.mode&journal.ModeType || (m.mode&journal.ModeType != journal.ModeLink && m.mode != sn.mode) {
			return fmt.Sprintf("%s: mode %o on the master, %o on the standby", p, m.mode, sn.mode)
		}
		if m.content != sn.content || m.target != sn.target {
			return fmt.Sprintf("%s: contents %q/%q on the master, %q/%q on the standby", p, m.content, m.target, sn.content, sn.target)
		}
		if !m.isDir() {
			return ""
		}
		var names []string
		for k := range m.kids {
			names = append(names, k)
		}
		for k := range sn.kids {
			if m.kids[k] == nil {
				if strings.HasPrefix(k, ParkPrefix) && p == "." {
					return fmt.Sprintf("%s: left parked on the standby", k)
				}
				return fmt.Sprintf("%s/%s: only on the standby", p, k)
			}
		}
		sort.Strings(names)
		for _, k := range names {
			if sn.kids[k] == nil {
				return fmt.Sprintf("%s/%s: missing on the standby", p, k)
			}
			if d := walk(p+"/"+k, m.kids[k], sn.kids[k]); d != "" {
				return d
			}
		}
		return ""
	}
	return walk(".", f.root, s.root)
}

// pipe connects a fake master and standby through a translator.
type pipe struct {
	t  testing.TB
	fs *fakeFS
	sb *fakeStandby
	tr *translator
}

func newPipe(t testing.TB) *pipe {
	fs := newFakeFS(t)
	tr := newTranslator(fs, DirRef{FID: fs.root.fid, Stamp: fs.root.st}, []Share{{FSID: 1, Rel: "s"}}, quiet(),
		func() time.Time { return time.Unix(0, fs.clock) })
	p := &pipe{t: t, fs: fs, sb: newFakeStandby(fs), tr: tr}
	p.run(nil) // the initial rescan
	return p
}

// run translates changes as one batch and applies the records.
func (p *pipe) run(changes []changelog.Change) []journal.Record {
	p.t.Helper()
	recs := p.tr.batch(changes)
	if pf, ok := p.tr.vol.(*prefetchFS); ok {
		clear(pf.pre) // as the capture ends the volume's batch
	}
	if debugTrace != nil {
		var cs []string
		for _, c := range changes {
			cs = append(cs, c.Op.String()+" "+c.OldPath+" "+c.Path)
		}
		debugTrace.Logf("batch of %d changes [%s]: %s", len(changes), strings.Join(cs, "; "), describeFull(recs))
	}
	for _, r := range recs {
		if err := p.sb.apply(r); err != nil {
			p.t.Fatalf("apply %s: %v\nrecords: %s", r.Op, err, describe(recs))
		}
	}
	return recs
}

// drain translates every change noted so far, as one batch.
func (p *pipe) drain() []journal.Record {
	c := p.fs.changes
	p.fs.changes = nil
	return p.run(c)
}

func (p *pipe) check() {
	p.t.Helper()
	if d := diff(p.fs, p.sb); d != "" {
		p.t.Fatal(d)
	}
	if n := len(p.tr.parked); n != 0 {
		p.t.Fatalf("%d entries still parked", n)
	}
}

// describe renders records compactly: "mkdir a, write 105".
func describe(recs []journal.Record) string {
	var parts []string
	for _, r := range recs {
		s := r.Op.String()
		switch r.Op {
		case journal.OpCreate, journal.OpMkdir, journal.OpSymlink, journal.OpLink, journal.OpRemove, journal.OpRmdir:
			s += " " + r.Name
		case journal.OpRename:
			s += " " + r.Name + ">" + r.NewName
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func describeFull(recs []journal.Record) string {
	var parts []string
	for _, r := range recs {
		parts = append(parts, fmt.Sprintf("%s f=%d p=%d %s np=%d %s", r.Op, r.File.ID, r.Parent.ID, r.Name, r.NewParent.ID, r.NewName))
	}
	return strings.Join(parts, "\n")
}

// prefetchFS is the fake volume with Prefetch as the real one has it: the
// entries are looked up when the batch starts, and each one's Lookups in
// the rest of the batch answer with what was read then.
type prefetchFS struct {
	*fakeFS
	pre map[entryRef]prefetched
	n   int // entries prefetched
	ni  int // inodes read at once (Inodes)
}

func (f *prefetchFS) Prefetch(es []entryRef) {
	for _, e := range es {
		if o, ok, err := f.fakeFS.Lookup(e.dir, e.name); err == nil {
			f.pre[e] = prefetched{o, ok}
			f.n++
		}
	}
}

// Inodes reads the inodes flush needs at once, as the real volume does.
func (f *prefetchFS) Inodes(fids []string) []inodeRead {
	rs := make([]inodeRead, len(fids))
	for i, fid := range fids {
		o, ok, err := f.fakeFS.Inode(fid)
		rs[i] = inodeRead{o, ok, err}
		f.ni++
	}
	return rs
}

func (f *prefetchFS) Lookup(dir DirRef, name string) (Obj, bool, error) {
	e := entryRef{dir, name}
	if p, ok := f.pre[e]; ok {
		return p.o, p.ok, nil
	}
	return f.fakeFS.Lookup(dir, name)
}
