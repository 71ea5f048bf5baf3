package raid

import (
	"testing"
	"time"
)

func TestScrubDue(t *testing.T) {
	now := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	month := DefaultScrubEvery
	clean := func(name, level string) ArrayStatus {
		return ArrayStatus{Name: name, Level: level, State: "clean", SyncAction: SyncIdle, RaidDisks: 2}
	}
	degraded := clean("md1", "raid1")
	degraded.Degraded = 1
	resyncing := clean("md2", "raid5")
	resyncing.SyncAction = "resync"
	inactive := ArrayStatus{Name: "md3", State: "inactive"}
	for _, tc := range []struct {
		name   string
		arrays []ArrayStatus
		last   map[string]time.Time
		every  time.Duration
		want   string
	}{
		{"off", []ArrayStatus{clean("md0", "raid1")}, map[string]time.Time{"md0": ago(2 * month)}, 0, ""},
		{"not yet", []ArrayStatus{clean("md0", "raid1")}, map[string]time.Time{"md0": ago(month - time.Minute)}, month, ""},
		{"due", []ArrayStatus{clean("md0", "raid1")}, map[string]time.Time{"md0": ago(month)}, month, "md0"},
		{"never seen: the caller records a baseline first", []ArrayStatus{clean("md0", "raid1")}, nil, month, ""},
		{"oldest first", []ArrayStatus{clean("md0", "raid1"), clean("md4", "raid6")},
			map[string]time.Time{"md0": ago(month + time.Hour), "md4": ago(month + 2*time.Hour)}, month, "md4"},
		{"degraded, raid0 and inactive are skipped",
			[]ArrayStatus{degraded, clean("md5", "raid0"), inactive, clean("md6", "raid10")},
			map[string]time.Time{"md1": ago(3 * month), "md5": ago(3 * month), "md3": ago(3 * month), "md6": ago(month)}, month, "md6"},
		{"one at a time: another array syncs", []ArrayStatus{clean("md0", "raid1"), resyncing},
			map[string]time.Time{"md0": ago(2 * month), "md2": ago(2 * month)}, month, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ScrubDue(tc.arrays, tc.last, now, tc.every)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("ScrubDue = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}
