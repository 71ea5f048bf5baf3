package raid_test

import (
	"slices"
	"strings"
	"testing"

	"ftnas/raid"
)

func TestESPEntryAndExtents(t *testing.T) {
	src, _ := healthy(t)
	e, err := raid.ESPEntry(src)
	if err != nil || e.Number != 1 {
		t.Fatalf("ESPEntry = %+v, %v", e, err)
	}
	other := src
	other.Disk = "sdb"
	if e, err := raid.CheckESPExtents(src, other); err != nil || e.Number != 1 {
		t.Errorf("same layout: %+v, %v", e, err)
	}
	moved := other
	moved.Partitions = slices.Clone(other.Partitions)
	moved.Partitions[0].LastLBA--
	if _, err := raid.CheckESPExtents(src, moved); err == nil || !strings.Contains(err.Error(), "ESP of sdb (partition 1, LBA 2048-") {
		t.Errorf("moved ESP: %v", err)
	}
	none := other
	none.Partitions = other.Partitions[1:]
	if _, err := raid.CheckESPExtents(src, none); err == nil || !strings.Contains(err.Error(), "sdb has no ESP") {
		t.Errorf("no ESP: %v", err)
	}
	two := other
	two.Partitions = slices.Clone(other.Partitions)
	two.Partitions[2].Type = strings.ToLower(raid.TypeESP)
	if _, err := raid.ESPEntry(two); err == nil || !strings.Contains(err.Error(), "sdb has 2 ESPs") {
		t.Errorf("two ESPs: %v", err)
	}
}

func TestESPSyncTargets(t *testing.T) {
	_, arrays := healthy(t)
	arrays[0].Members = append(arrays[0].Members, raid.Member{Name: "sdc2", Slot: -1, State: []string{"spare"}})
	stopped := raid.ArrayStatus{Name: "md9", State: "inactive", Members: []raid.Member{{Name: "sdd1"}}}
	disks := map[string][]string{"sda": {"sda1", "sda2"}, "sdb": {"sdb1", "sdb2"}, "sdc": {"sdc1", "sdc2"}, "sdd": {"sdd1"}, "sde": nil}
	if got := raid.ESPSyncTargets(append(arrays, stopped), disks, "sda"); !slices.Equal(got, []string{"sdc"}) {
		t.Errorf("ESPSyncTargets = %q; want sdc (a member, spare or not); not sdb (no member), sdd (stopped array), sde", got)
	}
}
