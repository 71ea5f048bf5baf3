package raid

import (
	"context"
	"sort"
)

// DiskAdopter adopts a blank disk (see Adopter.Adopt).
type DiskAdopter interface {
	Adopt(ctx context.Context, disk, from string) (AdoptResult, error)
}

var _ DiskAdopter = (*Adopter)(nil)

// AdoptCandidate is the blank disk the hot-plug Manager adopts when its
// AutoAdopt option is on, or "": only while some running redundant array
// is degraded (or loses a member in rep's actions), the first (by name)
// of rep.Blank that is a whole disk and not in skip. Whether it is big
// enough is the Adopter's check (PlanAdopt refuses a disk too small).
func AdoptCandidate(arrays []HotplugArray, devices []HotplugDevice, rep HotplugReport, skip map[string]bool) string {
	degraded := false
	for _, a := range arrays {
		if a.Status.State.Running() && redundant(a.Status.Level) && a.Status.Degraded > 0 {
			degraded = true
		}
	}
	for _, act := range rep.Actions {
		if act.Kind == ActRemove {
			degraded = true
		}
	}
	if !degraded {
		return ""
	}
	part := map[string]bool{}
	for _, d := range devices {
		part[d.Name] = d.Partition
	}
	blank := append([]string(nil), rep.Blank...)
	sort.Strings(blank)
	for _, b := range blank {
		if isPart, known := part[b]; known && !isPart && !skip[b] {
			return b
		}
	}
	return ""
}
