package changelog

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func h(n byte) Handle { return Handle{Type: 1, Bytes: []byte{n}} }

func dfidName(dir Handle, name string) Record {
	return Record{Type: InfoDFIDName, Handle: dir, Name: name}
}

func fid(obj Handle) Record { return Record{Type: InfoFID, Handle: obj} }

// fakeFS is a translator over a made-up volume at /vol with shares /vol/s1
// (FSID 1) and /vol/s2 (FSID 2); handle 1 is /vol, 2 is /vol/s1, 3 is
// /vol/s2, 4 is /vol/out.
type fakeFS struct {
	x        *translator
	exists   map[string]bool
	rebuilds int
}

func newFake(t *testing.T) *fakeFS {
	t.Helper()
	f := &fakeFS{exists: map[string]bool{}}
	shares, err := newShareSet([]Share{{1, "/vol/s1"}, {2, "/vol/s2"}})
	if err != nil {
		t.Fatal(err)
	}
	tree := newDirTree()
	tree.anchor(h(1).Key(), "/vol")
	tree.set(h(2).Key(), h(1).Key(), "s1")
	tree.set(h(3).Key(), h(1).Key(), "s2")
	tree.set(h(4).Key(), h(1).Key(), "out")
	f.x = &translator{
		tree:    tree,
		shares:  shares,
		now:     func() time.Time { return time.Unix(100, 0) },
		log:     slog.New(slog.DiscardHandler),
		lookup:  func(Handle) (string, bool) { return "", false },
		exists:  func(abs string) bool { return f.exists[abs] },
		rebuild: func() { f.rebuilds++ },
	}
	return f
}

// summary renders changes compactly for comparison.
func summary(cs []Change) string {
	var s []string
	for _, c := range cs {
		e := fmt.Sprintf("%s %d:%s", c.Op, c.Share, c.Path)
		if c.OldPath != "" {
			e += "<" + c.OldPath
		}
		if c.IsDir {
			e += "/"
		}
		if c.Moved {
			e += " moved"
		}
		s = append(s, e)
	}
	return strings.Join(s, ", ")
}

func check(t *testing.T, got []Change, want string) {
	t.Helper()
	if s := summary(got); s != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
}

func TestTranslateBasics(t *testing.T) {
	f := newFake(t)
	got := f.x.batch([]Event{
		{Mask: fanCreate | fanOnDir, Pid: 5, Records: []Record{dfidName(h(2), "d"), fid(h(10))}},
		{Mask: fanCreate | fanModify | fanCloseWrite, Pid: 5, Records: []Record{dfidName(h(10), "f"), fid(h(11))}},
		{Mask: fanAttrib | fanOnDir, Pid: 5, Records: []Record{dfidName(h(10), ".")}},
		{Mask: fanAttrib | fanOnDir, Pid: 5, Records: []Record{dfidName(h(2), ".")}},
		{Mask: fanCreate, Pid: 5, Records: []Record{dfidName(h(4), "x"), fid(h(12))}},     // outside
		{Mask: fanAttrib, Pid: 5, Records: []Record{fid(h(11))}},                          // link count: no name
		{Mask: fanCreate, Pid: 5, Records: []Record{dfidName(h(99), "lost"), fid(h(13))}}, // dir gone
		{Mask: fanRename | fanOnDir, Pid: 6, Records: []Record{{Type: InfoOldDFIDName, Handle: h(2), Name: "d"}, {Type: InfoNewDFIDName, Handle: h(2), Name: "e"}, fid(h(10))}},
		{Mask: fanDelete, Pid: 6, Records: []Record{dfidName(h(10), "f"), fid(h(11))}}, // path after the rename
		{Mask: fanDelete | fanOnDir, Pid: 6, Records: []Record{dfidName(h(2), "e"), fid(h(10))}},
	})
	check(t, got, "create 1:d/, create 1:d/f, modify 1:d/f, closewrite 1:d/f, attrib 1:d/, attrib 1:./, "+
		"rename 1:e<d/, delete 1:e/f, delete 1:e/")
	if got[0].Pid != 5 || got[0].Time != time.Unix(100, 0) || got[1].FID == "" || got[1].FID == got[0].FID {
		t.Errorf("pid/time/FID: %+v %+v", got[0], got[1])
	}
	if _, ok := f.x.tree.path(h(10).Key()); ok {
		t.Error("a removed directory is still in the tree")
	}
	hx := func(h Handle) string { return hex.EncodeToString([]byte(h.Key())) }
	if got[1].DirFID != hx(h(10)) || got[4].DirFID != "" || got[6].DirFID != hx(h(2)) || got[6].OldDirFID != hx(h(2)) {
		t.Errorf("directory handles: create %q, attrib of a directory %q, rename %q<%q",
			got[1].DirFID, got[4].DirFID, got[6].DirFID, got[6].OldDirFID)
	}
	if got[4].FID != hx(h(10)) || got[5].FID != hx(h(2)) {
		t.Errorf("attrib of a directory itself: FID %q and %q, want the directories'", got[4].FID, got[5].FID)
	}
}

func TestTranslateCoalescesModify(t *testing.T) {
	f := newFake(t)
	mod := func(name string) Event {
		return Event{Mask: fanModify, Pid: 1, Records: []Record{dfidName(h(2), name)}}
	}
	got := f.x.batch([]Event{
		mod("a"), mod("a"), mod("b"), mod("a"),
		{Mask: fanAttrib, Pid: 1, Records: []Record{dfidName(h(2), "a")}},
		mod("a"), mod("a"),
		{Mask: fanRename, Pid: 1, Records: []Record{{Type: InfoOldDFIDName, Handle: h(2), Name: "c"}, {Type: InfoNewDFIDName, Handle: h(2), Name: "b"}}},
		mod("b"),
	})
	check(t, got, "modify 1:a, modify 1:b, attrib 1:a, modify 1:a, rename 1:b<c, modify 1:b")
	// A new batch reports again.
	check(t, f.x.batch([]Event{mod("a")}), "modify 1:a")
}

func TestTranslateMergedCreateDelete(t *testing.T) {
	f := newFake(t)
	ev := Event{Mask: fanCreate | fanDelete | fanModify, Pid: 1, Records: []Record{dfidName(h(2), "t"), fid(h(20))}}
	check(t, f.x.batch([]Event{ev}), "create 1:t, modify 1:t, delete 1:t")
	f.exists["/vol/s1/t"] = true
	check(t, f.x.batch([]Event{ev}), "delete 1:t, create 1:t, modify 1:t")
}

func TestTranslateRenameAcrossShares(t *testing.T) {
	f := newFake(t)
	ren := func(from Handle, fromName string, to Handle, toName string, dir bool) Event {
		m := uint64(fanRename)
		if dir {
			m |= fanOnDir
		}
		return Event{Mask: m, Pid: 1, Records: []Record{
			{Type: InfoOldDFIDName, Handle: from, Name: fromName},
			{Type: InfoNewDFIDName, Handle: to, Name: toName}, fid(h(30))}}
	}
	got := f.x.batch([]Event{
		ren(h(2), "a", h(3), "a", true), // s1 → s2
		{Mask: fanCreate, Pid: 1, Records: []Record{dfidName(h(30), "in"), fid(h(31))}},
		ren(h(3), "a", h(4), "a", true),      // s2 → outside
		ren(h(4), "a", h(2), "b", true),      // outside → s1
		ren(h(4), "a", h(4), "b", false),     // outside → outside
		ren(h(99), "gone", h(2), "c", false), // from a directory no one knows
	})
	check(t, got, "delete 1:a/ moved, create 2:a/ moved, create 2:a/in, delete 2:a/ moved, create 1:b/ moved, create 1:c moved")
}

func TestTranslateShareRootAndOverflow(t *testing.T) {
	f := newFake(t)
	got := f.x.batch([]Event{
		{Mask: fanRename | fanOnDir, Pid: 1, Records: []Record{
			{Type: InfoOldDFIDName, Handle: h(1), Name: "s1"}, {Type: InfoNewDFIDName, Handle: h(1), Name: "old"}, fid(h(2))}},
		{Mask: fanDelete | fanOnDir, Pid: 1, Records: []Record{dfidName(h(1), "s2"), fid(h(3))}},
		{Mask: fanQOverflow, FD: fanNoFD},
		{Mask: fanRename, Pid: 1, Records: []Record{{Type: InfoOldDFIDName, Handle: h(1), Name: "x"}}},
	})
	check(t, got, "overflow 1:, overflow 2:, overflow 1:, overflow 2:, overflow 1:, overflow 2:")
	if f.rebuilds != 1 {
		t.Errorf("rebuilds %d, want 1", f.rebuilds)
	}
}

func TestTranslateIgnoredPidKeepsTree(t *testing.T) {
	f := newFake(t)
	f.x.ignore = func(pid int) bool { return pid == 9 }
	got := f.x.batch([]Event{
		{Mask: fanCreate | fanOnDir, Pid: 9, Records: []Record{dfidName(h(2), "d"), fid(h(40))}},
		{Mask: fanRename | fanOnDir, Pid: 9, Records: []Record{
			{Type: InfoOldDFIDName, Handle: h(2), Name: "d"}, {Type: InfoNewDFIDName, Handle: h(3), Name: "e"}, fid(h(40))}},
		{Mask: fanCreate, Pid: 8, Records: []Record{dfidName(h(40), "f"), fid(h(41))}},
		{Mask: fanModify, Pid: 9, Records: []Record{dfidName(h(40), "f"), fid(h(41))}},
	})
	check(t, got, "create 2:e/f")
}

func TestShareSet(t *testing.T) {
	s, err := newShareSet([]Share{{1, "/v/a"}, {2, "/v/a/b/"}, {3, "/"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		abs   string
		fsid  uint64
		rel   string
		found bool
	}{
		{"/v/a", 1, ".", true}, {"/v/a/x", 1, "x", true}, {"/v/a/b", 2, ".", true},
		{"/v/a/b/c/d", 2, "c/d", true}, {"/v/ab", 3, "v/ab", true}, {"/", 3, ".", true},
	} {
		sh, rel, ok := s.match(c.abs)
		if ok != c.found || sh.FSID != c.fsid || rel != c.rel {
			t.Errorf("match(%s) = %d %q %v, want %d %q", c.abs, sh.FSID, rel, ok, c.fsid, c.rel)
		}
	}
	s, _ = newShareSet([]Share{{1, "/v/a"}})
	if _, _, ok := s.match("/v/ab"); ok {
		t.Error("/v/ab matched share /v/a")
	}
	for _, bad := range [][]Share{{{1, "rel"}}, {{0, "/a"}}, {{1, "/a"}, {1, "/b"}}} {
		if _, err := newShareSet(bad); err == nil {
			t.Errorf("newShareSet(%v) accepted", bad)
		}
	}
}

func TestDirTree(t *testing.T) {
	tr := newDirTree()
	tr.anchor("r", "/vol/")
	tr.set("a", "r", "a")
	tr.set("b", "a", "b")
	tr.set("c", "b", "c")
	if p, ok := tr.path("c"); !ok || p != "/vol/a/b/c" {
		t.Errorf("path = %q %v", p, ok)
	}
	tr.set("b", "r", "moved") // rename a whole subtree in one step
	if p, _ := tr.path("c"); p != "/vol/moved/c" {
		t.Errorf("after rename: %q", p)
	}
	tr.set("r", "a", "loop") // the anchor never moves
	if p, _ := tr.path("r"); p != "/vol" {
		t.Errorf("anchor: %q", p)
	}
	tr.remove("b")
	if _, ok := tr.path("c"); ok {
		t.Error("path through a removed directory")
	}
	tr.set("x", "y", "x")
	tr.set("y", "x", "y")
	if _, ok := tr.path("x"); ok {
		t.Error("a loop resolved")
	}
	tr.reset()
	if tr.len() != 1 {
		t.Errorf("after reset: %d nodes, want the anchor", tr.len())
	}
}
