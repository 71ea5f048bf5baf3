package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"ftnas/appliance/api"
	"ftnas/appliance/api/apitest"
	"ftnas/appliance/store"
)

// raidArrays are a healthy RAID1 and a degraded one rebuilding onto sdc2.
func raidArrays() []api.RaidArray {
	return []api.RaidArray{
		{Name: "md0", Level: "raid1", State: "clean", RaidDisks: 2, SyncAction: "idle", ETASeconds: -1, MismatchCount: 8,
			Members: []api.RaidMember{{Name: "sda2", Slot: 0, State: []string{"in_sync"}}, {Name: "sdb2", Slot: 1, State: []string{"in_sync"}, Errors: 3}}},
		{Name: "md1", Level: "raid1", State: "active", RaidDisks: 2, Degraded: 1, SyncAction: "recover", SyncProgress: 26.97,
			SyncSpeedKiB: 16384, ETASeconds: 3,
			Members: []api.RaidMember{{Name: "sda3", Slot: 0, State: []string{"in_sync"}}, {Name: "sdc3", Slot: 1, State: []string{"spare"}}}},
	}
}

func newRaidRig(t *testing.T) (*rig, *apitest.RaidFake) {
	f := apitest.NewRaidFake("nas1")
	r := newRig(t)
	r.h = api.NewHandler(f, nil)
	return r, f
}

func TestHandlerRaid(t *testing.T) {
	r, f := newRaidRig(t)

	// No arrays: an empty list, not an error or null.
	code, body, ct := r.call("GET", "/v1/raid", "")
	if code != 200 || ct != "application/json" || strings.TrimSpace(body) != `{"arrays":[]}` {
		t.Fatalf("GET /v1/raid without arrays = %d %q", code, body)
	}

	f.SetArrays(raidArrays()...)
	code, body, _ = r.call("GET", "/v1/raid", "")
	if code != 200 {
		t.Fatalf("GET /v1/raid = %d %s", code, body)
	}
	var raw struct {
		Arrays []map[string]any `json:"arrays"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil || len(raw.Arrays) != 2 {
		t.Fatalf("GET /v1/raid = %s: %v", body, err)
	}
	wantKeys := []string{"name", "level", "state", "raid_disks", "degraded", "sync_action", "sync_progress", "sync_delayed",
		"sync_speed_kib", "eta_seconds", "mismatch_count", "members"}
	for _, k := range wantKeys {
		if _, ok := raw.Arrays[0][k]; !ok {
			t.Errorf("array JSON lacks %q: %s", k, body)
		}
	}
	if len(raw.Arrays[0]) != len(wantKeys) {
		t.Errorf("array JSON has extra keys: %s", body)
	}
	for _, k := range []string{`"degraded":1`, `"sync_action":"recover"`, `"sync_progress":26.97`, `"eta_seconds":3`,
		`{"name":"sdb2","slot":1,"state":["in_sync"],"errors":3}`, `"mismatch_count":8`} {
		if !strings.Contains(body, k) {
			t.Errorf("GET /v1/raid = %s; lacks %s", body, k)
		}
	}

	code, body, _ = r.call("POST", "/v1/raid/md0/scrub", "")
	if code != 202 || !strings.Contains(body, `"sync_action":"check"`) || !strings.Contains(body, `"name":"md0"`) {
		t.Errorf("scrub md0 = %d %s", code, body)
	}
	code, body, _ = r.call("POST", "/v1/raid/md0/replace", `{"old":"sdb2","new":"/dev/sdc2"}`)
	if code != 202 || !strings.Contains(body, `{"name":"sdc2","slot":-1,"state":["spare","replacement"],"errors":0}`) {
		t.Errorf("replace = %d %s", code, body)
	}
	if want := []string{"scrub md0", "replace md0 sdb2 sdc2"}; !slices.Equal(f.Done(), want) {
		t.Errorf("actions = %q, want %q", f.Done(), want)
	}

	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/v1/raid/md9/scrub", "", 404, "raid scrub md9: not found: no such md array"},
		{"POST", "/v1/raid/md1/scrub", "", 400, "degraded"},
		{"POST", "/v1/raid/md0/scrub", "", 400, "busy with recover; try again when it is idle"},
		{"POST", "/v1/raid/md9/replace", `{"old":"a","new":"b"}`, 404, "no such md array"},
		{"POST", "/v1/raid/md1/replace", `{"old":"sdx9","new":"sdd3"}`, 404, "sdx9 is not a member"},
		{"POST", "/v1/raid/md1/replace", `{"old":"sda3","new":"sdc3"}`, 400, "sdc3 is already a member"},
		{"POST", "/v1/raid/md1/replace", `{"old":"sda3"}`, 400, "name the member"},
		{"POST", "/v1/raid/md1/replace", `{"old":"sda3","new":"sdd3","force":true}`, 400, `unknown field "force"`},
		{"POST", "/v1/raid/md1/replace", `{"old":1}`, 400, `field "old" must be a string`},
		{"POST", "/v1/raid", "", 405, "use GET"},
		{"GET", "/v1/raid/md0/scrub", "", 405, "use POST"},
		{"DELETE", "/v1/raid/md0/replace", "", 405, "use POST"},
	} {
		code, body, _ := r.call(c.method, c.path, c.body)
		if code != c.code || !strings.Contains(errMsg(t, body), c.want) {
			t.Errorf("%s %s %s = %d %s; want %d mentioning %q", c.method, c.path, c.body, code, body, c.code, c.want)
		}
	}
	// A replace without a JSON body type is refused before the backend.
	if code, body, _ := r.call("POST", "/v1/raid/md1/replace", ""); code != 415 {
		t.Errorf("replace without a body = %d %s", code, body)
	}

	f.FailWith(errors.New("read /sys/block: input/output error"))
	if code, body, _ := r.call("GET", "/v1/raid", ""); code != 500 || !strings.Contains(errMsg(t, body), "input/output error") {
		t.Errorf("failing backend = %d %s", code, body)
	}
}

func TestHandlerWithoutRaidBackend(t *testing.T) {
	r := newRig(t)
	code, body, _ := r.call("GET", "/v1/raid", "")
	if code != 404 || !strings.Contains(errMsg(t, body), "no such endpoint: GET /v1/raid") {
		t.Errorf("GET /v1/raid on a plain backend = %d %s", code, body)
	}
}

func TestClientRaid(t *testing.T) {
	f := apitest.NewRaidFake("nas1")
	c := api.NewClient(apitest.Serve(t, f, nil))
	defer c.Close()
	ctx := context.Background()
	st, err := c.RaidStatus(ctx)
	if err != nil || st.Arrays == nil || len(st.Arrays) != 0 {
		t.Fatalf("RaidStatus without arrays = %+v, %v; want an empty, non-nil list", st, err)
	}
	f.SetArrays(raidArrays()...)
	st, err = c.RaidStatus(ctx)
	if err != nil || len(st.Arrays) != 2 || st.Arrays[1].MembersUp() != 1 || st.Arrays[0].MembersUp() != 2 || st.Arrays[1].ETASeconds != 3 {
		t.Fatalf("RaidStatus = %+v, %v", st, err)
	}
	a, err := c.ScrubRaid(ctx, "md0")
	if err != nil || a.SyncAction != "check" {
		t.Errorf("ScrubRaid = %+v, %v", a, err)
	}
	if _, err := c.ScrubRaid(ctx, "md9"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ScrubRaid(md9) = %v; want ErrNotFound", err)
	}
	if _, err := c.ScrubRaid(ctx, "md1"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("ScrubRaid(degraded md1) = %v; want ErrInvalid", err)
	}
	a, err = c.ReplaceRaidMember(ctx, "md1", api.RaidReplaceRequest{Old: "sda3", New: "sdd3"})
	if err != nil || len(a.Members) != 3 || a.Members[2].Name != "sdd3" {
		t.Errorf("ReplaceRaidMember = %+v, %v", a, err)
	}
	if _, err := c.ReplaceRaidMember(ctx, "md1", api.RaidReplaceRequest{Old: "sdq1", New: "sdd4"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReplaceRaidMember(not a member) = %v; want ErrNotFound", err)
	}
}
