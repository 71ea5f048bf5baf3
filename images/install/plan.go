package install

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"ftnas/images/boot"
	"ftnas/images/guest"
	"ftnas/raid"
)

// ErrRefused is wrapped by every refusal: the install cannot be done as
// asked (a disk is not blank, the box runs from it, too few disks, the
// bundle does not fit, ...). Nothing was written.
var ErrRefused = errors.New("refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("install: %w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// Disk is what is known of a disk named for the install.
type Disk struct {
	// Name is the kernel name (vdb, sdc, nvme1n1).
	Name       string
	Size       int64
	SectorSize int64
	// Partition is set when the name is a partition, not a whole disk.
	Partition bool
	// Partitions are the kernel's partitions of the disk (vdb1, ...).
	Partitions []string
	// Holders hold the whole disk (md127, dm-0).
	Holders []string
	// Signatures are what its first and last MiB hold that marks it in
	// use (Signatures).
	Signatures []string
	// RunsFrom is set when the box runs from the disk: why (a partition
	// of it is a member of a running array, it holds the ESP the loader
	// was read from, it is mounted).
	RunsFrom string
}

// Request is what to install onto which disks.
type Request struct {
	Disks []Disk
	// DataLevel is the data array's level; "" picks by disk count
	// (raid.DefaultDataLevel).
	DataLevel raid.Level
	// Layout sizes the partitions (DataLevel is taken from above).
	Layout raid.LayoutOptions
	// ID is the new installation's id (NewID): the homehost of its
	// arrays and ftnas.install= on its loader entries.
	ID string
	// RootfsSize is the bundle's slot image's size.
	RootfsSize int64
	// Cmdline is the kernel command line to start the new box's loader
	// entries from (the running entry's options); ftnas.slot=,
	// ftnas.install= and test hooks (ftnas.test_*) are replaced.
	Cmdline string
}

// Array is one md array to create.
type Array struct {
	raid.ArrayPlan
	// Create is mdadm's spec: the device is /dev/md/ID-ROLE, so it never
	// collides with the running box's /dev/md/ftnas-ROLE, and the
	// superblock name is "ID:ftnas-ROLE" (homehost ID).
	Create raid.CreateSpec
	// Zero is set for the state and data arrays: their first
	// ZeroBytes are zeroed, so the first boot's init formats them.
	Zero bool
}

// ZeroBytes is how much of the state and data arrays is zeroed: the
// userland's probe reads this much (userland.ProbeSize).
const ZeroBytes = 1 * raid.MiB

// Plan is an install planned.
type Plan struct {
	ID     string
	Layout raid.Layout
	// Arrays are in layout order: root-a, root-b, state, data.
	Arrays []Array
	// Cmdlines are the loader entries' kernel command lines by slot.
	Cmdlines map[string]string
}

// Slots are the root slots; a boots first.
func Slots() []string { return []string{"a", "b"} }

// NewID makes an installation id from r (crypto/rand): 16 hex digits.
func NewID(r io.Reader) (string, error) {
	var b [boot.MaxInstallID / 2]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("install: new installation id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// ArrayDevice is where the install creates the array of role:
// /dev/md/ID-ROLE.
func ArrayDevice(id, role string) string { return "/dev/md/" + id + "-" + role }

// CheckDisks refuses (ErrRefused) disks that cannot be installed onto,
// and fewer disks than level ("" by disk count) needs, naming every bad
// disk (the errors joined). It returns the data level.
func CheckDisks(ds []Disk, level raid.Level) (raid.Level, error) {
	if len(ds) == 0 {
		return "", refuse("no disks named")
	}
	if level == "" {
		level = raid.DefaultDataLevel(len(ds))
	}
	min, err := level.MinDisks()
	if err != nil {
		return "", refuse("data level %q: %v (want raid1, raid5, raid6 or raid10)", level, err)
	}
	var errs []error
	seen := map[string]bool{}
	var names []string
	for _, d := range ds {
		names = append(names, d.Name)
		if seen[d.Name] {
			errs = append(errs, refuse("disk %s is named twice", d.Name))
			continue
		}
		seen[d.Name] = true
		if why := unusable(d); why != "" {
			errs = append(errs, refuse("%s: %s", d.Name, why))
		}
	}
	if len(ds) < min {
		errs = append(errs, refuse("data level %s needs at least %d disks, %d named (%s)", level, min, len(ds), strings.Join(names, ", ")))
	}
	return level, errors.Join(errs...)
}

// PlanInstall checks the disks (CheckDisks) and plans the install.
func PlanInstall(req Request) (Plan, error) {
	if !boot.ValidInstallID(req.ID) {
		return Plan{}, fmt.Errorf("install: bad installation id %q", req.ID)
	}
	level, err := CheckDisks(req.Disks, req.DataLevel)
	if err != nil {
		return Plan{}, err
	}
	var disks []raid.Disk
	for _, d := range req.Disks {
		disks = append(disks, raid.Disk{Name: d.Name, Size: d.Size, SectorSize: d.SectorSize})
	}
	lo := req.Layout
	lo.DataLevel = level
	l, err := raid.Plan(disks, lo)
	if err != nil {
		return Plan{}, refuse("%v", err)
	}
	p := Plan{ID: req.ID, Layout: l, Cmdlines: map[string]string{}}
	for _, a := range l.Arrays {
		dev := ArrayDevice(req.ID, a.Role)
		if a.Role == raid.RoleRootA || a.Role == raid.RoleRootB {
			// The builder's margin for md's superblock and bitmap.
			if room := a.Size - raid.MiB; req.RootfsSize > room {
				return Plan{}, refuse("the bundle's slot image of %d MiB does not fit the root slot %s of %d MiB", req.RootfsSize>>20, a.Name, room>>20)
			}
		}
		p.Arrays = append(p.Arrays, Array{
			ArrayPlan: a,
			Create: raid.CreateSpec{Device: dev, Name: a.Name, Level: a.Level, Devices: append([]string(nil), a.Members...),
				Bitmap: "internal", Homehost: req.ID},
			Zero: a.Role == raid.RoleState || a.Role == raid.RoleData,
		})
	}
	for _, s := range Slots() {
		if p.Cmdlines[s], err = EntryCmdline(req.Cmdline, s, req.ID); err != nil {
			return Plan{}, err
		}
	}
	return p, nil
}

// unusable says why d cannot be installed onto ("" when it can).
func unusable(d Disk) string {
	if d.Name == "" || strings.ContainsAny(d.Name, "/ ") {
		return "not a kernel disk name (want one such as sdb)"
	}
	if d.Partition {
		return "is a partition; name a whole disk"
	}
	if d.RunsFrom != "" {
		return "the box runs from it (" + d.RunsFrom + ")"
	}
	var why []string
	if len(d.Partitions) > 0 {
		why = append(why, "it has partitions "+strings.Join(d.Partitions, ", "))
	}
	if len(d.Holders) > 0 {
		why = append(why, "it is held by "+strings.Join(d.Holders, ", "))
	}
	if len(d.Signatures) > 0 {
		why = append(why, "found "+strings.Join(d.Signatures, ", "))
	}
	if len(why) > 0 {
		return "not blank: " + strings.Join(why, "; ") + " (wipe it with wipefs -a if it is really unused)"
	}
	if d.Size <= 0 {
		return "size unknown"
	}
	return ""
}

// Signatures reports what a disk's first and last MiB (head, tail; the
// tail ends at the disk's end) hold that marks it in use: a partition
// table (MBR, primary or backup GPT), a file system, LVM, LUKS or swap
// (raid.DiskSignatures), or md superblock magic at any place md keeps
// one (1.1 at the start, 1.2 at 4 KiB, 1.0 and 0.90 near the end). size
// is the disk's size, ss its logical sector size.
func Signatures(head, tail []byte, size, ss int64) []string {
	out := raid.DiskSignatures(head, ss)
	if ss <= 0 {
		ss = 512
	}
	tailStart := size - int64(len(tail))
	if n := int64(len(tail)); n >= ss && string(tail[n-ss:n-ss+8]) == "EFI PART" {
		out = append(out, "a backup GPT header")
	}
	for _, off := range raid.MdSuperblockOffsets(size) {
		var b []byte
		switch {
		case off+4 <= int64(len(head)):
			b = head[off : off+4]
		case off >= tailStart && off+4 <= size:
			b = tail[off-tailStart : off-tailStart+4]
		default:
			continue
		}
		if b[0] == 0xfc && b[1] == 0x4e && b[2] == 0x2b && b[3] == 0xa9 {
			out = append(out, fmt.Sprintf("md superblock magic at byte %d", off))
		}
	}
	return out
}

// droppedParams are not carried from the running entry to the new box's:
// the slot and installation id (set anew), the loader's initrd=, and the
// test hooks that act on other disks (userland's ftnas.test_install and
// ftnas.test_update: the new box must not rerun what the installer's boot
// was told to do).
var droppedParams = []string{boot.ParamSlot, boot.ParamInstall, "initrd", "ftnas.test_install", "ftnas.test_update"}

// EntryCmdline is slot's kernel command line: base without
// droppedParams, then ftnas.slot=SLOT ftnas.install=ID.
func EntryCmdline(base, slot, id string) (string, error) {
	params, err := guest.ParseCmdline(base)
	if err != nil {
		return "", fmt.Errorf("install: kernel command line: %w", err)
	}
	var out []string
	for _, p := range params {
		if slices.Contains(droppedParams, p.Key) {
			continue
		}
		if !p.HasValue {
			out = append(out, p.Key)
			continue
		}
		q, err := guest.Quote(p.Key, p.Value)
		if err != nil {
			return "", fmt.Errorf("install: kernel command line: %w", err)
		}
		out = append(out, q)
	}
	out = append(out, boot.ParamSlot+"="+slot, boot.ParamInstall+"="+id)
	return strings.Join(out, " "), nil
}

// LayoutFrom sizes the new disks' partitions like the running disk's t
// (the firmware the installer medium was built with: its ESP holds the
// same kernels, its root slots the same images): the ESP, root A and
// state partitions, found by GPT name, give the sizes; what is missing
// keeps raid's default.
func LayoutFrom(t raid.DiskTable) raid.LayoutOptions {
	var lo raid.LayoutOptions
	for _, e := range t.Partitions {
		size := e.Extent(t.SectorSize).Size
		if size%raid.MiB != 0 {
			continue
		}
		switch e.Name {
		case "ftnas-" + raid.RoleESP:
			lo.ESPSize = size
		case "ftnas-" + raid.RoleRootA:
			lo.RootSize = size
		case "ftnas-" + raid.RoleState:
			lo.StateSize = size
		}
	}
	return lo
}

// ParseLevel reads --data-level: raid1, raid5, raid6, raid10 (or 1, 5,
// 6, 10); "" is the default by disk count.
func ParseLevel(s string) (raid.Level, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", nil
	}
	if !strings.HasPrefix(s, "raid") {
		s = "raid" + s
	}
	l := raid.Level(s)
	if _, err := l.MinDisks(); err != nil {
		return "", fmt.Errorf("install: data level %q: want raid1, raid5, raid6 or raid10", s)
	}
	return l, nil
}

// EntryOptions is the "options" line of a loader entry ("" without one).
func EntryOptions(entry string) string {
	sc := bufio.NewScanner(strings.NewReader(entry))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), " "); ok && k == "options" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
