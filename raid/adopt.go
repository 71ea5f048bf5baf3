package raid

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"time"
)

// ErrAdoptRefused is wrapped by every refusal of PlanAdopt and Adopter:
// the request cannot be done as asked (the disk is not blank, too small,
// the source is not a healthy member, ...). Nothing was written.
var ErrAdoptRefused = errors.New("refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("raid: adopt: %w: %s", ErrAdoptRefused, fmt.Sprintf(format, args...))
}

// GPTEntry is one used partition entry of a GPT.
type GPTEntry struct {
	// Number is the entry's 1-based index (the N of sdaN).
	Number int
	Name   string
	// Type is the partition type GUID, upper case.
	Type string
	// GUID is the partition's unique GUID, upper case.
	GUID string
	// FirstLBA and LastLBA are inclusive, in logical sectors.
	FirstLBA, LastLBA uint64
	Attributes        uint64
}

// DiskTable is a disk's GPT as read, or as planned.
type DiskTable struct {
	// Disk is the kernel name (vda, sdb, nvme0n1).
	Disk string
	// GUID is the disk GUID, upper case.
	GUID string
	// SectorSize is the logical sector size in bytes (512 or 4096).
	SectorSize int64
	// Size is the disk's size in bytes.
	Size       int64
	Partitions []GPTEntry
}

// Extent is e's byte range on a disk with sectors of ss bytes.
func (e GPTEntry) Extent(ss int64) Partition {
	return Partition{Number: e.Number, Label: e.Name, Type: e.Type,
		Start: int64(e.FirstLBA) * ss, Size: int64(e.LastLBA-e.FirstLBA+1) * ss}
}

// Entry returns the table's entry number n.
func (t DiskTable) Entry(n int) (GPTEntry, bool) {
	for _, e := range t.Partitions {
		if e.Number == n {
			return e, true
		}
	}
	return GPTEntry{}, false
}

// gptEntrySectors is the sectors a GPT's 128 entries of 128 bytes take.
func gptEntrySectors(ss int64) int64 { return (128*128 + ss - 1) / ss }

// BlankDisk is what is known of the disk to adopt.
type BlankDisk struct {
	// Name is the kernel name (vdc).
	Name       string
	Size       int64
	SectorSize int64
	// Partitions are the kernel's partitions of the disk (vdc1, ...).
	Partitions []string
	// Holders are what holds the disk open as a whole (md127, dm-0).
	Holders []string
	// Superblock is mdadm --examine of the whole disk.
	Superblock Superblock
	// Signatures are the on-disk signatures found (see DiskSignatures,
	// MdMagicAt): any makes the disk not blank.
	Signatures []string
}

// AdoptJoin is one partition of the adopted disk joining an array.
type AdoptJoin struct {
	Number int `json:"number"`
	// Array is the array's kernel name (md1).
	Array string `json:"array"`
	// Device is the new member (/dev/vdc2); Source the source disk's
	// partition in the array (/dev/vda2).
	Device string `json:"device"`
	Source string `json:"source"`
}

// AdoptPlan is how a blank disk becomes a copy of a member disk.
type AdoptPlan struct {
	// Table is the blank disk's new GPT: the source's entries (numbers,
	// extents, types, names, attributes) with fresh GUIDs.
	Table DiskTable
	// Source is the healthy disk's table it was planned from.
	Source DiskTable
	// ESP is the ESP's entry number (0 when the source has none); it is
	// copied byte for byte from the source.
	ESP int
	// Joins are the partitions to add to arrays, by number.
	Joins []AdoptJoin
	// Unused are partitions of other types, partitioned and left alone.
	Unused []int
}

// NeededSize is the smallest disk that can hold src's partitions and the
// backup GPT behind them.
func NeededSize(src DiskTable) int64 {
	var last uint64
	for _, e := range src.Partitions {
		last = max(last, e.LastLBA)
	}
	ss := src.SectorSize
	return (int64(last) + 1 + gptEntrySectors(ss) + 1) * ss
}

// PlanAdopt plans partitioning blank after src, a healthy disk whose
// partitions are members of arrays: the same table with fresh GUIDs, the
// ESP copied, every Linux RAID partition added to the array its
// counterpart on src is an in-sync member of. rnd supplies the GUIDs
// (nil means crypto/rand). It refuses, wrapping ErrAdoptRefused, a disk
// that is not blank (partitions, holders, an md superblock, a partition
// table or md signature), smaller than NeededSize, with another sector
// size, or a src partition of RAID type that is not an in-sync member of
// a running array.
func PlanAdopt(src DiskTable, blank BlankDisk, arrays []ArrayStatus, rnd io.Reader) (AdoptPlan, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	switch {
	case blank.Name == "" || src.Disk == "":
		return AdoptPlan{}, refuse("needs the blank disk and the source disk (have %q and %q)", blank.Name, src.Disk)
	case blank.Name == src.Disk:
		return AdoptPlan{}, refuse("%s is the source disk itself", blank.Name)
	case len(src.Partitions) == 0:
		return AdoptPlan{}, refuse("source disk %s has no partitions", src.Disk)
	case src.SectorSize != 512 && src.SectorSize != 4096:
		return AdoptPlan{}, refuse("source disk %s: sector size %d (want 512 or 4096)", src.Disk, src.SectorSize)
	}
	if why := notBlank(blank); why != "" {
		return AdoptPlan{}, refuse("%s is not blank: %s; only blank disks are adopted (wipe it first if it is really unused)", blank.Name, why)
	}
	if blank.SectorSize != src.SectorSize {
		return AdoptPlan{}, refuse("%s has %d-byte sectors, source %s has %d-byte sectors", blank.Name, blank.SectorSize, src.Disk, src.SectorSize)
	}
	if need := NeededSize(src); blank.Size < need {
		return AdoptPlan{}, refuse("%s is too small: %d bytes (%d MiB), the layout of %s needs %d bytes (%d MiB)",
			blank.Name, blank.Size, blank.Size/MiB, src.Disk, need, (need+MiB-1)/MiB)
	}
	first := uint64(2 + gptEntrySectors(src.SectorSize))
	// member name -> array, for running redundant arrays.
	type membership struct {
		array  string
		inSync bool
	}
	owner := map[string]membership{}
	for _, a := range arrays {
		for _, m := range a.Members {
			owner[m.Name] = membership{array: a.Name, inSync: a.State.Running() && m.InSync() && !m.Faulty()}
		}
	}
	p := AdoptPlan{Source: src, Table: DiskTable{Disk: blank.Name, SectorSize: src.SectorSize, Size: blank.Size}}
	g, err := newGUID(rnd)
	if err != nil {
		return AdoptPlan{}, err
	}
	p.Table.GUID = g
	entries := append([]GPTEntry(nil), src.Partitions...)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Number < entries[j].Number })
	seen := map[int]bool{}
	for _, e := range entries {
		if e.Number < 1 || e.Number > 128 || seen[e.Number] {
			return AdoptPlan{}, refuse("source disk %s: bad or repeated partition number %d", src.Disk, e.Number)
		}
		seen[e.Number] = true
		if e.FirstLBA < first || e.LastLBA < e.FirstLBA {
			return AdoptPlan{}, refuse("source disk %s: partition %d has a bad extent (LBA %d-%d)", src.Disk, e.Number, e.FirstLBA, e.LastLBA)
		}
		n := e
		if n.GUID, err = newGUID(rnd); err != nil {
			return AdoptPlan{}, err
		}
		p.Table.Partitions = append(p.Table.Partitions, n)
		typ := strings.ToUpper(e.Type)
		srcDev := PartitionDevice(src.Disk, e.Number)
		switch typ {
		case TypeESP:
			if p.ESP != 0 {
				return AdoptPlan{}, refuse("source disk %s has two ESPs (partitions %d and %d)", src.Disk, p.ESP, e.Number)
			}
			p.ESP = e.Number
		case TypeLinuxRAID:
			m, ok := owner[strings.TrimPrefix(srcDev, "/dev/")]
			if !ok {
				return AdoptPlan{}, refuse("source partition %s (%q) is in no running md array; nothing to join", srcDev, e.Name)
			}
			if !m.inSync {
				return AdoptPlan{}, refuse("source partition %s is not an in-sync member of %s; adopt from a healthy disk", srcDev, m.array)
			}
			p.Joins = append(p.Joins, AdoptJoin{Number: e.Number, Array: m.array, Device: PartitionDevice(blank.Name, e.Number), Source: srcDev})
		default:
			p.Unused = append(p.Unused, e.Number)
		}
	}
	// Partitions of one array on one disk would be two copies on one
	// spindle; a table like that is not ftnas's.
	byArray := map[string]int{}
	for _, j := range p.Joins {
		if prev, ok := byArray[j.Array]; ok {
			return AdoptPlan{}, refuse("source disk %s has partitions %d and %d in %s", src.Disk, prev, j.Number, j.Array)
		}
		byArray[j.Array] = j.Number
	}
	return p, nil
}

func notBlank(b BlankDisk) string {
	var why []string
	if len(b.Partitions) > 0 {
		why = append(why, "it has partitions "+strings.Join(b.Partitions, ", "))
	}
	if len(b.Holders) > 0 {
		why = append(why, "it is held by "+strings.Join(b.Holders, ", "))
	}
	if b.Superblock.Populated {
		s := "it carries an md superblock"
		if b.Superblock.Name != "" {
			s += " of array " + b.Superblock.Name
		}
		why = append(why, s)
	}
	if len(b.Signatures) > 0 {
		why = append(why, "found "+strings.Join(b.Signatures, ", "))
	}
	return strings.Join(why, "; ")
}

// newGUID is a random (version 4) GUID, upper case.
func newGUID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("raid: adopt: random GUID: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])), nil
}

// mdMagic is the md superblock magic, little endian on disk (1.x) and
// native endian (0.90; little endian on every machine ftnas runs on).
const mdMagic = 0xa92b4efc

// DiskSignatureBytes is how much of a disk's start DiskSignatures reads.
const DiskSignatureBytes = 128 << 10

// diskMagics are signatures of what may live on a whole disk: partition
// tables, file systems, volume managers, swap.
var diskMagics = []struct {
	off   int64
	magic string
	what  string
}{
	{0, "XFSB", "an XFS file system"},
	{0, "LUKS\xba\xbe", "a LUKS header"},
	{0, "hsqs", "a SquashFS image"},
	{3, "NTFS    ", "an NTFS file system"},
	{512, "LABELONE", "an LVM physical volume"},
	{1080, "\x53\xef", "an ext2/3/4 file system"},
	{4086, "SWAPSPACE2", "swap space"},
	{4086, "SWAP-SPACE", "swap space"},
	{65536 + 64, "_BHRfS_M", "a btrfs file system"},
}

// DiskSignatures reports what the start of a disk (head: the first
// DiskSignatureBytes, or the whole disk if smaller) holds that marks it
// as in use: an MBR or protective MBR (0x55AA at 510), a GPT header
// ("EFI PART" at sector 1 of ss bytes), a file system, LVM, LUKS or swap.
func DiskSignatures(head []byte, ss int64) []string {
	var out []string
	if len(head) >= 512 && head[510] == 0x55 && head[511] == 0xaa {
		out = append(out, "an MBR signature")
	}
	if int64(len(head)) >= ss+8 && string(head[ss:ss+8]) == "EFI PART" {
		out = append(out, "a GPT header")
	}
	for _, m := range diskMagics {
		end := m.off + int64(len(m.magic))
		if int64(len(head)) >= end && string(head[m.off:end]) == m.magic {
			out = append(out, m.what)
		}
	}
	return out
}

// MdSuperblockOffsets are where md looks for a superblock in a device of
// size bytes: 1.1 at 0, 1.2 at 4 KiB, 1.0 at 8 KiB before the end
// (4 KiB aligned), 0.90 in the last 64 KiB-aligned 64 KiB.
func MdSuperblockOffsets(size int64) []int64 {
	out := []int64{0, 4096}
	if size >= 16*1024 {
		out = append(out, (size-8*1024)&^(4*1024-1))
	}
	if size >= 128*1024 {
		out = append(out, size&^(64*1024-1)-64*1024)
	}
	return out
}

// MdMagicAt reports the offsets within extent where r holds the md
// superblock magic: a trace of an old array that adding the partition
// could revive. Read errors are returned.
func MdMagicAt(r io.ReaderAt, extent Partition) ([]int64, error) {
	var found []int64
	var b [4]byte
	for _, off := range MdSuperblockOffsets(extent.Size) {
		if _, err := r.ReadAt(b[:], extent.Start+off); err != nil {
			return nil, fmt.Errorf("raid: read md superblock location %d of partition %d: %w", extent.Start+off, extent.Number, err)
		}
		if binary.LittleEndian.Uint32(b[:]) == mdMagic {
			found = append(found, off)
		}
	}
	return found, nil
}

// ChooseAdoptSource picks the disk to copy when the operator names none:
// of disks (kernel name -> its partitions' kernel names), not counting
// exclude, the one with the most partitions that are in-sync members of
// running arrays; ties go to the first name. It refuses when no disk has
// any.
func ChooseAdoptSource(arrays []ArrayStatus, disks map[string][]string, exclude string) (string, error) {
	inSync := map[string]bool{}
	for _, a := range arrays {
		if !a.State.Running() {
			continue
		}
		for _, m := range a.Members {
			if m.InSync() && !m.Faulty() {
				inSync[m.Name] = true
			}
		}
	}
	names := make([]string, 0, len(disks))
	for d := range disks {
		names = append(names, d)
	}
	sort.Strings(names)
	best, bestN := "", 0
	for _, d := range names {
		if d == exclude {
			continue
		}
		n := 0
		for _, p := range disks[d] {
			if inSync[p] {
				n++
			}
		}
		if n > bestN {
			best, bestN = d, n
		}
	}
	if best == "" {
		return "", refuse("no disk has partitions in sync in a running array to copy; name the source disk")
	}
	return best, nil
}

// Adopter partitions a blank disk like a member disk, copies the ESP and
// adds the new partitions to the arrays (Adopt, Linux only).
type Adopter struct {
	Mdadm *Mdadm
	// Block is /sys/block and ClassBlock /sys/class/block (os.DirFS on a
	// live system).
	Block, ClassBlock fs.FS
	// DevDir holds the device nodes; "" means /dev.
	DevDir string
	// PartitionWait bounds the wait for the kernel's partition devices
	// after the re-read; 0 means 10 s.
	PartitionWait time.Duration
	// Rand supplies the new GUIDs; nil means crypto/rand.
	Rand   io.Reader
	Logger *slog.Logger
}

// AdoptResult is what Adopt did.
type AdoptResult struct {
	Disk string `json:"disk"`
	From string `json:"from"`
	// Plan is the table written and the joins planned.
	Plan AdoptPlan `json:"-"`
	// ESPHash is the SHA-256 both ESPs have ("" without an ESP).
	ESPHash string `json:"esp_sha256,omitempty"`
	// Added are the partitions added to arrays, in order.
	Added []AdoptJoin `json:"added"`
}

func (a *Adopter) devDir() string {
	if a.DevDir != "" {
		return a.DevDir
	}
	return "/dev"
}

func (a *Adopter) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// CompareTables returns nil when a and b have the same sector size and
// the same partitions (numbers, extents, types, names, attributes); with
// guids the disk and partition GUIDs must match too.
func CompareTables(a, b DiskTable, guids bool) error {
	return sameTable(a, b, guids)
}

func sameTable(a, b DiskTable, guids bool) error {
	if a.SectorSize != b.SectorSize {
		return fmt.Errorf("sector size %d vs %d", a.SectorSize, b.SectorSize)
	}
	if guids && !strings.EqualFold(a.GUID, b.GUID) {
		return fmt.Errorf("disk GUID %s vs %s", a.GUID, b.GUID)
	}
	if len(a.Partitions) != len(b.Partitions) {
		return fmt.Errorf("%d partitions vs %d", len(a.Partitions), len(b.Partitions))
	}
	for _, x := range a.Partitions {
		y, ok := b.Entry(x.Number)
		if !ok {
			return fmt.Errorf("partition %d missing", x.Number)
		}
		if !guids {
			x.GUID, y.GUID = "", ""
		}
		x.Type, y.Type = strings.ToUpper(x.Type), strings.ToUpper(y.Type)
		x.GUID, y.GUID = strings.ToUpper(x.GUID), strings.ToUpper(y.GUID)
		if x != y {
			return fmt.Errorf("partition %d: %+v vs %+v", x.Number, x, y)
		}
	}
	return nil
}
