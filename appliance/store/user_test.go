package store

import (
	"errors"
	"strings"
	"testing"
)

func newUser(t *testing.T, name, pw string) User {
	t.Helper()
	u := User{Name: name}
	if err := u.SetPassword(pw); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestAddUser(t *testing.T) {
	s, _ := openTemp(t)
	a, err := s.AddUser(newUser(t, "alice", "pw-a"))
	if err != nil {
		t.Fatal(err)
	}
	if a.UID != FirstUID || a.GID != FirstUID || a.Created.IsZero() {
		t.Errorf("first user = %+v, want uid=gid=10000", a)
	}
	b, _ := s.AddUser(newUser(t, "bob", "pw-b"))
	if b.UID != FirstUID+1 || b.GID != b.UID {
		t.Errorf("second user = %+v", b)
	}
	if _, err := s.AddUser(newUser(t, "alice", "x")); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate = %v", err)
	}
	// UIDs are never reused.
	if err := s.RemoveUser("bob"); err != nil {
		t.Fatal(err)
	}
	c, _ := s.AddUser(newUser(t, "bob", "pw-b"))
	if c.UID != FirstUID+2 {
		t.Errorf("uid after removal = %d, want %d", c.UID, FirstUID+2)
	}
	got, err := s.GetUser("alice")
	if err != nil || !CheckPassword(got.PasswordHash, "pw-a") || got.NTHash != NTHash("pw-a") {
		t.Errorf("GetUser = %+v, %v", got, err)
	}
	l, _ := s.ListUsers()
	if len(l) != 2 || l[0].Name != "alice" || l[1].Name != "bob" {
		t.Errorf("ListUsers = %+v", l)
	}
}

func TestAddUserRefusesBadInput(t *testing.T) {
	s, _ := openTemp(t)
	good := newUser(t, "carol", "pw")
	cases := []struct {
		u    User
		want string
	}{
		{User{Name: "carol"}, "password hash"},
		{User{Name: "carol", PasswordHash: "plaintext", NTHash: good.NTHash}, "password hash"},
		{User{Name: "carol", PasswordHash: good.PasswordHash, NTHash: "x"}, "NT hash"},
		{User{Name: "Root", PasswordHash: good.PasswordHash, NTHash: good.NTHash}, "user name"},
		{User{Name: "root", PasswordHash: good.PasswordHash, NTHash: good.NTHash}, "reserved"},
		{User{Name: "carol", PasswordHash: good.PasswordHash, NTHash: good.NTHash, UID: 500}, "below 10000"},
	}
	for _, c := range cases {
		_, err := s.AddUser(c.u)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("AddUser(%s) = %v, want ErrInvalid mentioning %q", c.u.Name, err, c.want)
		}
	}
	if l, _ := s.ListUsers(); len(l) != 0 {
		t.Errorf("refused users were stored: %+v", l)
	}
}

func TestAddUserWithGivenUID(t *testing.T) {
	s, _ := openTemp(t)
	u := newUser(t, "rep", "pw")
	u.UID = 10050
	got, err := s.AddUser(u)
	if err != nil || got.UID != 10050 || got.GID != 10050 {
		t.Fatalf("AddUser(uid 10050) = %+v, %v", got, err)
	}
	u2 := newUser(t, "rep2", "pw")
	u2.UID = 10050
	if _, err := s.AddUser(u2); !errors.Is(err, ErrExists) {
		t.Errorf("taken uid = %v", err)
	}
	n, _ := s.AddUser(newUser(t, "next", "pw"))
	if n.UID != 10051 {
		t.Errorf("counter did not move past given uid: %d", n.UID)
	}
}

func TestUpdateUser(t *testing.T) {
	s, _ := openTemp(t)
	a, _ := s.AddUser(newUser(t, "alice", "old"))
	u := newUser(t, "alice", "new")
	u.UID = 1
	got, err := s.UpdateUser(u)
	if err != nil {
		t.Fatal(err)
	}
	if got.UID != a.UID || !got.Created.Equal(a.Created) {
		t.Errorf("UpdateUser changed uid/created: %+v", got)
	}
	stored, _ := s.GetUser("alice")
	if CheckPassword(stored.PasswordHash, "old") || !CheckPassword(stored.PasswordHash, "new") || stored.NTHash != NTHash("new") {
		t.Error("password not updated")
	}
	if _, err := s.UpdateUser(newUser(t, "ghost", "x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("update missing = %v", err)
	}
	if err := s.RemoveUser("ghost"); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove missing = %v", err)
	}
	if _, err := s.GetUser("ghost"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get missing = %v", err)
	}
}

func TestUserLogValueHidesHashes(t *testing.T) {
	u := newUser(t, "alice", "pw")
	v := u.LogValue().String()
	if strings.Contains(v, u.NTHash) || strings.Contains(v, "argon2") || !strings.Contains(v, "alice") {
		t.Errorf("LogValue = %s", v)
	}
}
