package raid

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// ArrayState is md's array_state.
type ArrayState string

// Array states (Documentation/admin-guide/md.rst).
const (
	StateClear        ArrayState = "clear"
	StateInactive     ArrayState = "inactive"
	StateSuspended    ArrayState = "suspended"
	StateReadonly     ArrayState = "readonly"
	StateReadAuto     ArrayState = "read-auto"
	StateClean        ArrayState = "clean"
	StateActive       ArrayState = "active"
	StateWritePending ArrayState = "write-pending"
	StateActiveIdle   ArrayState = "active-idle"
	StateBroken       ArrayState = "broken"
)

// Running reports whether the array serves I/O.
func (s ArrayState) Running() bool {
	switch s {
	case StateReadonly, StateReadAuto, StateClean, StateActive, StateWritePending, StateActiveIdle:
		return true
	}
	return false
}

// SyncAction is md's sync_action.
type SyncAction string

// Sync actions.
const (
	SyncIdle    SyncAction = "idle"
	SyncResync  SyncAction = "resync"
	SyncRecover SyncAction = "recover"
	SyncCheck   SyncAction = "check"
	SyncRepair  SyncAction = "repair"
	SyncReshape SyncAction = "reshape"
	SyncFrozen  SyncAction = "frozen"
)

// Progress is sync_completed: sectors done of the total, while a sync
// runs.
type Progress struct {
	Done, Total int64
	// Running is false for "none" (nothing running).
	Running bool
	// Delayed is set for "delayed": waiting for another array on the same
	// disks to finish.
	Delayed bool
}

// Fraction is Done/Total, 0 when nothing runs.
func (p Progress) Fraction() float64 {
	if !p.Running || p.Total <= 0 {
		return 0
	}
	return float64(p.Done) / float64(p.Total)
}

// Member is one component device of an array (md/dev-NAME).
type Member struct {
	// Name is the kernel device name (vdb1, sda3).
	Name string
	// Slot is the member's role in the array; -1 for "none" (a spare or a
	// faulty member).
	Slot int
	// State flags: in_sync, faulty, spare, write_mostly, blocked,
	// write_error, want_replacement, replacement, ...
	State []string
	// Errors is the count of read errors corrected on this member.
	Errors int64
}

// Has reports whether the member's state has flag.
func (m Member) Has(flag string) bool {
	for _, f := range m.State {
		if f == flag {
			return true
		}
	}
	return false
}

// InSync, Faulty and Spare are the common flags.
func (m Member) InSync() bool { return m.Has("in_sync") }

// Faulty reports the faulty flag.
func (m Member) Faulty() bool { return m.Has("faulty") }

// Spare reports the spare flag (also set on a member being rebuilt).
func (m Member) Spare() bool { return m.Has("spare") }

// ArrayStatus is an md array as sysfs shows it.
type ArrayStatus struct {
	// Name is the kernel name (md0, md127).
	Name string
	// Level is raid1, raid5, ... ("" while inactive).
	Level         string
	RaidDisks     int
	State         ArrayState
	Metadata      string // metadata_version, e.g. 1.2
	Degraded      int    // members missing; 0 for levels without redundancy
	SyncAction    SyncAction
	SyncCompleted Progress
	// SyncSpeed is the current sync rate in KiB/s (0 when idle).
	SyncSpeed   int64
	MismatchCnt int64
	// ComponentSize is the size used on each member, in KiB.
	ComponentSize int64
	// Bitmap is set when the array has a write-intent bitmap.
	Bitmap  bool
	Members []Member
}

// Member returns the member called name.
func (a ArrayStatus) Member(name string) (Member, bool) {
	for _, m := range a.Members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// Healthy reports a running array with all members in sync and nothing to
// rebuild.
func (a ArrayStatus) Healthy() bool {
	return a.State.Running() && a.Degraded == 0 && (a.SyncAction == SyncIdle || a.SyncAction == "")
}

// ParseSyncCompleted parses sync_completed: "none", "delayed" or
// "DONE / TOTAL".
func ParseSyncCompleted(s string) (Progress, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "none", "":
		return Progress{}, nil
	case "delayed":
		return Progress{Running: true, Delayed: true}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return Progress{}, fmt.Errorf("raid: parse sync_completed %q: want DONE / TOTAL", s)
	}
	done, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	total, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	if err1 != nil || err2 != nil || done < 0 || total < 0 {
		return Progress{}, fmt.Errorf("raid: parse sync_completed %q: bad numbers", s)
	}
	return Progress{Done: done, Total: total, Running: true}, nil
}

// ParseMemberState splits dev-*/state ("in_sync,write_mostly").
func ParseMemberState(s string) []string {
	var out []string
	for _, f := range strings.Split(strings.TrimSpace(s), ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// ParseSlot parses dev-*/slot: a number or "none" (-1).
func ParseSlot(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "none" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("raid: parse slot %q: want a number or none", s)
	}
	return n, nil
}

// parseCount parses a decimal attribute; "none" and "" are 0.
func parseCount(attr, s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "none" || s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("raid: parse %s %q: want a count", attr, s)
	}
	return n, nil
}

// attrMax is the most a sysfs attribute's show() may return: one page.
const attrMax = 4096

// readAttr reads one sysfs attribute with a single read at offset 0; a
// missing attribute is "" (md creates some only for some levels or
// states).
//
// One read, not a read to EOF: sysfs calls the attribute's show() again
// for a read at a later offset and returns that output's tail, so a value
// that changed between the two reads comes back spliced. CI saw
// sync_completed read as "0 / 129024\n24\n": the first show() whole,
// then the tail past byte 11 of a later one with a four-digit count
// ("4096 / 129024\n").
func readAttr(fsys fs.FS, name string) (string, error) {
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, attrMax)
	n, err := f.Read(buf)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

// ReadArray reads array name (md0) from fsys, which is rooted at
// /sys/block (os.DirFS("/sys/block") on a live system).
func ReadArray(fsys fs.FS, name string) (ArrayStatus, error) {
	if name == "" || strings.ContainsAny(name, "/.") {
		return ArrayStatus{}, fmt.Errorf("raid: read array %q: bad name", name)
	}
	dir := path.Join(name, "md")
	if _, err := fs.Stat(fsys, dir); err != nil {
		return ArrayStatus{}, fmt.Errorf("raid: read array %s: not an md array: %w", name, err)
	}
	a := ArrayStatus{Name: name}
	var firstErr error
	get := func(n string) string {
		v, err := readAttr(fsys, path.Join(dir, n))
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("raid: read array %s: %s: %w", name, n, err)
		}
		return v
	}
	num := func(n string) int64 {
		v, err := parseCount(n, get(n))
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("raid: read array %s: %w", name, err)
		}
		return v
	}
	a.Level = get("level")
	a.State = ArrayState(get("array_state"))
	a.Metadata = get("metadata_version")
	a.RaidDisks = int(num("raid_disks"))
	a.Degraded = int(num("degraded"))
	a.SyncAction = SyncAction(get("sync_action"))
	a.SyncSpeed = num("sync_speed")
	a.MismatchCnt = num("mismatch_cnt")
	a.ComponentSize = num("component_size")
	if p, err := ParseSyncCompleted(get("sync_completed")); err != nil {
		if firstErr == nil {
			firstErr = fmt.Errorf("raid: read array %s: %w", name, err)
		}
	} else {
		a.SyncCompleted = p
	}
	if loc := get("bitmap/location"); loc != "" && loc != "none" {
		a.Bitmap = true
	}
	if firstErr != nil {
		return ArrayStatus{}, firstErr
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return ArrayStatus{}, fmt.Errorf("raid: read array %s: %w", name, err)
	}
	for _, e := range entries {
		dev, ok := strings.CutPrefix(e.Name(), "dev-")
		if !ok {
			continue
		}
		m, err := readMember(fsys, path.Join(dir, e.Name()), dev)
		if errors.Is(err, syscall.ENODEV) || errors.Is(err, fs.ErrNotExist) {
			// md removed the member while we read it (sysfs answers
			// ENODEV for attributes of a vanishing kobject): it is gone.
			continue
		}
		if err != nil {
			return ArrayStatus{}, fmt.Errorf("raid: read array %s: %w", name, err)
		}
		a.Members = append(a.Members, m)
	}
	sort.Slice(a.Members, func(i, j int) bool {
		si, sj := a.Members[i].Slot, a.Members[j].Slot
		if (si < 0) != (sj < 0) {
			return si >= 0 // members with a slot first
		}
		if si != sj {
			return si < sj
		}
		return a.Members[i].Name < a.Members[j].Name
	})
	return a, nil
}

func readMember(fsys fs.FS, dir, dev string) (Member, error) {
	m := Member{Name: dev}
	state, err := readAttr(fsys, path.Join(dir, "state"))
	if err != nil {
		return Member{}, fmt.Errorf("member %s: state: %w", dev, err)
	}
	m.State = ParseMemberState(state)
	slot, err := readAttr(fsys, path.Join(dir, "slot"))
	if err != nil {
		return Member{}, fmt.Errorf("member %s: slot: %w", dev, err)
	}
	if slot == "" {
		slot = "none"
	}
	if m.Slot, err = ParseSlot(slot); err != nil {
		return Member{}, fmt.Errorf("member %s: %w", dev, err)
	}
	errs, err := readAttr(fsys, path.Join(dir, "errors"))
	if err != nil {
		return Member{}, fmt.Errorf("member %s: errors: %w", dev, err)
	}
	if m.Errors, err = parseCount("errors", errs); err != nil {
		return Member{}, fmt.Errorf("member %s: %w", dev, err)
	}
	return m, nil
}

// ListArrays returns the md arrays in fsys (rooted at /sys/block), sorted.
func ListArrays(fsys fs.FS) ([]string, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("raid: list arrays: %w", err)
	}
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "md") {
			continue
		}
		if _, err := fs.Stat(fsys, path.Join(e.Name(), "md")); err == nil {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}
