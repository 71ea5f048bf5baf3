package raid_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"ftnas/raid"
)

// TestQEMUAdopt runs internal/adoptguest: two disks partitioned alike
// with two RAID1 arrays and an ESP, the second disk treated as dead, and
// raid.Adopter turning a blank third disk into a member disk copied from
// the first. It checks the refusal of a non-blank disk, the rebuild, the
// data on the adopted disk alone, the ESP copy, the partition table, and
// that SyncESP carries an update of the first disk's ESP to the new one.
func TestQEMUAdopt(t *testing.T) {
	vm, _ := mdGuest(t, "adopttest", "ftnas/raid/internal/adoptguest", []string{"a", "b", "c"}, false, 90*time.Second)
	m := vm.MustExpect(regexp.MustCompile(`(?m)^adopt: summary (\{.*\})\r?$`))
	vm.MustPass()
	var s struct {
		RefusedPartitioned string             `json:"refused_partitioned"`
		VdbUnchanged       bool               `json:"vdb_unchanged"`
		From               string             `json:"from"`
		Added              []raid.AdoptJoin   `json:"added"`
		AdoptS             float64            `json:"adopt_s"`
		RebuildS           float64            `json:"rebuild_s"`
		Rebuilt            []raid.ArrayStatus `json:"rebuilt"`
		DataOK             bool               `json:"data_ok"`
		ESPHashes          []string           `json:"esp_hashes"`
		ESPPatternHash     string             `json:"esp_pattern_hash"`
		TableDiff          string             `json:"table_diff"`
		GUIDsFresh         bool               `json:"guids_fresh"`
		DiskGUIDs          []string           `json:"disk_guids"`
		ESPSync            []raid.ESPSync     `json:"esp_sync"`
		ESPUpdated         []string           `json:"esp_updated"`
		ESPUpdateHash      string             `json:"esp_update_hash"`
	}
	if err := json.Unmarshal([]byte(m[1]), &s); err != nil {
		t.Fatalf("summary %s: %v", m[1], err)
	}
	t.Logf("adopt %.2fs, adopt + rebuild %.2fs (24 + 35 MiB members, TCG); refusal: %s", s.AdoptS, s.RebuildS, s.RefusedPartitioned)
	if !strings.Contains(s.RefusedPartitioned, "vdb is not blank: it has partitions vdb1, vdb2, vdb3") || !s.VdbUnchanged {
		t.Errorf("adopting the partitioned vdb: %q, vdb unchanged %v; want a refusal naming its partitions, nothing written", s.RefusedPartitioned, s.VdbUnchanged)
	}
	want := []raid.AdoptJoin{{Number: 2, Array: "md0", Device: "/dev/vdc2", Source: "/dev/vda2"}, {Number: 3, Array: "md1", Device: "/dev/vdc3", Source: "/dev/vda3"}}
	if s.From != "vda" || len(s.Added) != 2 || s.Added[0] != want[0] || s.Added[1] != want[1] {
		t.Errorf("adopted from %q, added %+v; want from vda, %+v", s.From, s.Added, want)
	}
	if len(s.Rebuilt) != 2 {
		t.Fatalf("rebuilt arrays: %+v", s.Rebuilt)
	}
	for i, a := range s.Rebuilt {
		vdc, ok := a.Member("vdc" + string(rune('2'+i)))
		if a.Degraded != 0 || len(a.Members) != 2 || !ok || !vdc.InSync() || a.SyncAction != raid.SyncIdle {
			t.Errorf("%s after the rebuild: %+v; want clean with vda and vdc in sync", a.Name, a)
		}
	}
	if !s.DataOK {
		t.Error("vdc alone does not hold the arrays' data")
	}
	if len(s.ESPHashes) != 2 || s.ESPHashes[0] != s.ESPPatternHash || s.ESPHashes[1] != s.ESPPatternHash {
		t.Errorf("ESP hashes vda, vdc = %q; want both %s", s.ESPHashes, s.ESPPatternHash)
	}
	if e := s.ESPSync; len(e) != 2 || e[0].Disk != "vda" || e[1].Disk != "vdc" || !e[1].Copied ||
		e[1].Before != s.ESPPatternHash || e[1].After != s.ESPUpdateHash {
		t.Errorf("ESP sync after updating vda's: %+v; want vdc copied from %s to %s", e, s.ESPPatternHash, s.ESPUpdateHash)
	}
	if len(s.ESPUpdated) != 2 || s.ESPUpdated[0] != s.ESPUpdateHash || s.ESPUpdated[1] != s.ESPUpdateHash {
		t.Errorf("ESP hashes vda, vdc after the sync = %q; want both %s", s.ESPUpdated, s.ESPUpdateHash)
	}
	if s.TableDiff != "" || !s.GUIDsFresh {
		t.Errorf("vdc's table: diff %q, GUIDs fresh %v (disk GUIDs %q)", s.TableDiff, s.GUIDsFresh, s.DiskGUIDs)
	}
}
