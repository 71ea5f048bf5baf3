package update

import (
	"fmt"
	"sort"
	"strings"

	"ftnas/images/esp"
)

// DefaultTries is how many boots a new slot gets to come up.
const DefaultTries = 3

// MaxTries bounds the tries a caller may ask for.
const MaxTries = 9

// Slots are the root slots, as the firmware image lays them out.
func Slots() []string { return []string{"a", "b"} }

// Target is the slot an update of a box running slot running writes:
// the other one.
func Target(running string) (string, error) {
	slots := Slots()
	found := false
	var other []string
	for _, s := range slots {
		if s == running {
			found = true
		} else {
			other = append(other, s)
		}
	}
	if !found || len(other) != 1 {
		return "", fmt.Errorf("update: running slot %q is not one of %v", running, slots)
	}
	return other[0], nil
}

// Entries are the ftnas loader entries of an ESP, by slot.
type Entries map[string]esp.EntryName

// ParseEntries reads the file names of the ESP's entry directory. Files
// that are not ftnas entries are ignored; an ftnas-* file that does not
// parse (systemd-boot would match it with the default pattern) and two
// entries of one slot are errors.
func ParseEntries(names []string) (Entries, error) {
	out := Entries{}
	for _, n := range names {
		if !strings.HasPrefix(strings.ToLower(n), "ftnas-") {
			continue
		}
		e, err := esp.ParseEntryName(n)
		if err != nil {
			return nil, fmt.Errorf("update: %w", err)
		}
		if old, ok := out[e.Slot]; ok {
			return nil, fmt.Errorf("update: slot %s has two loader entries, %s and %s", e.Slot, old, e)
		}
		out[e.Slot] = e
	}
	return out, nil
}

// String lists the entries sorted, for messages.
func (es Entries) String() string {
	var s []string
	for _, e := range es {
		s = append(s, e.String())
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

// Rename is one entry's new name (file names in esp.EntryDir).
type Rename struct {
	From, To string
}

func (es Entries) need(slots ...string) error {
	for _, s := range slots {
		if _, ok := es[s]; !ok {
			return fmt.Errorf("update: the ESP has no loader entry for slot %s (entries: %s)", s, es)
		}
	}
	return nil
}

// plan renames slot's entry to want, updating es; nothing when it has
// that name already.
func (es Entries) plan(out []Rename, slot string, want esp.EntryName) []Rename {
	cur := es[slot]
	if cur.String() != want.String() {
		out = append(out, Rename{From: cur.String(), To: want.String()})
		es[slot] = want
	}
	return out
}

// PlanPrepare is what happens before the target slot's array is
// overwritten: the target's entry is marked as having no tries left
// (rank 0, "+0") so that systemd-boot never picks the half-written slot,
// then the running slot's entry becomes the preferred one (rank 1, no
// counter). After each rename the loader boots the running slot. es is
// updated to the result.
func PlanPrepare(es Entries, running, target string) ([]Rename, error) {
	if err := es.need(running, target); err != nil {
		return nil, err
	}
	out := es.plan(nil, target, esp.EntryName{Rank: 0, Slot: target, Left: 0})
	return es.plan(out, running, esp.GoodEntry(running, 1)), nil
}

// PlanSwitch is the switch once the target slot is written and verified:
// the running slot's entry drops to rank 0, then the target's becomes
// rank 1 with tries boots to come up. systemd-boot counts the tries down
// on each boot of it; once none are left it boots the running slot
// again. es is updated to the result.
func PlanSwitch(es Entries, running, target string, tries int) ([]Rename, error) {
	if tries < 1 || tries > MaxTries {
		return nil, fmt.Errorf("update: %d tries: want 1-%d", tries, MaxTries)
	}
	if err := es.need(running, target); err != nil {
		return nil, err
	}
	out := es.plan(nil, running, esp.GoodEntry(running, 0))
	return es.plan(out, target, esp.EntryName{Rank: 1, Slot: target, Left: tries}), nil
}

// BlessState says what Bless found.
type BlessState string

const (
	// Blessed: the running slot's entry had a counter and loses it; the
	// slot is now the one that boots.
	Blessed BlessState = "blessed"
	// Good: the running slot's entry has no counter (nothing to do).
	Good BlessState = "good"
	// RolledBack: the running slot is not the one the entries prefer;
	// the preferred one has no tries left (an update failed to come up)
	// or the running slot was chosen by hand.
	RolledBack BlessState = "rolled-back"
)

// PlanBless is what a running slot that works does with its entry: drop
// the counter (keeping the rank). It returns the renames (none or one)
// and what the entries say.
func PlanBless(es Entries, running string) ([]Rename, BlessState, error) {
	if err := es.need(running); err != nil {
		return nil, "", err
	}
	cur := es[running]
	// Rolled back: another slot's entry outranks the running one (its
	// tries ran out, or someone picked this slot in the menu).
	state := Good
	for _, e := range es {
		if e.Slot != running && e.Rank > cur.Rank {
			state = RolledBack
		}
	}
	if !cur.Counting() {
		return nil, state, nil
	}
	if state == Good {
		state = Blessed
	}
	return es.plan(nil, running, esp.GoodEntry(running, cur.Rank)), state, nil
}

// LoaderConf returns loader.conf's text with its default set to
// esp.DefaultPattern, and whether it changed.
func LoaderConf(text string) (string, bool) {
	lines := strings.SplitAfter(text, "\n")
	want := "default " + esp.DefaultPattern
	found, changed := false, false
	var b strings.Builder
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == "default" {
			if found {
				changed = true // a second default: drop it
				continue
			}
			found = true
			if strings.TrimSpace(l) != want {
				changed = true
				l = want + "\n"
			}
		}
		b.WriteString(l)
	}
	if !found {
		return want + "\n" + text, true
	}
	return b.String(), changed
}
