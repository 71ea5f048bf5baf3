package configsync

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"ftnas/appliance/store"
)

func testUser(t testing.TB, name string, uid uint32) store.User {
	u := store.User{Name: name, UID: uid, GID: uid}
	if err := u.SetPassword("pw-" + name); err != nil {
		t.Fatal(err)
	}
	return u
}

func testSnapshot(t testing.TB) Snapshot {
	return Snapshot{
		Shares: []store.Share{
			{Name: "media", Path: "media", NFS: true, SMB: true, FSID: 1, Clients: []string{}},
			{Name: "docs", Path: "office/docs", SMB: true, FSID: 3, Clients: []string{"10.0.0.0/24"}},
		},
		Users: []store.User{testUser(t, "alice", 10000), testUser(t, "bob", 10002)},
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	want := testSnapshot(t)
	if err := Write(&buf, want); err != nil {
		t.Fatal(err)
	}
	got, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Shares) != 2 || got.Shares[1].FSID != 3 || got.Users[1].UID != 10002 || got.Users[0].NTHash != want.Users[0].NTHash {
		t.Fatalf("got %+v", got)
	}
}

func TestSnapshotRefusesBadInput(t *testing.T) {
	frame := func(body string) *bytes.Reader {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
		return bytes.NewReader(append(b, body...))
	}
	good := testSnapshot(t)
	for name, mod := range map[string]func(*Snapshot){
		"share without fsid":   func(s *Snapshot) { s.Shares[0].FSID = 0 },
		"share escaping":       func(s *Snapshot) { s.Shares[0].Path = "../etc" },
		"duplicate share name": func(s *Snapshot) { s.Shares[1].Name = "MEDIA" },
		"duplicate fsid":       func(s *Snapshot) { s.Shares[1].FSID = 1 },
		"system uid":           func(s *Snapshot) { s.Users[0].UID, s.Users[0].GID = 0, 0 },
		"gid differs":          func(s *Snapshot) { s.Users[0].GID = 5 },
		"duplicate uid":        func(s *Snapshot) { s.Users[1].UID, s.Users[1].GID = 10000, 10000 },
		"no hash":              func(s *Snapshot) { s.Users[0].NTHash = "" },
	} {
		s := testSnapshot(t)
		s.Shares = slices.Clone(good.Shares)
		s.Users = slices.Clone(good.Users)
		mod(&s)
		var buf bytes.Buffer
		if err := Write(&buf, s); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(&buf); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, r := range map[string]*bytes.Reader{
		"empty frame":   frame(""),
		"not json":      frame("hello"),
		"wrong version": frame(`{"version":2}`),
		"huge":          bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}),
		"cut":           bytes.NewReader([]byte{0, 0, 0, 9, '{'}),
	} {
		if _, err := Read(r); err == nil || !strings.HasPrefix(err.Error(), "configsync: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzReadSnapshot(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(&buf, testSnapshot(f)); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		// What is accepted is valid and survives a round trip.
		var out bytes.Buffer
		if err := Write(&out, s); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(&out); err != nil {
			t.Fatalf("accepted snapshot does not round-trip: %v", err)
		}
	})
}

func TestPlanConfig(t *testing.T) {
	want := testSnapshot(t)
	if p := PlanFor(want, want); !p.Empty() {
		t.Fatalf("equal configurations planned %+v", p)
	}
	have := testSnapshot(t)
	have.Shares = []store.Share{
		{Name: "media", Path: "media", NFS: true, SMB: true, FSID: 1, ReadOnly: true}, // changed
		{Name: "docs", Path: "office/docs", SMB: true, FSID: 7},                       // other fsid
		{Name: "old", Path: "old", NFS: true, FSID: 4},                                // gone on the master
	}
	have.Users = []store.User{
		testUser(t, "alice", 10000), // other password below
		testUser(t, "bob", 10005),   // other uid
		testUser(t, "carol", 10006), // gone
	}
	have.Users[0].NTHash = strings.Repeat("0", 32)
	p := PlanFor(have, want)
	if len(p.UpdateShares) != 1 || p.UpdateShares[0].Name != "media" ||
		len(p.AddShares) != 1 || p.AddShares[0].Name != "docs" || p.AddShares[0].FSID != 3 ||
		!slices.Equal(p.RemoveShares, []string{"docs", "old"}) {
		t.Fatalf("shares: %+v", p)
	}
	if len(p.UpdateUsers) != 1 || p.UpdateUsers[0].Name != "alice" ||
		len(p.AddUsers) != 1 || p.AddUsers[0].UID != 10002 ||
		!slices.Equal(p.RemoveUsers, []string{"bob", "carol"}) {
		t.Fatalf("users: %+v", p)
	}
}
