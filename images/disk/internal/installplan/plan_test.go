package installplan

import (
	"strings"
	"testing"

	"ftnas/raid"
)

func TestCheck(t *testing.T) {
	l, err := raid.Plan([]raid.Disk{{Name: "vda", Size: 8 * raid.GiB}, {Name: "vdb", Size: 8 * raid.GiB}}, raid.LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	good := Image{Role: raid.RoleRootA, Device: "/dev/vdc", Size: 4096, SHA256: strings.Repeat("a", 64)}
	if err := (Plan{Layout: l, Images: []Image{good}}).Check(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Plan{
		{},
		{Layout: l, Images: []Image{{Role: "root-c", Device: "/dev/vdc", Size: 1, SHA256: good.SHA256}}},
		{Layout: l, Images: []Image{{Role: raid.RoleRootA, Device: "vdc", Size: 1, SHA256: good.SHA256}}},
		{Layout: l, Images: []Image{{Role: raid.RoleRootA, Device: "/dev/vdc", Size: 0, SHA256: good.SHA256}}},
		{Layout: l, Images: []Image{{Role: raid.RoleRootA, Device: "/dev/vdc", Size: 1, SHA256: "abc"}}},
	} {
		if err := bad.Check(); err == nil {
			t.Errorf("Check(%+v) accepted", bad.Images)
		}
	}
}

func TestParseSummary(t *testing.T) {
	s, err := ParseSummary(`{"arrays":[{"role":"root-a","name":"ftnas-root-a","uuid":"u","level":"raid1","members":2,"size":1024,"image":"ab"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Arrays) != 1 || s.Arrays[0] != (Array{Role: "root-a", Name: "ftnas-root-a", UUID: "u", Level: "raid1", Members: 2, Size: 1024, Image: "ab"}) {
		t.Errorf("ParseSummary = %+v", s)
	}
	if _, err := ParseSummary("{"); err == nil {
		t.Error("ParseSummary accepted broken JSON")
	}
}
