package userland

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"ftnas/images/boot"
	"ftnas/raid"
)

// Store is one of the slot's persistent filesystems: an md array the
// installer made, mounted by the init before nasd starts.
type Store struct {
	// Role is the array's role in raid.Plan (raid.RoleState).
	Role string
	// Array is the md superblock and GPT partition name (ftnas-state).
	Array string
	// Mount is where the init mounts it.
	Mount string
	// Label is the filesystem label a first boot gives it.
	Label string
}

// Stores are the state array, mounted at StateDir (nasd's bbolt state),
// and the data array, mounted at Volume (the shares), in mount order.
func Stores() []Store {
	return []Store{
		{Role: raid.RoleState, Array: boot.StateArrayName, Mount: StateDir, Label: "ftnas-state"},
		{Role: raid.RoleData, Array: boot.DataArrayName, Mount: Volume, Label: "ftnas-data"},
	}
}

// Filesystem types the init makes and mounts.
const (
	FSExt4  = "ext4"
	FSBtrfs = "btrfs"
)

// Paths of the mkfs programs in the userland (e2fsprogs is in minbase,
// btrfs-progs in DefaultSpec).
const (
	MkfsExt4Path  = "/sbin/mkfs.ext4"
	MkfsBtrfsPath = "/sbin/mkfs.btrfs"
)

// Btrfs sizes: mkfs.btrfs refuses a device under about 109 MiB
// (114294784 bytes) unless its data and metadata share block groups
// (--mixed), which it recommends under 1 GiB and which itself needs
// 16 MiB.
const (
	BtrfsMinSize    = 128 * raid.MiB
	BtrfsMixedBelow = 1 * raid.GiB
)

// ProbeSize is how much of a device ProbeFS reads: every signature it
// knows lies in the first 64 KiB + 4 KiB; "blank" means this much is zero.
const ProbeSize = 1 * raid.MiB

// Probe is what ProbeFS found at the start of a device.
type Probe struct {
	// Type is the signature found: FSExt4 (an ext2, ext3 or ext4
	// superblock: the ext4 driver mounts all three), FSBtrfs, "xfs",
	// "squashfs", "crypto_LUKS", "LVM2_member", "swap" or "vfat";
	// "" when none.
	Type string
	// Blank is true when the first ProbeSize bytes (or the whole device,
	// if smaller) are all zero: never written since the array was made.
	Blank bool
}

// signature is a magic at an offset.
type signature struct {
	typ   string
	off   int64
	magic []byte
}

func signatures() []signature {
	ext := make([]byte, 2)
	binary.LittleEndian.PutUint16(ext, 0xEF53)
	return []signature{
		{FSExt4, 1024 + 0x38, ext},
		{FSBtrfs, 64*1024 + 0x40, []byte("_BHRfS_M")},
		{"xfs", 0, []byte("XFSB")},
		{"squashfs", 0, []byte("hsqs")},
		{"crypto_LUKS", 0, []byte("LUKS\xba\xbe")},
		{"LVM2_member", 512 + 24, []byte("LVM2 001")},
		{"swap", 4096 - 10, []byte("SWAPSPACE2")},
		{"vfat", 0x52, []byte("FAT32   ")},
		{"vfat", 0x36, []byte("FAT1")},
	}
}

// ProbeFS looks for a filesystem (or other known) signature in the first
// ProbeSize bytes of a device of size bytes read through r.
func ProbeFS(r io.ReaderAt, size int64) (Probe, error) {
	n := min(size, ProbeSize)
	if n < 0 {
		return Probe{}, fmt.Errorf("userland: probe: negative size %d", size)
	}
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, 0); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return Probe{}, fmt.Errorf("userland: probe: read %d bytes: %w", n, err)
	}
	p := Probe{Blank: true}
	for _, c := range buf {
		if c != 0 {
			p.Blank = false
			break
		}
	}
	if p.Blank {
		return p, nil
	}
	for _, s := range signatures() {
		end := s.off + int64(len(s.magic))
		if end <= n && bytes.Equal(buf[s.off:end], s.magic) {
			p.Type = s.typ
			return p, nil
		}
	}
	return p, nil
}

// Action is what the init does with a store's array.
type Action int

const (
	// Keep: mount the filesystem that is there.
	Keep Action = iota
	// Format: the array is blank; make Decision.FSType on it (first
	// boot).
	Format
	// Refuse: the array holds something the init does not mount and
	// must not overwrite; the slot does not come up.
	Refuse
)

func (a Action) String() string {
	switch a {
	case Keep:
		return "keep"
	case Format:
		return "format"
	case Refuse:
		return "refuse"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Decision is Decide's answer.
type Decision struct {
	Action Action
	// FSType is the filesystem to mount (Keep) or make (Format).
	FSType string
	// Reason says why, for the console.
	Reason string
}

// Decide says what to do with store s's array of size bytes whose start
// probed as p; haveBtrfs says whether mkfs.btrfs is in the userland. An
// ext4 or btrfs filesystem is kept whatever it is; only an array whose
// first ProbeSize bytes are all zero is formatted: state ext4, data btrfs
// when the tools are there and the array is at least BtrfsMinSize, else
// ext4. Anything else (another signature, or data with no known
// signature) is refused, never formatted.
func Decide(s Store, p Probe, size int64, haveBtrfs bool) Decision {
	switch {
	case p.Type == FSExt4 || p.Type == FSBtrfs:
		return Decision{Action: Keep, FSType: p.Type, Reason: "holds " + p.Type}
	case p.Type != "":
		return Decision{Action: Refuse, Reason: fmt.Sprintf("holds %s, which the slot does not mount; not formatting it", p.Type)}
	case !p.Blank:
		return Decision{Action: Refuse, Reason: fmt.Sprintf("holds data with no filesystem signature known (first %d KiB not zero); not formatting it", ProbeSize>>10)}
	}
	fs := FSExt4
	if s.Role == raid.RoleData && haveBtrfs && size >= BtrfsMinSize {
		fs = FSBtrfs
	}
	return Decision{Action: Format, FSType: fs, Reason: "blank"}
}

// MkfsCommand is the command line (argv[0] an absolute path) that makes
// fs labelled label on dev, an array of size bytes. It has no force
// flag: mke2fs and mkfs.btrfs themselves refuse a device with a
// filesystem signature (mke2fs asks, and its stdin is /dev/null).
func MkfsCommand(fs, label, dev string, size int64) ([]string, error) {
	switch fs {
	case FSExt4:
		return []string{MkfsExt4Path, "-q", "-L", label, dev}, nil
	case FSBtrfs:
		args := []string{MkfsBtrfsPath, "-q", "-L", label}
		if size < BtrfsMixedBelow {
			args = append(args, "--mixed")
		}
		return append(args, dev), nil
	}
	return nil, fmt.Errorf("userland: mkfs: unknown filesystem %q", fs)
}

// MountSpec is one mount(2).
type MountSpec struct {
	Source, Target, FSType string
	// NoAtime, NoDev and NoSuid are the MS_ flags.
	NoAtime, NoDev, NoSuid bool
	// Data is the filesystem's own options.
	Data string
}

// MountSpec mounts dev (holding fs) at the store's mount point: noatime
// (a NAS does not write an inode for every read), nodev and nosuid (the
// shares hold clients' files); ext4 remounts read-only on an error
// rather than going on (its journalling stays data=ordered, the
// default), btrfs takes its defaults.
func (s Store) MountSpec(dev, fs string) MountSpec {
	m := MountSpec{Source: dev, Target: s.Mount, FSType: fs, NoAtime: true, NoDev: true, NoSuid: true}
	if fs == FSExt4 {
		m.Data = "errors=remount-ro"
	}
	return m
}

// StoragePrefix starts the init's console lines about the stores.
const StoragePrefix = "ftnas: storage "

// StorageReport is what the init did with a store.
type StorageReport struct {
	Store Store
	// Device is the array's device (/dev/md126).
	Device string
	Array  raid.ArrayStatus
	FSType string
	// Formatted is true on the first boot, when the init made the
	// filesystem.
	Formatted bool
}

// Line is the console line for r:
//
//	ftnas: storage state array=ftnas-state dev=/dev/md126 level=raid1 degraded=0 members=2/2 fs=ext4 kept mount=/var/lib/ftnas
func (r StorageReport) Line() string {
	in := 0
	for _, m := range r.Array.Members {
		if m.InSync() {
			in++
		}
	}
	what := "kept"
	if r.Formatted {
		what = "formatted"
	}
	return fmt.Sprintf("%s%s array=%s dev=%s level=%s degraded=%d members=%d/%d fs=%s %s mount=%s",
		StoragePrefix, r.Store.Role, r.Store.Array, r.Device, r.Array.Level, r.Array.Degraded, in, r.Array.RaidDisks, r.FSType, what, r.Store.Mount)
}

// StorageRegexp matches a StorageReport line: role, array, device,
// level, degraded, in sync, raid disks, fs, "formatted" or "kept", mount
// point.
func StorageRegexp() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(StoragePrefix) +
		`(\S+) array=(\S+) dev=(\S+) level=(\S+) degraded=(\d+) members=(\d+)/(\d+) fs=(\S+) (formatted|kept) mount=(\S+)\r?$`)
}

// FallbackLine is the console warning when a store has no array on the
// disks (a test boot without the installer's arrays): its mount point
// is a tmpfs and nothing written there survives a reboot.
func FallbackLine(s Store) string {
	return fmt.Sprintf("%sWARNING: no %s array on these disks: %s is a TMPFS, NOTHING WRITTEN THERE SURVIVES A REBOOT", StoragePrefix, s.Array, s.Mount)
}
