package appliance

import (
	"context"
	"time"

	"ftnas/raid"
)

// Scheduled scrubs (issue 8): every redundant array is checked about
// once per Config.ScrubEvery, one at a time, while it is healthy and
// idle. When each array was last checked lives in the store's settings
// (scrubKey), so the schedule survives restarts; an array the schedule
// has not seen before gets a baseline of "now" instead of a check at
// once (a new array has just been synced by its creation).

// scrubCheckInterval is how often the schedule looks for a due array.
const scrubCheckInterval = time.Hour

// settings is the part of the store the schedule uses.
type settings interface {
	Setting(key string) (string, bool, error)
	SetSetting(key, value string) error
}

// scrubKey is the settings key of an array's last check.
func scrubKey(array string) string { return "raid.scrub.last." + array }

// lastScrub reads an array's last check from st.
func lastScrub(st settings, array string) (time.Time, bool) {
	v, ok, err := st.Setting(scrubKey(array))
	if err != nil || !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil
}

// noteScrub records that array's check started at t.
func (r *raidManager) noteScrub(st settings, array string, t time.Time) {
	if err := st.SetSetting(scrubKey(array), t.UTC().Format(time.RFC3339)); err != nil {
		r.log.Warn("raid: record the check's time", "array", array, "err", err)
	}
}

// scrubTick is one pass of the schedule at now: it reports checks that
// finished (mismatches as a warning), records baselines for arrays seen
// the first time and starts the check that is due, if any.
func (r *raidManager) scrubTick(ctx context.Context, st settings, now time.Time, every time.Duration) {
	arrays, err := r.arrays()
	if err != nil {
		r.log.Warn("raid: scrub schedule: read the arrays", "err", err)
		return
	}
	r.schedMu.Lock()
	if r.checking == nil {
		r.checking = map[string]bool{}
	}
	for _, a := range arrays {
		checking := a.SyncAction == raid.SyncCheck
		if r.checking[a.Name] && a.SyncAction == raid.SyncIdle {
			if a.MismatchCnt > 0 {
				r.log.Warn("raid check finished: copies differ", "array", a.Name, "mismatch_sectors", a.MismatchCnt)
			} else {
				r.log.Info("raid check finished: copies agree", "array", a.Name)
			}
		}
		r.checking[a.Name] = checking
	}
	r.schedMu.Unlock()
	if every <= 0 {
		return
	}
	last := map[string]time.Time{}
	for _, a := range arrays {
		if !redundant(a) {
			continue
		}
		t, ok := lastScrub(st, a.Name)
		if !ok {
			t = now
			r.noteScrub(st, a.Name, t)
		}
		last[a.Name] = t
	}
	name, due := raid.ScrubDue(arrays, last, now, every)
	if !due {
		return
	}
	if _, err := r.scrub(ctx, name); err != nil {
		r.log.Warn("raid: scheduled check not started", "array", name, "err", err)
		return
	}
	r.noteScrub(st, name, now)
	r.schedMu.Lock()
	r.checking[name] = true
	r.schedMu.Unlock()
	r.log.Info("raid: scheduled check started", "array", name, "last", last[name].Format(time.RFC3339), "every", every)
}

// runScrubs runs the schedule until ctx ends.
func (r *raidManager) runScrubs(ctx context.Context, st settings, every time.Duration) {
	t := time.NewTicker(scrubCheckInterval)
	defer t.Stop()
	for {
		r.scrubTick(ctx, st, time.Now(), every)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
