package appliance

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ftnas/appliance/store"
	"ftnas/raid"
)

// TestScrubSchedule drives the schedule with explicit times over the
// captured sysfs tree and the real store: baselines first, a check when
// one is due (never while another array syncs), the result reported when
// it ends, and the times shown in the status.
func TestScrubSchedule(t *testing.T) {
	ctx := context.Background()
	b, md, root := newRaidBackend(t, nil)
	var logs bytes.Buffer
	b.raid.log = slog.New(slog.NewTextHandler(&logs, nil))
	st, err := store.Open(filepath.Join(t.TempDir(), "ftnas.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b.st, b.cfg = st, &Config{}
	every := raid.DefaultScrubEvery
	attr := func(name string) string {
		v, _ := os.ReadFile(filepath.Join(root, "block", name))
		return strings.TrimSpace(string(v))
	}
	set := func(name, v string) {
		if err := os.WriteFile(filepath.Join(root, "block", name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

	// First sight: baselines for the redundant arrays, no check.
	b.raid.scrubTick(ctx, st, t0, every)
	for _, a := range []string{"md0", "md1"} {
		if got, ok := lastScrub(st, a); !ok || !got.Equal(t0) {
			t.Errorf("%s baseline = %v, %v; want %v", a, got, ok, t0)
		}
	}
	if _, ok := lastScrub(st, "md127"); ok {
		t.Error("an inactive array got a baseline")
	}
	if got := attr("md0/md/sync_action"); got != "idle" {
		t.Fatalf("md0 checked at first sight: sync_action %q", got)
	}

	// A month later md0 is due, but md1 still recovers on the same disks.
	later := t0.Add(every)
	b.raid.scrubTick(ctx, st, later, every)
	if got := attr("md0/md/sync_action"); got != "idle" {
		t.Fatalf("md0 checked while md1 recovers: sync_action %q", got)
	}
	// md1 done (but still degraded: no check for it); md0 is checked.
	set("md1/md/sync_action", "idle")
	set("md1/md/sync_completed", "none")
	b.raid.scrubTick(ctx, st, later, every)
	if got := attr("md0/md/sync_action"); got != "check" {
		t.Fatalf("due md0: sync_action %q, want check", got)
	}
	if got, _ := lastScrub(st, "md0"); !got.Equal(later) {
		t.Errorf("md0 last check %v, want %v", got, later)
	}
	if len(md.calls) != 0 {
		t.Errorf("the schedule ran mdadm: %q", md.calls)
	}

	// The check ends with mismatches: reported; nothing new starts.
	set("md0/md/sync_action", "idle")
	set("md0/md/mismatch_cnt", "256")
	b.raid.scrubTick(ctx, st, later.Add(time.Hour), every)
	if !strings.Contains(logs.String(), "raid check finished: copies differ") || !strings.Contains(logs.String(), "mismatch_sectors=256") {
		t.Errorf("finished check with mismatches not reported: %s", logs.String())
	}
	if got := attr("md0/md/sync_action"); got != "idle" {
		t.Errorf("md0 checked again right after its check: %q", got)
	}

	// The status shows the last and next check.
	s, err := b.RaidStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range s.Arrays {
		if a.Name == "md0" && (!a.LastCheck.Equal(later) || !a.NextCheck.Equal(later.Add(every))) {
			t.Errorf("md0 status: last %v next %v; want %v, %v", a.LastCheck, a.NextCheck, later, later.Add(every))
		}
	}

	// Off: nothing starts however old the last check.
	b.raid.scrubTick(ctx, st, later.Add(10*every), 0)
	if got := attr("md0/md/sync_action"); got != "idle" {
		t.Errorf("schedule off, md0 checked: %q", got)
	}
	// A check by hand counts for the schedule.
	if _, err := b.ScrubRaid(ctx, "md0"); err != nil {
		t.Fatal(err)
	}
	if got, _ := lastScrub(st, "md0"); got.Equal(later) {
		t.Errorf("a check by hand left the last check at %v", got)
	}
}
