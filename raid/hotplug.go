package raid

import (
	"fmt"
	"sort"
	"strings"
)

// ActionKind is what the hot-plug Manager does to an array member.
type ActionKind string

// Actions Decide asks for.
const (
	// ActFail marks a member whose device vanished faulty.
	ActFail ActionKind = "fail"
	// ActRemove takes a faulty, vanished member out of its array.
	ActRemove ActionKind = "remove"
	// ActReAdd puts back a device that returned carrying the superblock
	// of an array it is missing from (the bitmap makes it quick).
	ActReAdd ActionKind = "re-add"
)

// Action is one change to one array.
type Action struct {
	Kind ActionKind
	// Array is the array's kernel name (md0).
	Array string
	// Device is the member's kernel name (vdb, sda3).
	Device string
	// Reason says why, for the log.
	Reason string
}

func (a Action) String() string {
	return fmt.Sprintf("%s %s %s (%s)", a.Kind, a.Array, a.Device, a.Reason)
}

// HotplugArray is one array as the hot-plug decision sees it.
type HotplugArray struct {
	Status ArrayStatus
	// UUID is the array's UUID (md/uuid in sysfs, or MD_UUID); any
	// spelling, compared with NormalizeUUID.
	UUID string
	// Detached are members whose own block device is gone according to
	// md (dev-NAME/block no longer resolves), even if a new device took
	// the same name.
	Detached []string
}

// HotplugDevice is a block device present in the system.
type HotplugDevice struct {
	// Name is the kernel name (vdb, sda3).
	Name string
	// Superblock is what mdadm --examine found on it; Populated false
	// for a device without an md superblock. It is ignored (and may be
	// left empty) for devices that are members of an array.
	Superblock Superblock
	// Partition is set for a partition, clear for a whole disk.
	Partition bool
	// Kicked is set for a device md marked faulty while it was present
	// (I/O errors, not a pull; the Manager remembers it until the device
	// goes away): it is never re-added, even once out of its array.
	Kicked bool
}

// HotplugReport is what Decide concluded.
type HotplugReport struct {
	Actions []Action
	// Blank are present devices that are in no array and carry no md
	// superblock: candidates for an operator's replace, nothing more.
	Blank []string
	// Foreign are present devices carrying the superblock of an array
	// that is not running here (or that is not missing them).
	Foreign []string
	// Faulty are members md kicked while their device stayed present
	// (I/O errors), as "ARRAY/DEVICE" (md0/vdb): md no longer uses them
	// and they stay listed as faulty until the disk is replaced. They
	// are reported, not removed: a removed one would look like a
	// returning disk.
	Faulty []string
	// Withheld are devices carrying the superblock of an array that
	// misses them but that md kicked (HotplugDevice.Kicked): not
	// re-added, a failing disk would only fail again.
	Withheld []string
	// Failed are the actions Manager.Evaluate could not apply (Decide
	// leaves it empty).
	Failed []Action
}

// NormalizeUUID lowercases an md UUID and drops its separators, so
// mdadm's "8e826feb:89c7fb2d:294a8708:b6b72025" and sysfs's
// "8e826feb-89c7-fb2d-294a-8708b6b72025" compare equal.
func NormalizeUUID(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(strings.TrimSpace(s)) {
		if c == ':' || c == '-' {
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// redundant reports whether level keeps data with a member missing.
func redundant(level string) bool {
	switch level {
	case "raid1", "raid4", "raid5", "raid6", "raid10":
		return true
	}
	return false
}

// Decide is the hot-plug policy, pure: given the arrays and the block
// devices present it returns what to do.
//
//   - A member whose device is not present (or is detached) is failed,
//     unless md already marked it faulty, and removed.
//   - A present device that is in no array and carries the superblock of
//     a running redundant array that lacks members is re-added to it.
//   - An array whose members all seem gone is left alone.
//   - A member md marked faulty while its device is present (md kicked
//     it for I/O errors) is reported in Faulty and left as it is; a
//     kicked device out of its array is reported in Withheld, never
//     re-added.
//   - A present device without a superblock is reported as blank; adding
//     it is an operator's replace, not a reaction to hot-plug.
//
// Actions come sorted by array, then device, then fail before remove.
func Decide(arrays []HotplugArray, devices []HotplugDevice) HotplugReport {
	var r HotplugReport
	present := map[string]bool{}
	for _, d := range devices {
		present[d.Name] = true
	}
	member := map[string]bool{} // device name -> member of some array
	for _, a := range arrays {
		detached := map[string]bool{}
		for _, d := range a.Detached {
			detached[d] = true
		}
		gone := 0
		for _, m := range a.Status.Members {
			if present[m.Name] && !detached[m.Name] {
				member[m.Name] = true
			} else {
				gone++
			}
		}
		if gone == len(a.Status.Members) {
			// Nothing left to serve from: failing members cannot help,
			// and a wrong view of the devices must not fail them all.
			continue
		}
		for _, m := range a.Status.Members {
			if member[m.Name] {
				if m.Faulty() {
					r.Faulty = append(r.Faulty, a.Status.Name+"/"+m.Name)
				}
				continue
			}
			why := "device vanished"
			if present[m.Name] {
				why = "device detached; a new device has its name"
			}
			if !m.Faulty() {
				r.Actions = append(r.Actions, Action{Kind: ActFail, Array: a.Status.Name, Device: m.Name, Reason: why})
			}
			r.Actions = append(r.Actions, Action{Kind: ActRemove, Array: a.Status.Name, Device: m.Name, Reason: why})
		}
	}
	// Arrays that can take a member back: running, redundant, short of
	// members. Count members that will remain after the removals above.
	missing := map[string]int{} // normalized UUID -> free slots
	names := map[string]string{}
	for _, a := range arrays {
		uuid := NormalizeUUID(a.UUID)
		if uuid == "" || !a.Status.State.Running() || !redundant(a.Status.Level) {
			continue
		}
		active := 0
		for _, m := range a.Status.Members {
			if member[m.Name] && !m.Faulty() && !m.Spare() {
				active++
			}
		}
		if free := a.Status.RaidDisks - active; free > 0 {
			missing[uuid] = free
			names[uuid] = a.Status.Name
		}
	}
	sorted := append([]HotplugDevice(nil), devices...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, d := range sorted {
		if member[d.Name] {
			continue
		}
		if !d.Superblock.Populated {
			r.Blank = append(r.Blank, d.Name)
			continue
		}
		uuid := NormalizeUUID(d.Superblock.UUID)
		if d.Kicked && missing[uuid] > 0 {
			r.Withheld = append(r.Withheld, d.Name)
			continue
		}
		if missing[uuid] <= 0 {
			r.Foreign = append(r.Foreign, d.Name)
			continue
		}
		missing[uuid]--
		r.Actions = append(r.Actions, Action{Kind: ActReAdd, Array: names[uuid], Device: d.Name,
			Reason: "device returned with the array's superblock"})
	}
	order := map[ActionKind]int{ActFail: 0, ActRemove: 1, ActReAdd: 2}
	sort.SliceStable(r.Actions, func(i, j int) bool {
		a, b := r.Actions[i], r.Actions[j]
		if a.Array != b.Array {
			return a.Array < b.Array
		}
		if order[a.Kind] != order[b.Kind] {
			return order[a.Kind] < order[b.Kind]
		}
		return a.Device < b.Device
	})
	return r
}
