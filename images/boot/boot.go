package boot

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"ftnas/images/guest"
	"ftnas/raid"
)

// Kernel command-line parameters.
const (
	// ParamSlot names the root slot to boot: a or b.
	ParamSlot = "ftnas.slot"
	// ParamRootWait bounds the wait for the first member of the root
	// array (a Go duration, "30s").
	ParamRootWait = "ftnas.rootwait"
	// ParamDegradedAfter is how long to wait for the missing members
	// once one is there before starting the array degraded.
	ParamDegradedAfter = "ftnas.degraded_after"
	// ParamInstall is the installation's id: the homehost its arrays'
	// superblocks carry ("ID:ftnas-root-a"). With it, only those arrays
	// are assembled; without it (images built before it), any array of
	// the right name (see Choose).
	ParamInstall = "ftnas.install"
)

// Paths of the hand-over.
const (
	// NewRoot is where the slot's squashfs is mounted before it becomes /.
	NewRoot = "/sysroot"
	// RootInit is the slot's init program.
	RootInit = "/sbin/init"
)

// Options are the boot parameters.
type Options struct {
	Slot          string
	RootWait      time.Duration
	DegradedAfter time.Duration
	// Install is the installation id (ParamInstall); "" takes any array
	// of the right name.
	Install string
}

// DefaultOptions boot slot a, wait 30 s for a disk and 5 s for its
// mirrors.
func DefaultOptions() Options {
	return Options{Slot: "a", RootWait: 30 * time.Second, DegradedAfter: 5 * time.Second}
}

// ParseOptions reads the boot parameters from the kernel command line.
func ParseOptions(params []guest.Param) (Options, error) {
	o := DefaultOptions()
	if v, ok := guest.Lookup(params, ParamSlot); ok {
		if !validSlot(v) {
			return Options{}, fmt.Errorf("boot: %s=%q: want a slot name of a-z, 0-9", ParamSlot, v)
		}
		o.Slot = v
	}
	if v, ok := guest.Lookup(params, ParamInstall); ok {
		if !ValidInstallID(v) {
			return Options{}, fmt.Errorf("boot: %s=%q: want an installation id of 1-%d of a-z, 0-9", ParamInstall, v, MaxInstallID)
		}
		o.Install = v
	}
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{{ParamRootWait, &o.RootWait}, {ParamDegradedAfter, &o.DegradedAfter}} {
		v, ok := guest.Lookup(params, d.key)
		if !ok {
			continue
		}
		t, err := time.ParseDuration(v)
		if err != nil || t < 0 {
			return Options{}, fmt.Errorf("boot: %s=%q: want a duration such as 5s", d.key, v)
		}
		*d.dst = t
	}
	return o, nil
}

func validSlot(s string) bool {
	if s == "" || len(s) > 8 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// MaxInstallID is the longest installation id: mdadm keeps
// "HOMEHOST:NAME" in a 32-byte field, and the longest NAME is
// ftnas-root-a (12 bytes).
const MaxInstallID = 16

// ValidInstallID reports whether s can be an installation id: 1 to
// MaxInstallID lower-case letters and digits.
func ValidInstallID(s string) bool {
	if s == "" || len(s) > MaxInstallID {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// ArrayName is the md superblock name (and GPT partition name) of slot's
// root array: ftnas-root-a.
func ArrayName(slot string) string { return "ftnas-root-" + slot }

// StateArrayName and DataArrayName are the md superblock names (and GPT
// partition names) the installer gives the state and data arrays
// (raid.Plan: "ftnas-" + role). The slot's init assembles them.
const (
	StateArrayName = "ftnas-" + raid.RoleState
	DataArrayName  = "ftnas-" + raid.RoleData
)

// Candidate is a partition that may be a member of the root array.
type Candidate struct {
	Device string // /dev/vda2
	SB     raid.Superblock
}

// Group is the members found of one array.
type Group struct {
	UUID    string
	Name    string
	Devices []string // sorted
	// Expected is the array's raid-disks count from the superblock.
	Expected int
	// Events is the highest event count among the members.
	Events int64
}

// Complete reports whether every member is present.
func (g Group) Complete() bool { return len(g.Devices) >= g.Expected }

// superblockName strips mdadm's "homehost:" prefix from MD_NAME.
func superblockName(n string) string {
	if i := strings.LastIndexByte(n, ':'); i >= 0 {
		return n[i+1:]
	}
	return n
}

// SuperblockHomehost is the "homehost:" prefix of MD_NAME ("" when it
// has none).
func SuperblockHomehost(n string) string {
	if i := strings.LastIndexByte(n, ':'); i >= 0 {
		return n[:i]
	}
	return ""
}

// Choose groups the candidates whose superblock names the array name by
// array UUID and returns the group with the most members, then the
// highest event count (a disk from another box, or one that left the
// array, loses to the array the other disks agree on). ok is false when no
// candidate belongs to the array. Any homehost is taken: see ChooseIn.
func Choose(cands []Candidate, name string) (g Group, ok bool) {
	return ChooseIn(cands, name, "")
}

// ChooseIn is Choose among the arrays of one installation: with install
// set, only superblocks named "install:name" count, so the arrays of
// another ftnas box whose disks are attached (an installer medium left
// plugged in, a disk moved from another box) are never assembled, even
// when they have more members.
func ChooseIn(cands []Candidate, name, install string) (g Group, ok bool) {
	groups := map[string]*Group{}
	for _, c := range cands {
		if !c.SB.Populated || superblockName(c.SB.Name) != name {
			continue
		}
		if install != "" && SuperblockHomehost(c.SB.Name) != install {
			continue
		}
		gr := groups[c.SB.UUID]
		if gr == nil {
			gr = &Group{UUID: c.SB.UUID, Name: name}
			groups[c.SB.UUID] = gr
		}
		gr.Devices = append(gr.Devices, c.Device)
		if c.SB.Devices > gr.Expected {
			gr.Expected = c.SB.Devices
		}
		if c.SB.Events > gr.Events {
			gr.Events = c.SB.Events
		}
	}
	var best *Group
	for _, gr := range groups {
		sort.Strings(gr.Devices)
		switch {
		case best == nil,
			len(gr.Devices) > len(best.Devices),
			len(gr.Devices) == len(best.Devices) && gr.Events > best.Events,
			len(gr.Devices) == len(best.Devices) && gr.Events == best.Events && gr.UUID < best.UUID:
			best = gr
		}
	}
	if best == nil {
		return Group{}, false
	}
	return *best, true
}

// Action is what to do next while waiting for the root array.
type Action int

const (
	// Wait: look again shortly.
	Wait Action = iota
	// Assemble with the members present; Decision.Degraded says whether
	// some are missing.
	Assemble
	// GiveUp: no member appeared in time.
	GiveUp
)

// Decision is Waiter's answer.
type Decision struct {
	Action   Action
	Degraded bool
}

// Waiter decides when to assemble. It is fed the time and what was found
// at each look.
type Waiter struct {
	opts      Options
	start     time.Time
	firstSeen time.Time
}

// NewWaiter starts waiting at now.
func NewWaiter(opts Options, now time.Time) *Waiter {
	return &Waiter{opts: opts, start: now}
}

// Decide returns what to do at now, having found g (ok false: no member
// yet).
func (w *Waiter) Decide(now time.Time, g Group, ok bool) Decision {
	if !ok {
		if now.Sub(w.start) >= w.opts.RootWait {
			return Decision{Action: GiveUp}
		}
		return Decision{Action: Wait}
	}
	if g.Complete() {
		return Decision{Action: Assemble}
	}
	if w.firstSeen.IsZero() {
		w.firstSeen = now
	}
	if now.Sub(w.firstSeen) >= w.opts.DegradedAfter {
		return Decision{Action: Assemble, Degraded: true}
	}
	return Decision{Action: Wait}
}

// Marker is the line printed once the root array runs.
func Marker(slot string, st raid.ArrayStatus) string {
	in := 0
	for _, m := range st.Members {
		if m.InSync() {
			in++
		}
	}
	return fmt.Sprintf("ftnas: root %s assembled degraded=%d members=%d/%d array=%s",
		strings.ToUpper(slot), st.Degraded, in, st.RaidDisks, st.Name)
}

// MarkerInfo is what Marker says.
type MarkerInfo struct {
	Slot      string
	Degraded  int
	InSync    int
	RaidDisks int
	Array     string
}

// MarkerRegexp matches a Marker line (the whole line, in multi-line
// mode); ParseMarker reads its submatches.
func MarkerRegexp() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^ftnas: root ([A-Z0-9]+) assembled degraded=(\d+) members=(\d+)/(\d+) array=(\S+)\r?$`)
}

// UserlandRegexp matches CheckSlot's "slot X userland up" line: the
// whole line, then the slot.
func UserlandRegexp() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^(ftnas: slot ([a-z0-9]+) userland up: .*?)\r?$`)
}

// ParseMarker parses a Marker line.
func ParseMarker(line string) (MarkerInfo, bool) {
	m := MarkerRegexp().FindStringSubmatch(line)
	if m == nil {
		return MarkerInfo{}, false
	}
	var mi MarkerInfo
	mi.Slot, mi.Array = strings.ToLower(m[1]), m[5]
	for i, dst := range []*int{&mi.Degraded, &mi.InSync, &mi.RaidDisks} {
		n, err := strconv.Atoi(m[i+2])
		if err != nil {
			return MarkerInfo{}, false
		}
		*dst = n
	}
	return mi, true
}

// ParseUevent parses a sysfs uevent file (KEY=VALUE lines).
func ParseUevent(text string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if ok && k != "" {
			out[k] = v
		}
	}
	return out
}

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Point  string
	FSType string
	Source string
	// Options are the per-mount options (ro, nosuid, ...).
	Options []string
}

// FindMount returns the last mount at point in mountinfo text (the one
// visible).
func FindMount(mountinfo, point string) (Mount, error) {
	var found Mount
	ok := false
	for _, l := range strings.Split(mountinfo, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		pre, post, sep := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !sep || len(f) < 6 || len(g) < 2 {
			return Mount{}, fmt.Errorf("boot: parse mountinfo: bad line %q", l)
		}
		if unescapeOctal(f[4]) != point {
			continue
		}
		found = Mount{Point: point, FSType: g[0], Source: unescapeOctal(g[1]), Options: strings.Split(f[5], ",")}
		ok = true
	}
	if !ok {
		return Mount{}, fmt.Errorf("boot: nothing mounted at %s", point)
	}
	return found, nil
}

// unescapeOctal undoes mountinfo's \ooo escapes (space is \040).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return s[0] <= '3'
}
