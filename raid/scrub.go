package raid

import (
	"slices"
	"time"
)

// DefaultScrubEvery is how often each redundant array is checked: about
// monthly, as Debian's checkarray cron job does.
const DefaultScrubEvery = 30 * 24 * time.Hour

// Scrubbable reports whether a check may start on a now: a running array
// with redundancy, all members present, no sync of any kind under way.
func Scrubbable(a ArrayStatus) bool {
	switch a.Level {
	case "raid1", "raid4", "raid5", "raid6", "raid10":
	default:
		return false
	}
	return a.State.Running() && a.Degraded == 0 && a.SyncAction == SyncIdle
}

// busy reports whether a holds its disks with a sync (check, repair,
// resync, recovery, reshape).
func busy(a ArrayStatus) bool {
	return a.SyncAction != "" && a.SyncAction != SyncIdle && a.SyncAction != SyncFrozen
}

// ScrubDue picks the array to check at now, if any. last gives when each
// array was last checked (or, for an array never checked, when the
// schedule first saw it: the caller records that, so a new box does not
// start checking the moment it boots). One check at a time: nothing
// starts while any array syncs, since arrays share the same disks. Of
// the arrays due, the one checked longest ago goes first. every <= 0
// turns the schedule off.
func ScrubDue(arrays []ArrayStatus, last map[string]time.Time, now time.Time, every time.Duration) (string, bool) {
	if every <= 0 || slices.ContainsFunc(arrays, busy) {
		return "", false
	}
	var pick string
	var oldest time.Time
	for _, a := range arrays {
		t, known := last[a.Name]
		if !known || !Scrubbable(a) || now.Sub(t) < every {
			continue
		}
		if pick == "" || t.Before(oldest) {
			pick, oldest = a.Name, t
		}
	}
	return pick, pick != ""
}
