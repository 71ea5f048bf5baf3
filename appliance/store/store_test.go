package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "ftnas.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	s.now = func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }
	return s, path
}

func TestOpenCreatesFile(t *testing.T) {
	s, path := openTemp(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	leftovers, _ := filepath.Glob(path + ".new-*")
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
	err = s.DB().View(func(tx *bbolt.Tx) error {
		v := tx.Bucket([]byte(bucketMeta)).Get([]byte(keySchemaVersion))
		if binary.BigEndian.Uint64(v) != 1 {
			t.Errorf("schema version = %x", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != path {
		t.Errorf("Path() = %q", s.Path())
	}
}

// assertRefused opens path, expects an error containing each of want, and
// checks that the file's bytes did not change.
func assertRefused(t *testing.T, path string, want ...string) {
	t.Helper()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fiBefore, _ := os.Stat(path)
	s, err := Open(path, nil)
	if err == nil {
		s.Close()
		t.Fatalf("Open(%s) succeeded, want refusal", path)
	}
	t.Logf("refusal: %v", err)
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("Open changed the refused file's contents")
	}
	fiAfter, _ := os.Stat(path)
	if !fiAfter.ModTime().Equal(fiBefore.ModTime()) || fiAfter.Size() != fiBefore.Size() {
		t.Errorf("Open touched the refused file: %v/%d -> %v/%d", fiBefore.ModTime(), fiBefore.Size(), fiAfter.ModTime(), fiAfter.Size())
	}
}

func TestOpenRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ftnas.db")
	junk := make([]byte, 64<<10)
	rand.Read(junk)
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	assertRefused(t, path, path, "not a bbolt database", "move it aside")
}

func TestOpenRefusesTextFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ftnas.db")
	os.WriteFile(path, []byte("[global]\nworkgroup = X\n"), 0o600)
	assertRefused(t, path, "not a bbolt database")
}

func TestOpenRefusesEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ftnas.db")
	os.WriteFile(path, nil, 0o600)
	assertRefused(t, path, "is empty")
}

func TestOpenRefusesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ftnas.db")
	os.Mkdir(path, 0o700)
	_, err := Open(path, nil)
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Open(dir) = %v", err)
	}
}

// boltFile makes a bbolt file at path with fn's changes.
func boltFile(t *testing.T, path string, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesMissingMetaBucket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	boltFile(t, path, func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket([]byte("journal"))
		return err
	})
	assertRefused(t, path, "not a ftnas state file", `"meta"`)
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	s, path := openTemp(t)
	s.Close()
	boltFile(t, path, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(keySchemaVersion), u64(SchemaVersion+1))
	})
	assertRefused(t, path, "schema version 2", "newer than this nasd understands (1)")
}

func TestOpenRefusesBadSchemaVersion(t *testing.T) {
	s, path := openTemp(t)
	s.Close()
	boltFile(t, path, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(keySchemaVersion), []byte("1"))
	})
	assertRefused(t, path, "no valid schema version")
}

func TestOpenRefusesCorruptPage(t *testing.T) {
	s, path := openTemp(t)
	for i := 0; i < 50; i++ {
		if _, err := s.AddShare(Share{Name: "share" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Path: "p", SMB: true}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// Smash every page past the two meta pages and the freelist: the meta
	// pages stay valid, so only a check of the tree finds it.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps := os.Getpagesize()
	for off := 3 * ps; off < len(raw); off++ {
		raw[off] ^= 0x5a
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	assertRefused(t, path, "corrupt", "restore it from a backup")
}

func TestOpenRefusesCorruptLeaf(t *testing.T) {
	s, path := openTemp(t)
	for i := 0; i < 60; i++ {
		if _, err := s.AddShare(Share{Name: "share" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Path: "p", SMB: true}); err != nil {
			t.Fatal(err)
		}
	}
	var leaves []int
	err := s.DB().View(func(tx *bbolt.Tx) error {
		for id := 0; ; id++ {
			pi, err := tx.Page(id)
			if err != nil || pi == nil {
				return err
			}
			if pi.Type == "leaf" && pi.Count > 10 {
				leaves = append(leaves, id)
			}
		}
	})
	if err != nil || len(leaves) == 0 {
		t.Fatalf("no leaf page found: %v", err)
	}
	s.Close()
	raw, _ := os.ReadFile(path)
	ps := os.Getpagesize()
	for _, id := range leaves {
		// Swap the first and last element headers: keys go out of order
		// while page and meta checksums (there are none for leaves) pass.
		off := id*ps + 16
		first := append([]byte{}, raw[off:off+16]...)
		copy(raw[off:off+16], raw[off+16*10:off+16*11])
		copy(raw[off+16*10:off+16*11], first)
	}
	os.WriteFile(path, raw, 0o600)
	assertRefused(t, path, "is corrupt")
}

func TestOpenRefusesCorruptMeta(t *testing.T) {
	s, path := openTemp(t)
	s.Close()
	raw, _ := os.ReadFile(path)
	ps := os.Getpagesize()
	raw[40] ^= 0xff    // meta page 0
	raw[ps+40] ^= 0xff // meta page 1
	os.WriteFile(path, raw, 0o600)
	assertRefused(t, path, "not a bbolt database or is corrupt")
}

func TestOpenRefusesLockedFile(t *testing.T) {
	s, path := openTemp(t)
	if _, err := s.AddShare(Share{Name: "a", Path: "a", NFS: true}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	assertRefused(t, path, "in use by another nasd?", path)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusal took %v", d)
	}
	// The holder is unharmed.
	if _, err := s.GetShare("a"); err != nil {
		t.Errorf("holder lost its data: %v", err)
	}
}

func TestReopenPersists(t *testing.T) {
	s, path := openTemp(t)
	sh, err := s.AddShare(Share{Name: "Media", Path: "media", NFS: true, SMB: true, RootSquash: true, Clients: []string{"192.0.2.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	u := User{Name: "alice"}
	if err := u.SetPassword("pw1"); err != nil {
		t.Fatal(err)
	}
	u, err = s.AddUser(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetSetting("hostname", "nas1"); err != nil {
		t.Fatal(err)
	}
	id, err := s.AllocIDs(10)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(path, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	got, err := s2.GetShare("media")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Media" || got.FSID != sh.FSID || !got.Created.Equal(sh.Created) || len(got.Clients) != 1 || !got.RootSquash {
		t.Errorf("share after reopen = %+v, want %+v", got, sh)
	}
	gu, err := s2.GetUser("alice")
	if err != nil {
		t.Fatal(err)
	}
	if gu.UID != u.UID || !CheckPassword(gu.PasswordHash, "pw1") || gu.NTHash != NTHash("pw1") {
		t.Errorf("user after reopen = %+v", gu)
	}
	if v, ok, err := s2.Setting("hostname"); v != "nas1" || !ok || err != nil {
		t.Errorf("setting after reopen = %q %v %v", v, ok, err)
	}
	// Counters persist: nothing is handed out twice.
	id2, err := s2.AllocIDs(1)
	if err != nil || id2 != id+10 {
		t.Errorf("AllocIDs after reopen = %d, %v; want %d", id2, err, id+10)
	}
	sh2, err := s2.AddShare(Share{Name: "b", Path: "b", NFS: true})
	if err != nil || sh2.FSID != sh.FSID+1 {
		t.Errorf("next FSID after reopen = %d, %v; want %d", sh2.FSID, err, sh.FSID+1)
	}
	u2 := User{Name: "bob"}
	u2.SetPassword("pw2")
	u2, err = s2.AddUser(u2)
	if err != nil || u2.UID != u.UID+1 {
		t.Errorf("next UID after reopen = %d, %v; want %d", u2.UID, err, u.UID+1)
	}
}

func TestAllocIDs(t *testing.T) {
	s, _ := openTemp(t)
	a, err := s.AllocIDs(1)
	if err != nil || a != 2 {
		t.Fatalf("first AllocIDs(1) = %d, %v; want 2", a, err)
	}
	b, err := s.AllocIDs(1000)
	if err != nil || b != 3 {
		t.Fatalf("AllocIDs(1000) = %d, %v; want 3", b, err)
	}
	c, _ := s.AllocIDs(1)
	if c != 1003 {
		t.Fatalf("AllocIDs after a range = %d, want 1003", c)
	}
	if _, err := s.AllocIDs(0); !errors.Is(err, ErrInvalid) {
		t.Errorf("AllocIDs(0) = %v, want ErrInvalid", err)
	}
	if _, err := s.AllocIDs(^uint64(0)); err == nil || !strings.Contains(err.Error(), "overflow") {
		t.Errorf("AllocIDs(max) = %v, want overflow", err)
	}
	if d, _ := s.AllocIDs(1); d != 1004 {
		t.Errorf("failed allocation moved the counter: next = %d", d)
	}
	// Inside the caller's transaction: a rolled-back reservation is undone,
	// a committed one sticks.
	boom := errors.New("boom")
	err = s.DB().Update(func(tx *bbolt.Tx) error {
		if id, err := AllocIDsTx(tx, 5); err != nil || id != 1005 {
			t.Errorf("AllocIDsTx = %d, %v", id, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	s.DB().Update(func(tx *bbolt.Tx) error {
		id, err := AllocIDsTx(tx, 5)
		if err != nil || id != 1005 {
			t.Errorf("AllocIDsTx after rollback = %d, %v; want 1005", id, err)
		}
		return nil
	})
	if e, _ := s.AllocIDs(1); e != 1010 {
		t.Errorf("AllocIDs after AllocIDsTx = %d, want 1010", e)
	}
}

func TestSettings(t *testing.T) {
	s, _ := openTemp(t)
	if _, ok, err := s.Setting("x"); ok || err != nil {
		t.Errorf("unset setting: ok=%v err=%v", ok, err)
	}
	if err := s.SetSetting("x", ""); err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := s.Setting("x"); !ok || v != "" {
		t.Errorf("empty value: %q %v, want set", v, ok)
	}
	s.SetSetting("x", "y")
	if v, _, _ := s.Setting("x"); v != "y" {
		t.Errorf("Setting = %q", v)
	}
	if err := s.DeleteSetting("x"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Setting("x"); ok {
		t.Error("setting still set after delete")
	}
	if err := s.SetSetting("", "v"); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty key: %v", err)
	}
	if _, _, err := s.Setting(strings.Repeat("k", 300)); !errors.Is(err, ErrInvalid) {
		t.Errorf("long key: %v", err)
	}
}

func TestChangedClosesOnCommitOnly(t *testing.T) {
	s, _ := openTemp(t)
	ch := s.Changed()
	select {
	case <-ch:
		t.Fatal("Changed is closed before any change")
	default:
	}
	// A refused change commits nothing and tells nobody.
	if _, err := s.AddShare(Share{Name: "bad/name", Path: "x", NFS: true}); err == nil {
		t.Fatal("AddShare accepted a name with a slash")
	}
	select {
	case <-ch:
		t.Fatal("Changed closed by a refused change")
	default:
	}
	if _, err := s.AddShare(Share{Name: "media", Path: "media", NFS: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("Changed not closed by a committed change")
	}
	next := s.Changed()
	if next == ch {
		t.Fatal("Changed returned the closed channel again")
	}
	select {
	case <-next:
		t.Fatal("the new Changed channel is already closed")
	default:
	}
}
