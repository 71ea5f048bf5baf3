package esp

import (
	"fmt"
	"strconv"
	"strings"
)

// EntryDir is the directory of the loader entries.
const EntryDir = "/loader/entries"

// DefaultPattern is loader.conf's default: a glob over every ftnas entry.
// systemd-boot sorts the entries by file name with the ones that have no
// boot tries left apart, and boots the matching entry that sorts highest
// among those with tries left, so the entry's name decides: see
// EntryName.
const DefaultPattern = "ftnas-*"

// maxRank and maxCount bound the numbers in an entry name.
const (
	maxRank  = 9
	maxCount = 9999
)

// EntryName is the file name of a slot's loader entry:
//
//	ftnas-<rank>-<slot>[+<left>[-<done>]].conf
//
// Rank orders the slots for systemd-boot (the preferred slot has rank 1,
// the other 0; systemd-boot compares the names and the higher wins).
// Left and Done are systemd-boot's boot counters (Automatic Boot
// Assessment): an entry with a counter is being tried; systemd-boot
// renames it before each attempt (+3 → +2-1 → +1-2 → +0-3) and never
// picks an entry with 0 tries left while another matches, so a slot
// that does not come up falls back to the other. A booted system that
// works removes the counter ("blesses" the entry).
type EntryName struct {
	Rank int
	Slot string
	// Left is the tries left; -1 means no counter (the entry is good).
	Left int
	// Done is the tries made so far (0 with no counter).
	Done int
}

// GoodEntry is slot's entry of rank without a counter.
func GoodEntry(slot string, rank int) EntryName {
	return EntryName{Rank: rank, Slot: slot, Left: -1}
}

// Counting reports whether the entry carries a boot counter.
func (e EntryName) Counting() bool { return e.Left >= 0 }

// Bad reports whether the entry has no tries left: systemd-boot boots it
// only when nothing else matches.
func (e EntryName) Bad() bool { return e.Left == 0 }

// String is the entry's file name.
func (e EntryName) String() string {
	s := fmt.Sprintf("ftnas-%d-%s", e.Rank, e.Slot)
	if e.Left >= 0 {
		s += "+" + strconv.Itoa(e.Left)
		if e.Done > 0 {
			s += "-" + strconv.Itoa(e.Done)
		}
	}
	return s + ".conf"
}

// Path is the entry's path on the ESP.
func (e EntryName) Path() string { return EntryDir + "/" + e.String() }

// ParseEntryName parses an entry's file name (case-insensitive, as the
// firmware's FAT driver and systemd-boot treat names).
func ParseEntryName(name string) (EntryName, error) {
	bad := func(why string) (EntryName, error) {
		return EntryName{}, fmt.Errorf("esp: loader entry %q: %s (want ftnas-RANK-SLOT[+LEFT[-DONE]].conf)", name, why)
	}
	s := strings.ToLower(name)
	rest, ok := strings.CutPrefix(s, "ftnas-")
	if !ok {
		return bad("not an ftnas entry")
	}
	rest, ok = strings.CutSuffix(rest, ".conf")
	if !ok {
		return bad("no .conf suffix")
	}
	rankStr, rest, ok := strings.Cut(rest, "-")
	if !ok {
		return bad("no rank")
	}
	rank, err := parseCount(rankStr, maxRank)
	if err != nil {
		return bad("rank: " + err.Error())
	}
	e := EntryName{Rank: rank, Left: -1}
	slot, counter, hasCounter := strings.Cut(rest, "+")
	if !validSlot(slot) {
		return bad(fmt.Sprintf("bad slot name %q", slot))
	}
	e.Slot = slot
	if !hasCounter {
		return e, nil
	}
	leftStr, doneStr, hasDone := strings.Cut(counter, "-")
	if e.Left, err = parseCount(leftStr, maxCount); err != nil {
		return bad("tries left: " + err.Error())
	}
	if hasDone {
		if e.Done, err = parseCount(doneStr, maxCount); err != nil {
			return bad("tries done: " + err.Error())
		}
	}
	return e, nil
}

func parseCount(s string, max int) (int, error) {
	if s == "" || len(s) > len(strconv.Itoa(max)) {
		return 0, fmt.Errorf("%q is not a number of 0-%d", s, max)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a number of 0-%d", s, max)
		}
	}
	n, _ := strconv.Atoi(s)
	if n > max {
		return 0, fmt.Errorf("%d is more than %d", n, max)
	}
	return n, nil
}

// Chosen is the entry systemd-boot boots with loader.conf's default
// DefaultPattern and no EFI variable overriding it: among the entries
// with tries left (or, when none has, among all), the one of highest
// rank, then slot name. ok is false for no entries.
func Chosen(entries []EntryName) (e EntryName, ok bool) {
	var good []EntryName
	for _, x := range entries {
		if !x.Bad() {
			good = append(good, x)
		}
	}
	if len(good) == 0 {
		good = entries
	}
	for _, x := range good {
		if !ok || x.Rank > e.Rank || x.Rank == e.Rank && x.Slot > e.Slot {
			e, ok = x, true
		}
	}
	return e, ok
}
