package update

import (
	"errors"
	"sort"

	"ftnas/images/esp"
)

// ErrNotSlot: the box was not booted from a root slot (the kernel command
// line names none): a development machine, or a box before install.
var ErrNotSlot = errors.New("not booted from a root slot")

// SlotStatus is one root slot as its loader entry describes it.
type SlotStatus struct {
	Slot  string `json:"slot"`
	Entry string `json:"entry"` // the entry's file name
	// Preferred: the entry of rank 1, the slot an update switched to
	// or the one blessed last.
	Preferred bool `json:"preferred"`
	// Trial: the entry carries a boot counter (an update not yet
	// blessed); TriesLeft and TriesDone are systemd-boot's counts.
	Trial     bool `json:"trial"`
	TriesLeft int  `json:"tries_left"`
	TriesDone int  `json:"tries_done"`
	// Failed: no tries left; the loader boots it only when nothing else
	// is there (an update that did not come up, or a slot being written).
	Failed bool `json:"failed"`
	// Running: the box runs this slot now; Next: the loader picks it at
	// the next boot (no one-time choice made in the menu).
	Running bool `json:"running"`
	Next    bool `json:"next"`
}

// Status is the firmware's state: which slot runs, which boots next,
// and what the running slot's boot said of the entries.
type Status struct {
	Running string `json:"running"`
	// Booted is the entry systemd-boot booted (LoaderEntrySelected), ""
	// when not booted by UEFI.
	Booted string `json:"booted,omitempty"`
	Next   string `json:"next"`
	// State: "good" (the running slot is the preferred one, blessed),
	// "trial" (the running slot is on trial, not yet blessed),
	// "update-pending" (another slot boots next on trial: an update
	// waits for a reboot), or "rolled-back" (the preferred slot failed
	// its tries and the box runs the other).
	State string       `json:"state"`
	Slots []SlotStatus `json:"slots"`
	// ESP is the disk whose ESP was read.
	ESP string `json:"esp,omitempty"`
	// Version and Serial are the running slot's release (ReadRelease;
	// Version "unknown" and Serial 0 for a slot built before serials),
	// ReleaseErr why it could not be read. Install is the installation
	// id the box booted with (ftnas.install=), "" before ids.
	Version    string `json:"version,omitempty"`
	Serial     uint64 `json:"serial,omitempty"`
	ReleaseErr string `json:"release_error,omitempty"`
	Install    string `json:"install,omitempty"`
}

// The firmware states of Status.State.
const (
	StateGood          = "good"
	StateTrial         = "trial"
	StateUpdatePending = "update-pending"
	StateRolledBack    = "rolled-back"
)

// SlotStates describes es for a box running slot running.
func SlotStates(es Entries, running, booted string) Status {
	st := Status{Running: running, Booted: booted, State: StateGood}
	all := make([]esp.EntryName, 0, len(es))
	for _, e := range es {
		all = append(all, e)
	}
	next, _ := esp.Chosen(all)
	st.Next = next.Slot
	for _, e := range es {
		s := SlotStatus{
			Slot: e.Slot, Entry: e.String(), Preferred: e.Rank >= 1, Trial: e.Counting(), Failed: e.Bad(),
			Running: e.Slot == running, Next: e.Slot == next.Slot,
		}
		if s.Trial {
			s.TriesLeft, s.TriesDone = e.Left, e.Done
		}
		st.Slots = append(st.Slots, s)
	}
	sort.Slice(st.Slots, func(i, j int) bool { return st.Slots[i].Slot < st.Slots[j].Slot })
	cur, ok := es[running]
	switch {
	case !ok:
	case next.Slot != running && next.Counting() && !next.Bad():
		st.State = StateUpdatePending
	case cur.Counting() && !cur.Bad():
		st.State = StateTrial
	default:
		for _, e := range es {
			if e.Slot != running && e.Rank > cur.Rank {
				st.State = StateRolledBack
			}
		}
	}
	return st
}
