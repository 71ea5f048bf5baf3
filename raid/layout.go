package raid

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Partition roles, in the order they sit on every disk.
const (
	RoleESP   = "esp"
	RoleRootA = "root-a"
	RoleRootB = "root-b"
	RoleState = "state"
	RoleData  = "data"
)

// GPT partition type GUIDs.
const (
	TypeESP       = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	TypeLinuxRAID = "A19D880F-05FC-4D3B-A006-743F0F84911E"
)

const (
	MiB = int64(1) << 20
	GiB = int64(1) << 30
)

// Disk is a blank disk to lay out.
type Disk struct {
	// Name is the kernel name (sda, vdb, nvme0n1).
	Name string
	// Size in bytes.
	Size int64
	// SectorSize in bytes; 0 means 512.
	SectorSize int64
}

// LayoutOptions sizes the partitions; zero values take the defaults.
type LayoutOptions struct {
	ESPSize   int64 // default 512 MiB: kernel and initrd for both slots
	RootSize  int64 // per slot; default 2 GiB
	StateSize int64 // default 1 GiB
	// MinData is the smallest data partition accepted; default 1 GiB.
	MinData int64
	// DataLevel is the data array's level; "" picks by disk count:
	// RAID1 for one or two disks, RAID5 for three, RAID6 for four or more.
	DataLevel Level
}

func (o LayoutOptions) withDefaults() LayoutOptions {
	if o.ESPSize == 0 {
		o.ESPSize = 512 * MiB
	}
	if o.RootSize == 0 {
		o.RootSize = 2 * GiB
	}
	if o.StateSize == 0 {
		o.StateSize = 1 * GiB
	}
	if o.MinData == 0 {
		o.MinData = 1 * GiB
	}
	return o
}

// DefaultDataLevel is the data array's level for n disks.
func DefaultDataLevel(n int) Level {
	switch {
	case n <= 2:
		return RAID1
	case n == 3:
		return RAID5
	default:
		return RAID6
	}
}

// Partition is one GPT partition. Start and Size are in bytes, multiples
// of 1 MiB.
type Partition struct {
	Number int    // 1-based
	Role   string // RoleESP, ...
	Label  string // GPT partition name, "ftnas-" + role
	Type   string // GPT type GUID
	Start  int64
	Size   int64
}

// DiskLayout is one disk's partition table.
type DiskLayout struct {
	Disk       string
	Partitions []Partition
}

// ArrayPlan is one md array over a partition of every disk.
type ArrayPlan struct {
	Role   string // RoleRootA, ...
	Name   string // superblock name, "ftnas-" + role
	Device string // /dev/md/ftnas-ROLE
	Level  Level
	// Members are partition devices (/dev/vda2, /dev/nvme0n1p2).
	Members []string
	// Size is the array's usable size in bytes (before md metadata).
	Size int64
}

// Layout is the plan for a set of blank disks.
type Layout struct {
	Disks  []DiskLayout
	Arrays []ArrayPlan
}

// Array returns the plan of the array with role.
func (l Layout) Array(role string) (ArrayPlan, bool) {
	for _, a := range l.Arrays {
		if a.Role == role {
			return a, true
		}
	}
	return ArrayPlan{}, false
}

// gptReserve is what GPT needs at the end of a disk: the backup table (32
// sectors of entries at 512 bytes) and header; 1 MiB covers it for 4K
// sectors too.
const gptReserve = 1 * MiB

// Plan lays out disks the same way: every partition has the same start
// and size on every disk, sized from the smallest disk, so any disk can
// replace any other. The ESP is not in md (each disk has its own copy);
// root A, root B and state are RAID1 over all disks; data is DataLevel.
func Plan(disks []Disk, opts LayoutOptions) (Layout, error) {
	if len(disks) == 0 {
		return Layout{}, errors.New("raid: plan: no disks")
	}
	o := opts.withDefaults()
	for _, s := range []struct {
		name string
		v    int64
	}{{"ESPSize", o.ESPSize}, {"RootSize", o.RootSize}, {"StateSize", o.StateSize}, {"MinData", o.MinData}} {
		if s.v < MiB || s.v%MiB != 0 {
			return Layout{}, fmt.Errorf("raid: plan: %s %d is not a positive multiple of 1 MiB", s.name, s.v)
		}
	}
	level := o.DataLevel
	if level == "" {
		level = DefaultDataLevel(len(disks))
	}
	min, err := level.MinDisks()
	if err != nil {
		return Layout{}, fmt.Errorf("raid: plan: %w", err)
	}
	if len(disks) < min {
		return Layout{}, fmt.Errorf("raid: plan: data level %s needs at least %d disks, have %d", level, min, len(disks))
	}
	seen := map[string]bool{}
	smallest := disks[0]
	for _, d := range disks {
		if d.Name == "" || strings.ContainsAny(d.Name, "/ ") {
			return Layout{}, fmt.Errorf("raid: plan: bad disk name %q (want a kernel name such as sda)", d.Name)
		}
		if seen[d.Name] {
			return Layout{}, fmt.Errorf("raid: plan: disk %s listed twice", d.Name)
		}
		seen[d.Name] = true
		ss := d.SectorSize
		if ss == 0 {
			ss = 512
		}
		if ss != 512 && ss != 4096 {
			return Layout{}, fmt.Errorf("raid: plan: disk %s: sector size %d (want 512 or 4096)", d.Name, ss)
		}
		if d.Size < smallest.Size {
			smallest = d
		}
	}
	// Usable: from 1 MiB (after the primary GPT) to the last whole MiB
	// before the backup GPT.
	end := (smallest.Size - gptReserve) / MiB * MiB
	fixed := MiB + o.ESPSize + 2*o.RootSize + o.StateSize
	dataSize := end - fixed
	if dataSize < o.MinData {
		return Layout{}, fmt.Errorf("raid: plan: disk %s (%d MiB) is too small: needs %d MiB for ESP, root A/B and state plus %d MiB of data",
			smallest.Name, smallest.Size/MiB, (fixed+gptReserve)/MiB, o.MinData/MiB)
	}
	parts := []Partition{
		{Role: RoleESP, Type: TypeESP, Size: o.ESPSize},
		{Role: RoleRootA, Type: TypeLinuxRAID, Size: o.RootSize},
		{Role: RoleRootB, Type: TypeLinuxRAID, Size: o.RootSize},
		{Role: RoleState, Type: TypeLinuxRAID, Size: o.StateSize},
		{Role: RoleData, Type: TypeLinuxRAID, Size: dataSize},
	}
	start := MiB
	for i := range parts {
		parts[i].Number = i + 1
		parts[i].Label = "ftnas-" + parts[i].Role
		parts[i].Start = start
		start += parts[i].Size
	}
	var l Layout
	for _, d := range disks {
		l.Disks = append(l.Disks, DiskLayout{Disk: d.Name, Partitions: append([]Partition(nil), parts...)})
	}
	for _, p := range parts[1:] {
		a := ArrayPlan{Role: p.Role, Name: "ftnas-" + p.Role, Device: "/dev/md/ftnas-" + p.Role, Level: RAID1, Size: p.Size}
		if p.Role == RoleData {
			a.Level = level
			a.Size = dataCapacity(level, len(disks), p.Size)
		}
		for _, d := range disks {
			a.Members = append(a.Members, PartitionDevice(d.Name, p.Number))
		}
		l.Arrays = append(l.Arrays, a)
	}
	return l, nil
}

// dataCapacity is the usable size of an array of n members of size each.
func dataCapacity(level Level, n int, size int64) int64 {
	switch level {
	case RAID5:
		return int64(n-1) * size
	case RAID6:
		return int64(n-2) * size
	case RAID10:
		return int64(n) * size / 2 // near=2
	default:
		return size
	}
}

// PartitionDevice is the device path of partition n of disk: /dev/sda3,
// or /dev/nvme0n1p3 when the disk name ends in a digit.
func PartitionDevice(disk string, n int) string {
	if disk == "" {
		return ""
	}
	sep := ""
	if last := disk[len(disk)-1]; last >= '0' && last <= '9' {
		sep = "p"
	}
	return "/dev/" + disk + sep + strconv.Itoa(n)
}

// CreateSpecs are the mdadm create specs for a layout's arrays, with an
// internal bitmap on each.
func (l Layout) CreateSpecs() []CreateSpec {
	var out []CreateSpec
	for _, a := range l.Arrays {
		out = append(out, CreateSpec{
			Device: a.Device, Name: a.Name, Level: a.Level,
			Devices: append([]string(nil), a.Members...), Bitmap: "internal",
		})
	}
	return out
}
