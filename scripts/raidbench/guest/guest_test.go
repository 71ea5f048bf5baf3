package main

import (
	"strings"
	"testing"

	"ftnas/raid"
)

func TestFreshGUIDs(t *testing.T) {
	dump := `label: gpt
label-id: 6D1B4F4E-2C1F-4C4B-9D0E-0A0B0C0D0E0F
device: /dev/vda
unit: sectors
first-lba: 2048

/dev/vda1 : start=        2048, size=      131072, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=11111111-2222-3333-4444-555555555555, name="ftnas-esp"
/dev/vda2 : start=      133120, size=      393216, type=A19D880F-05FC-4D3B-A006-743F0F84911E, uuid=AAAAAAAA-2222-3333-4444-555555555555, name="ftnas-root-a"
`
	got := string(freshGUIDs([]byte(dump)))
	if strings.Contains(got, "label-id") || strings.Contains(got, "uuid=") {
		t.Errorf("GUIDs left in:\n%s", got)
	}
	for _, want := range []string{"label: gpt", "first-lba: 2048",
		`/dev/vda1 : start=        2048, size=      131072, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ftnas-esp"`,
		`type=A19D880F-05FC-4D3B-A006-743F0F84911E, name="ftnas-root-a"`} {
		if !strings.Contains(got, want) {
			t.Errorf("lost %q:\n%s", want, got)
		}
	}
}

func TestNoMembersOf(t *testing.T) {
	cond := noMembersOf("vdd")
	member := func(n string) raid.Member { return raid.Member{Name: n, State: []string{"in_sync"}} }
	for _, c := range []struct {
		a    raid.ArrayStatus
		want bool
	}{
		{raid.ArrayStatus{Degraded: 1, Members: []raid.Member{member("vda5"), member("vdb5"), member("vdc5")}}, true},
		{raid.ArrayStatus{Degraded: 1, Members: []raid.Member{member("vda5"), member("vdd5")}}, false},
		{raid.ArrayStatus{Degraded: 0, Members: []raid.Member{member("vda5"), member("vdb5")}}, false},
	} {
		if got := cond(c.a); got != c.want {
			t.Errorf("%+v: %v, want %v", c.a, got, c.want)
		}
	}
}
