package raid

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// ESPSync is one disk's ESP as SyncESP found and left it.
type ESPSync struct {
	Disk string `json:"disk"`
	// Before and After are the ESP's SHA-256 before and after the sync.
	Before string `json:"before"`
	After  string `json:"after"`
	// Copied is set when the ESP differed and was overwritten.
	Copied bool `json:"copied"`
}

// ESPEntry is the table's one ESP; none or two is an error.
func ESPEntry(t DiskTable) (GPTEntry, error) {
	var found []GPTEntry
	for _, e := range t.Partitions {
		if strings.EqualFold(e.Type, TypeESP) {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		return GPTEntry{}, fmt.Errorf("raid: %s has no ESP", t.Disk)
	case 1:
		return found[0], nil
	}
	return GPTEntry{}, fmt.Errorf("raid: %s has %d ESPs", t.Disk, len(found))
}

// ESPSyncTargets are the disks whose ESPs follow from's: every disk of
// disks (kernel name -> its partitions) but from with a partition in one
// of the running arrays, sorted.
func ESPSyncTargets(arrays []ArrayStatus, disks map[string][]string, from string) []string {
	member := map[string]bool{}
	for _, a := range arrays {
		if !a.State.Running() {
			continue
		}
		for _, m := range a.Members {
			member[m.Name] = true
		}
	}
	var out []string
	for d, parts := range disks {
		if d == from {
			continue
		}
		for _, p := range parts {
			if member[p] {
				out = append(out, d)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// CheckESPExtents refuses a target whose ESP is not where src's is, with
// the same size and sector size: copying it would not make a copy.
func CheckESPExtents(src, target DiskTable) (GPTEntry, error) {
	s, err := ESPEntry(src)
	if err != nil {
		return GPTEntry{}, err
	}
	t, err := ESPEntry(target)
	if err != nil {
		return GPTEntry{}, err
	}
	if src.SectorSize != target.SectorSize || s.FirstLBA != t.FirstLBA || s.LastLBA != t.LastLBA {
		return GPTEntry{}, fmt.Errorf("raid: ESP of %s (partition %d, LBA %d-%d, %d-byte sectors) is not laid out like %s's (partition %d, LBA %d-%d, %d-byte sectors)",
			target.Disk, t.Number, t.FirstLBA, t.LastLBA, target.SectorSize, src.Disk, s.Number, s.FirstLBA, s.LastLBA, src.SectorSize)
	}
	return t, nil
}

// vanished reports whether disk is no longer a block device (ClassBlock):
// pulled while SyncESP worked on it.
func (a *Adopter) vanished(disk string) bool {
	_, err := fs.Stat(a.ClassBlock, disk)
	return errors.Is(err, fs.ErrNotExist)
}
