package raid_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"ftnas/raid"
)

// tableOf is the GPT a disk laid out by raid.Plan has, with made-up GUIDs.
func tableOf(t *testing.T, d raid.DiskLayout, size int64) raid.DiskTable {
	t.Helper()
	out := raid.DiskTable{Disk: d.Disk, GUID: "11111111-2222-4333-8444-555555555555", SectorSize: 512, Size: size}
	for _, p := range d.Partitions {
		out.Partitions = append(out.Partitions, raid.GPTEntry{
			Number: p.Number, Name: p.Label, Type: p.Type, GUID: strings.Repeat("A", 8) + "-0000-4000-8000-00000000000" + string(rune('0'+p.Number)),
			FirstLBA: uint64(p.Start / 512), LastLBA: uint64((p.Start+p.Size)/512 - 1),
		})
	}
	return out
}

// healthy is a two-disk layout on sda and sdb with its arrays running,
// sdb's members failed and removed: the state a blank sdc is adopted in.
func healthy(t *testing.T) (raid.DiskTable, []raid.ArrayStatus) {
	t.Helper()
	const size = 16 * raid.GiB
	l, err := raid.Plan([]raid.Disk{{Name: "sda", Size: size}, {Name: "sdb", Size: size}}, raid.LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var arrays []raid.ArrayStatus
	for i, a := range l.Arrays {
		arrays = append(arrays, raid.ArrayStatus{
			Name: "md" + string(rune('0'+i)), Level: "raid1", State: "clean", RaidDisks: 2, Degraded: 1,
			Members: []raid.Member{{Name: strings.TrimPrefix(a.Members[0], "/dev/"), Slot: 0, State: []string{"in_sync"}}},
		})
	}
	return tableOf(t, l.Disks[0], size), arrays
}

func seeded() *rand.ChaCha8 { return rand.NewChaCha8([32]byte{7}) }

func TestPlanAdopt(t *testing.T) {
	src, arrays := healthy(t)
	blank := raid.BlankDisk{Name: "sdc", Size: src.Size + raid.GiB, SectorSize: 512}
	p, err := raid.PlanAdopt(src, blank, arrays, seeded())
	if err != nil {
		t.Fatal(err)
	}
	if err := raid.CompareTables(src, p.Table, false); err != nil {
		t.Errorf("planned table differs from the source's: %v", err)
	}
	if err := raid.CompareTables(src, p.Table, true); err == nil {
		t.Error("planned table has the source's GUIDs")
	}
	if p.Table.Disk != "sdc" || p.Table.Size != blank.Size || p.ESP != 1 || len(p.Unused) != 0 {
		t.Errorf("plan: disk %s size %d ESP %d unused %v", p.Table.Disk, p.Table.Size, p.ESP, p.Unused)
	}
	guids := map[string]bool{p.Table.GUID: true, src.GUID: true}
	for _, e := range src.Partitions {
		guids[e.GUID] = true
	}
	for _, e := range p.Table.Partitions {
		if guids[e.GUID] || len(e.GUID) != 36 || e.GUID != strings.ToUpper(e.GUID) || e.GUID[14] != '4' {
			t.Errorf("partition %d GUID %q: want a fresh upper-case v4 GUID", e.Number, e.GUID)
		}
		guids[e.GUID] = true
	}
	want := []raid.AdoptJoin{
		{Number: 2, Array: "md0", Device: "/dev/sdc2", Source: "/dev/sda2"},
		{Number: 3, Array: "md1", Device: "/dev/sdc3", Source: "/dev/sda3"},
		{Number: 4, Array: "md2", Device: "/dev/sdc4", Source: "/dev/sda4"},
		{Number: 5, Array: "md3", Device: "/dev/sdc5", Source: "/dev/sda5"},
	}
	if !slices.Equal(p.Joins, want) {
		t.Errorf("joins = %+v\nwant %+v", p.Joins, want)
	}
	// NVMe names take a p before the partition number.
	blank.Name = "nvme1n1"
	if p, err = raid.PlanAdopt(src, blank, arrays, seeded()); err != nil || p.Joins[0].Device != "/dev/nvme1n1p2" {
		t.Errorf("nvme plan: %+v, %v", p.Joins, err)
	}
	// Exactly big enough.
	blank = raid.BlankDisk{Name: "sdc", Size: raid.NeededSize(src), SectorSize: 512}
	if _, err := raid.PlanAdopt(src, blank, arrays, seeded()); err != nil {
		t.Errorf("disk of exactly NeededSize: %v", err)
	}
	// A partition of another type is copied but joins nothing.
	src.Partitions = append(src.Partitions, raid.GPTEntry{Number: 9, Name: "spare", Type: "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
		FirstLBA: 2048 * 10, LastLBA: 2048*10 + 1})
	if p, err = raid.PlanAdopt(src, raid.BlankDisk{Name: "sdc", Size: 32 * raid.GiB, SectorSize: 512}, arrays, seeded()); err != nil ||
		!slices.Equal(p.Unused, []int{9}) || len(p.Table.Partitions) != 6 || len(p.Joins) != 4 {
		t.Errorf("plan with a foreign partition: unused %v, %d partitions, %v", p.Unused, len(p.Table.Partitions), err)
	}
}

func TestPlanAdoptRefuses(t *testing.T) {
	src, arrays := healthy(t)
	ok := raid.BlankDisk{Name: "sdc", Size: src.Size, SectorSize: 512}
	notSynced := slices.Clone(arrays)
	notSynced[2].Members = []raid.Member{{Name: "sda4", Slot: 0, State: []string{"faulty"}}}
	spare := slices.Clone(arrays)
	spare[1].Members = []raid.Member{{Name: "sda3", Slot: -1, State: []string{"spare"}}}
	stopped := slices.Clone(arrays)
	stopped[0].State = "inactive"
	for _, c := range []struct {
		name   string
		src    func(raid.DiskTable) raid.DiskTable
		blank  func(raid.BlankDisk) raid.BlankDisk
		arrays []raid.ArrayStatus
		want   string
	}{
		{name: "too small", blank: func(b raid.BlankDisk) raid.BlankDisk { b.Size = raid.NeededSize(src) - 512; return b },
			want: "sdc is too small"},
		{name: "partitions", blank: func(b raid.BlankDisk) raid.BlankDisk { b.Partitions = []string{"sdc1"}; return b },
			want: "sdc is not blank: it has partitions sdc1"},
		{name: "holders", blank: func(b raid.BlankDisk) raid.BlankDisk { b.Holders = []string{"md127"}; return b },
			want: "it is held by md127"},
		{name: "superblock", blank: func(b raid.BlankDisk) raid.BlankDisk {
			b.Superblock = raid.Superblock{Populated: true, UUID: "x", Name: "nas:old"}
			return b
		}, want: "md superblock of array nas:old"},
		{name: "signature", blank: func(b raid.BlankDisk) raid.BlankDisk { b.Signatures = []string{"a GPT header"}; return b },
			want: "found a GPT header"},
		{name: "sector size", blank: func(b raid.BlankDisk) raid.BlankDisk { b.SectorSize = 4096; return b },
			want: "4096-byte sectors"},
		{name: "itself", blank: func(b raid.BlankDisk) raid.BlankDisk { b.Name = "sda"; return b }, want: "the source disk itself"},
		{name: "no partitions", src: func(s raid.DiskTable) raid.DiskTable { s.Partitions = nil; return s }, want: "has no partitions"},
		{name: "two ESPs", src: func(s raid.DiskTable) raid.DiskTable {
			s.Partitions = slices.Clone(s.Partitions)
			s.Partitions[1].Type = raid.TypeESP
			return s
		}, want: "two ESPs"},
		{name: "bad extent", src: func(s raid.DiskTable) raid.DiskTable {
			s.Partitions = slices.Clone(s.Partitions)
			s.Partitions[0].FirstLBA = 1
			return s
		}, want: "partition 1 has a bad extent"},
		{name: "not in an array", arrays: arrays[1:], want: "source partition /dev/sda2 (\"ftnas-root-a\") is in no running md array"},
		{name: "faulty source", arrays: notSynced, want: "/dev/sda4 is not an in-sync member of md2"},
		{name: "spare source", arrays: spare, want: "/dev/sda3 is not an in-sync member of md1"},
		{name: "stopped array", arrays: stopped, want: "/dev/sda2 is not an in-sync member of md0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, b, a := src, ok, arrays
			if c.src != nil {
				s = c.src(s)
			}
			if c.blank != nil {
				b = c.blank(b)
			}
			if c.arrays != nil {
				a = c.arrays
			}
			_, err := raid.PlanAdopt(s, b, a, seeded())
			if !errors.Is(err, raid.ErrAdoptRefused) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("PlanAdopt = %v; want a refusal mentioning %q", err, c.want)
			}
		})
	}
}

func TestChooseAdoptSource(t *testing.T) {
	_, arrays := healthy(t)
	arrays[0].Members = append(arrays[0].Members, raid.Member{Name: "sdb2", Slot: 1, State: []string{"in_sync"}})
	arrays[1].Members = append(arrays[1].Members, raid.Member{Name: "sdb3", Slot: 1, State: []string{"in_sync"}})
	arrays[2].Members = append(arrays[2].Members, raid.Member{Name: "sdb4", Slot: 1, State: []string{"faulty"}})
	disks := map[string][]string{
		"sda": {"sda1", "sda2", "sda3", "sda4", "sda5"},
		"sdb": {"sdb1", "sdb2", "sdb3", "sdb4", "sdb5"},
		"sdc": nil,
	}
	if got, err := raid.ChooseAdoptSource(arrays, disks, "sdc"); got != "sda" || err != nil {
		t.Errorf("ChooseAdoptSource = %q, %v; want sda (4 in-sync members against sdb's 2)", got, err)
	}
	if got, err := raid.ChooseAdoptSource(arrays, disks, "sda"); got != "sdb" || err != nil {
		t.Errorf("ChooseAdoptSource excluding sda = %q, %v; want sdb", got, err)
	}
	if _, err := raid.ChooseAdoptSource(nil, disks, "sdc"); !errors.Is(err, raid.ErrAdoptRefused) {
		t.Errorf("ChooseAdoptSource without arrays = %v; want a refusal", err)
	}
}

func TestDiskSignatures(t *testing.T) {
	head := make([]byte, 1024)
	if s := raid.DiskSignatures(head, 512); len(s) != 0 {
		t.Errorf("zeros: %q", s)
	}
	head[510], head[511] = 0x55, 0xaa
	copy(head[512:], "EFI PART")
	if s := raid.DiskSignatures(head, 512); !slices.Equal(s, []string{"an MBR signature", "a GPT header"}) {
		t.Errorf("GPT disk: %q", s)
	}
	if s := raid.DiskSignatures(head[:600], 4096); !slices.Equal(s, []string{"an MBR signature"}) {
		t.Errorf("short head, 4K sectors: %q", s)
	}
	for _, c := range []struct {
		off   int
		magic string
		want  string
	}{
		{0, "XFSB", "an XFS file system"},
		{0, "LUKS\xba\xbe", "a LUKS header"},
		{0, "hsqs", "a SquashFS image"},
		{3, "NTFS    ", "an NTFS file system"},
		{512, "LABELONE", "an LVM physical volume"},
		{1080, "\x53\xef", "an ext2/3/4 file system"},
		{4086, "SWAPSPACE2", "swap space"},
		{65536 + 64, "_BHRfS_M", "a btrfs file system"},
	} {
		head := make([]byte, raid.DiskSignatureBytes)
		copy(head[c.off:], c.magic)
		if s := raid.DiskSignatures(head, 512); !slices.Equal(s, []string{c.want}) {
			t.Errorf("%q at %d: %q; want %q", c.magic, c.off, s, c.want)
		}
		if s := raid.DiskSignatures(head[:c.off+len(c.magic)-1], 512); len(s) != 0 {
			t.Errorf("%q cut short: %q", c.magic, s)
		}
	}
}

func TestMdMagicAt(t *testing.T) {
	const size = 1 << 20
	disk := make([]byte, 3*size)
	ext := raid.Partition{Number: 2, Start: size, Size: size}
	found, err := raid.MdMagicAt(bytes.NewReader(disk), ext)
	if err != nil || len(found) != 0 {
		t.Fatalf("zeros: %v, %v", found, err)
	}
	offs := raid.MdSuperblockOffsets(size)
	if !slices.Equal(offs, []int64{0, 4096, size - 8192, size - 65536}) {
		t.Errorf("offsets of a 1 MiB device = %v", offs)
	}
	for _, off := range offs {
		d := slices.Clone(disk)
		binary.LittleEndian.PutUint32(d[size+off:], 0xa92b4efc)
		found, err := raid.MdMagicAt(bytes.NewReader(d), ext)
		if err != nil || !slices.Equal(found, []int64{off}) {
			t.Errorf("magic at %d: found %v, %v", off, found, err)
		}
		// The same magic outside the extent is not reported.
		if found, _ := raid.MdMagicAt(bytes.NewReader(d), raid.Partition{Start: 2 * size, Size: size}); len(found) != 0 {
			t.Errorf("magic at %d of another extent found at %v", off, found)
		}
	}
	if _, err := raid.MdMagicAt(bytes.NewReader(disk[:size]), ext); err == nil {
		t.Error("extent beyond the disk read without an error")
	}
}
