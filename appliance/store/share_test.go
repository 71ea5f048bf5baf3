package store

import (
	"errors"
	"strings"
	"testing"
)

func TestAddShare(t *testing.T) {
	s, _ := openTemp(t)
	sh, err := s.AddShare(Share{Name: "Media", Path: "media//films/", NFS: true, Clients: []string{"192.0.2.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	if sh.Path != "media/films" || sh.FSID != FirstFSID || sh.Created.IsZero() {
		t.Errorf("AddShare = %+v", sh)
	}
	got, err := s.GetShare("MEDIA")
	if err != nil || got.Name != "Media" || got.FSID != sh.FSID {
		t.Errorf("GetShare(any case) = %+v, %v", got, err)
	}
	// Duplicates are refused in any case (SMB is case-insensitive).
	_, err = s.AddShare(Share{Name: "media", Path: "other", SMB: true})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), `"Media"`) {
		t.Errorf("duplicate = %v, want ErrExists naming the existing share", err)
	}
	for _, bad := range []Share{
		{Name: "bad name", Path: "x", SMB: true},
		{Name: "x", Path: "../etc", SMB: true},
		{Name: "x", Path: "/etc", SMB: true},
		{Name: "x", Path: "x", SMB: true, Clients: []string{"nope"}},
		{Name: "x", Path: "x"},
	} {
		if _, err := s.AddShare(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddShare(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := s.GetShare("x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused share was stored: %v", err)
	}
}

func TestShareFSIDsAreNeverReused(t *testing.T) {
	s, _ := openTemp(t)
	a, _ := s.AddShare(Share{Name: "a", Path: "a", NFS: true})
	b, _ := s.AddShare(Share{Name: "b", Path: "b", NFS: true})
	if a.FSID == b.FSID {
		t.Fatalf("two shares share fsid %d", a.FSID)
	}
	if err := s.RemoveShare("B"); err != nil {
		t.Fatal(err)
	}
	c, _ := s.AddShare(Share{Name: "b", Path: "b", NFS: true})
	if c.FSID == b.FSID || c.FSID == a.FSID {
		t.Errorf("fsid %d reused after removal", c.FSID)
	}
	got, err := s.ShareByFSID(c.FSID)
	if err != nil || got.Name != "b" {
		t.Errorf("ShareByFSID = %+v, %v", got, err)
	}
	if _, err := s.ShareByFSID(b.FSID); !errors.Is(err, ErrNotFound) {
		t.Errorf("ShareByFSID(removed) = %v, want ErrNotFound", err)
	}
}

func TestAddShareWithGivenFSID(t *testing.T) {
	s, _ := openTemp(t)
	r, err := s.AddShare(Share{Name: "replica", Path: "r", NFS: true, FSID: 40})
	if err != nil || r.FSID != 40 {
		t.Fatalf("AddShare(fsid 40) = %+v, %v", r, err)
	}
	if _, err := s.AddShare(Share{Name: "clash", Path: "c", NFS: true, FSID: 40}); !errors.Is(err, ErrExists) {
		t.Errorf("taken fsid = %v, want ErrExists", err)
	}
	n, _ := s.AddShare(Share{Name: "next", Path: "n", NFS: true})
	if n.FSID != 41 {
		t.Errorf("counter did not move past a given fsid: got %d, want 41", n.FSID)
	}
}

func TestListSharesSorted(t *testing.T) {
	s, _ := openTemp(t)
	if l, err := s.ListShares(); err != nil || l == nil || len(l) != 0 {
		t.Errorf("empty ListShares = %#v, %v; want empty non-nil", l, err)
	}
	for _, n := range []string{"zeta", "Alpha", "beta"} {
		if _, err := s.AddShare(Share{Name: n, Path: n, SMB: true}); err != nil {
			t.Fatal(err)
		}
	}
	l, _ := s.ListShares()
	var names []string
	for _, sh := range l {
		names = append(names, sh.Name)
	}
	if strings.Join(names, ",") != "Alpha,beta,zeta" {
		t.Errorf("ListShares order = %v", names)
	}
}

func TestUpdateAndRemoveShare(t *testing.T) {
	s, _ := openTemp(t)
	orig, _ := s.AddShare(Share{Name: "docs", Path: "docs", SMB: true})
	up, err := s.UpdateShare(Share{Name: "Docs", Path: "documents", NFS: true, ReadOnly: true, FSID: 999})
	if err != nil {
		t.Fatal(err)
	}
	if up.FSID != orig.FSID || !up.Created.Equal(orig.Created) || up.Path != "documents" || !up.ReadOnly || up.Name != "Docs" {
		t.Errorf("UpdateShare = %+v (orig %+v)", up, orig)
	}
	if _, err := s.UpdateShare(Share{Name: "nope", Path: "x", SMB: true}); !errors.Is(err, ErrNotFound) {
		t.Errorf("update missing = %v", err)
	}
	if _, err := s.UpdateShare(Share{Name: "docs", Path: "..", SMB: true}); !errors.Is(err, ErrInvalid) {
		t.Errorf("update invalid = %v", err)
	}
	if err := s.RemoveShare("docs"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveShare("docs"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `share "docs"`) {
		t.Errorf("remove twice = %v", err)
	}
	if _, err := s.GetShare("docs"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get removed = %v", err)
	}
}

func TestAddShareCopiesClients(t *testing.T) {
	s, _ := openTemp(t)
	clients := []string{"192.0.2.1"}
	sh, _ := s.AddShare(Share{Name: "c", Path: "c", NFS: true, Clients: clients})
	clients[0] = "changed"
	if sh.Clients[0] != "192.0.2.1" {
		t.Error("returned share aliases the caller's slice")
	}
}

func TestConcurrentAddShareUniqueFSIDs(t *testing.T) {
	s, _ := openTemp(t)
	const n = 20
	fsids := make(chan uint64, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			sh, err := s.AddShare(Share{Name: "s" + string(rune('a'+i)), Path: "p", NFS: true})
			errs <- err
			fsids <- sh.FSID
		}(i)
	}
	seen := map[uint64]bool{}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		id := <-fsids
		if seen[id] {
			t.Errorf("fsid %d handed out twice", id)
		}
		seen[id] = true
	}
}
