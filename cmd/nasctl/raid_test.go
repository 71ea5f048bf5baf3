package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/api/apitest"
	"ftnas/appliance/store"
)

func newRaidCLI(t *testing.T) (*cli, *apitest.RaidFake) {
	c := newCLI(t)
	f := apitest.NewRaidFake("nas1")
	c.fake, c.sock = f.Fake, apitest.Serve(t, f, nil)
	return c, f
}

func TestRaidCommands(t *testing.T) {
	c, f := newRaidCLI(t)
	if out := c.ok("", "raid", "status"); out != "No md RAID arrays.\n" {
		t.Errorf("status without arrays = %q", out)
	}
	if out := c.ok("", "raid", "status", "--json"); out != "{\n  \"arrays\": []\n}\n" {
		t.Errorf("status --json without arrays = %q", out)
	}

	f.SetArrays(
		api.RaidArray{Name: "md0", Level: "raid1", State: "clean", RaidDisks: 2, SyncAction: "idle", ETASeconds: -1, MismatchCount: 128,
			LastCheck: time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC), NextCheck: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC),
			Members: []api.RaidMember{{Name: "sda2", Slot: 0, State: []string{"in_sync"}}, {Name: "sdb2", Slot: 1, State: []string{"in_sync"}, Errors: 7}}},
		api.RaidArray{Name: "md1", Level: "raid1", State: "active", RaidDisks: 2, Degraded: 1, SyncAction: "recover", SyncProgress: 25.4,
			SyncSpeedKiB: 16384, ETASeconds: 4000,
			Members: []api.RaidMember{{Name: "sda3", Slot: 0, State: []string{"in_sync"}}, {Name: "sdc3", Slot: 1, State: []string{"spare"}},
				{Name: "sdb3", Slot: -1, State: []string{"faulty"}, Errors: 12}}},
		api.RaidArray{Name: "md2", Level: "raid5", State: "active", RaidDisks: 3, SyncAction: "resync", SyncDelayed: true, ETASeconds: -1,
			Members: []api.RaidMember{{Name: "sda4", Slot: 0, State: []string{"in_sync"}}, {Name: "sdb4", Slot: 1, State: []string{"in_sync"}},
				{Name: "sdc4", Slot: 2, State: []string{"in_sync"}}}},
		api.RaidArray{Name: "md127", State: "inactive", ETASeconds: -1, Members: []api.RaidMember{{Name: "sde1", Slot: -1}}},
	)
	want := "" +
		"ARRAY  LEVEL  STATE             MEMBERS  SYNC              ETA   MISMATCHES\n" +
		"md0    raid1  clean             2/2      idle              -     128\n" +
		"md1    raid1  active, DEGRADED  1/2      recover 25.4%     1h6m  0\n" +
		"md2    raid5  active            3/3      resync (delayed)  -     0\n" +
		"md127  -      inactive          0/0      -                 -     0\n" +
		"\n" +
		"md0: sdb2 is in sync, 7 read errors corrected\n" +
		"md0: last checked 2026-11-01 03:00 UTC, next check 2026-12-01 03:00 UTC\n" +
		"md1: sdc3 is rebuilding into slot 1\n" +
		"md1: sdb3 is FAULTY, 12 read errors corrected; replace it: nasctl raid replace md1 sdb3 NEW\n" +
		"md127: sde1 is not in sync\n"
	if out := c.ok("", "raid", "status"); out != want {
		t.Errorf("raid status =\n%s\nwant\n%s", out, want)
	}

	out := c.ok("", "raid", "status", "--json")
	var st api.RaidStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Arrays) != 4 || st.Arrays[1].ETASeconds != 4000 ||
		st.Arrays[1].Members[2].Errors != 12 || st.Arrays[3].Members[0].State == nil {
		t.Errorf("raid status --json = %s (%v)", out, err)
	}

	if out := c.ok("", "raid", "scrub", "md0"); out != "Started a check of md0 (raid1, 2 members). Follow it with: nasctl raid status\n" {
		t.Errorf("raid scrub = %q", out)
	}
	if out := c.ok("", "raid", "replace", "md0", "/dev/sdb2", "sdd2"); out != "Replacing sdb2 in md0 with sdd2; md is rebuilding. Follow it with: nasctl raid status\n" {
		t.Errorf("raid replace = %q", out)
	}
	out = c.ok("", "--json", "raid", "replace", "md1", "sdb3", "sdd3")
	var arr api.RaidArray
	if err := json.Unmarshal([]byte(out), &arr); err != nil || arr.Name != "md1" || len(arr.Members) != 4 || arr.Members[3].Name != "sdd3" {
		t.Errorf("raid replace --json = %s (%v)", out, err)
	}
	if want := []string{"scrub md0", "replace md0 sdb2 sdd2", "replace md1 sdb3 sdd3"}; !slices.Equal(f.Done(), want) {
		t.Errorf("actions = %q, want %q", f.Done(), want)
	}

	c.fails("raid scrub md9: not found: no such md array", "", "raid", "scrub", "md9")
	c.fails("raid scrub md1: the array is degraded", "", "raid", "scrub", "md1")
	c.fails("busy with recover; try again when it is idle", "", "raid", "scrub", "md0")
	c.fails("sdx1 is not a member", "", "raid", "replace", "md1", "sdx1", "sdd4")
	c.fails("raid scrub: missing ARRAY", "", "raid", "scrub")
	c.fails("raid replace: missing ARRAY OLD NEW", "", "raid", "replace", "md0", "sda2")
	c.fails("raid status: too many arguments", "", "raid", "status", "md0")
}

// adoptFake is a RaidFake that also adopts disks: sdc and sdd are blank,
// anything else is refused like nasd refuses a disk that is not blank.
type adoptFake struct {
	*apitest.RaidFake
	mu   sync.Mutex
	reqs []api.RaidAdoptRequest
}

func (f *adoptFake) AdoptRaidDisk(_ context.Context, r api.RaidAdoptRequest) (api.RaidAdoptResult, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	f.mu.Unlock()
	disk := strings.TrimPrefix(r.Disk, "/dev/")
	switch disk {
	case "sdc", "sdd":
	case "sdq":
		return api.RaidAdoptResult{}, fmt.Errorf("raid: adopt: sdq: %w: no such block device", store.ErrNotFound)
	default:
		return api.RaidAdoptResult{}, fmt.Errorf("%w raid: adopt: refused: %s is not blank: it has partitions %s1", store.ErrInvalid, disk, disk)
	}
	from := strings.TrimPrefix(r.From, "/dev/")
	if from == "" {
		from = "sda"
	}
	return api.RaidAdoptResult{Disk: disk, From: from, ESPSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Added: []api.RaidAdoptJoin{{Partition: disk + "2", Array: "md0"}, {Partition: disk + "3", Array: "md1"}},
		Arrays: []api.RaidArray{{Name: "md0", Level: "raid1", State: "active", RaidDisks: 2, Degraded: 1, SyncAction: "recover",
			Members: []api.RaidMember{{Name: from + "2", Slot: 0, State: []string{"in_sync"}}, {Name: disk + "2", Slot: 1, State: []string{"spare"}}}}},
	}, nil
}

func (f *adoptFake) SyncRaidESP(_ context.Context, r api.RaidESPSyncRequest) (api.RaidESPSyncResult, error) {
	from := strings.TrimPrefix(r.From, "/dev/")
	switch from {
	case "":
		from = "sda"
	case "sdq":
		return api.RaidESPSyncResult{}, fmt.Errorf("raid: adopt: sdq: %w: no such block device", store.ErrNotFound)
	case "sdz":
		return api.RaidESPSyncResult{From: from, Disks: []api.RaidESPDisk{{Disk: from, Before: "1111", After: "1111"}}}, nil
	}
	return api.RaidESPSyncResult{From: from, Disks: []api.RaidESPDisk{
		{Disk: from, Before: "aaaabbbbccccdddd", After: "aaaabbbbccccdddd"},
		{Disk: "sdb", Before: "0000", After: "aaaabbbbccccdddd", Copied: true},
		{Disk: "sdc", Before: "aaaabbbbccccdddd", After: "aaaabbbbccccdddd"},
	}}, nil
}

func TestRaidESPSyncCommand(t *testing.T) {
	c := newCLI(t)
	f := &adoptFake{RaidFake: apitest.NewRaidFake("nas1")}
	c.fake, c.sock = f.Fake, apitest.Serve(t, f, nil)
	want := "ESP of sda (sha256 aaaabbbbcccc):\n  copied to sdb\n  already equal on sdc\n"
	if out := c.ok("", "raid", "esp-sync"); out != want {
		t.Errorf("raid esp-sync =\n%s\nwant\n%s", out, want)
	}
	if out := c.ok("", "raid", "esp-sync", "--from", "sdz"); out != "ESP of sdz (sha256 1111):\n  no other member disk\n" {
		t.Errorf("raid esp-sync alone = %q", out)
	}
	out := c.ok("", "--json", "raid", "esp-sync", "--from", "/dev/sdc")
	var res api.RaidESPSyncResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.From != "sdc" || len(res.Disks) != 3 || !res.Disks[1].Copied {
		t.Errorf("raid esp-sync --json = %s (%v)", out, err)
	}
	c.fails("sdq: not found", "", "raid", "esp-sync", "--from", "sdq")
	c.fails("raid esp-sync: too many arguments", "", "raid", "esp-sync", "sda")
}

func TestRaidAdoptCommand(t *testing.T) {
	c := newCLI(t)
	f := &adoptFake{RaidFake: apitest.NewRaidFake("nas1")}
	c.fake, c.sock = f.Fake, apitest.Serve(t, f, nil)

	want := "Adopted sdc: partitioned like sda, ESP copied (sha256 9f86d081884c).\n" +
		"  sdc2 added to md0\n" +
		"  sdc3 added to md1\n" +
		"md is rebuilding. Follow it with: nasctl raid status\n"
	if out := c.ok("", "raid", "adopt", "/dev/sdc"); out != want {
		t.Errorf("raid adopt =\n%s\nwant\n%s", out, want)
	}
	out := c.ok("", "--json", "raid", "adopt", "sdd", "--from", "sdb")
	var res api.RaidAdoptResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Disk != "sdd" || res.From != "sdb" || len(res.Added) != 2 ||
		len(res.Arrays) != 1 || res.Arrays[0].Members[1].Name != "sdd2" {
		t.Errorf("raid adopt --json = %s (%v)", out, err)
	}
	f.mu.Lock()
	reqs := slices.Clone(f.reqs)
	f.mu.Unlock()
	if want := []api.RaidAdoptRequest{{Disk: "/dev/sdc"}, {Disk: "sdd", From: "sdb"}}; !slices.Equal(reqs, want) {
		t.Errorf("requests = %+v, want %+v", reqs, want)
	}
	c.fails("sda is not blank: it has partitions sda1", "", "raid", "adopt", "sda")
	c.fails("sdq: not found: no such block device", "", "raid", "adopt", "sdq")
	c.fails("raid adopt: missing DISK", "", "raid", "adopt")
	c.fails("raid adopt: too many arguments", "", "raid", "adopt", "sdc", "sdd")

	// A server without adopt answers 404 for the route.
	c2, _ := newRaidCLI(t)
	c2.fails("no such endpoint: POST /v1/raid/adopt", "", "raid", "adopt", "sdc")
}
