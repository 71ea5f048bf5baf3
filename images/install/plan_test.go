package install

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"ftnas/images/userland"
	"ftnas/raid"
)

// The first boot formats an array whose first userland.ProbeSize bytes
// are zero: the install zeroes that much.
func TestZeroBytesIsProbeSize(t *testing.T) {
	if ZeroBytes != userland.ProbeSize {
		t.Errorf("ZeroBytes %d, userland probes %d", ZeroBytes, userland.ProbeSize)
	}
}

func blank(name string) Disk {
	return Disk{Name: name, Size: 8 * raid.GiB, SectorSize: 512}
}

func TestPlanInstall(t *testing.T) {
	p, err := PlanInstall(Request{
		Disks: []Disk{blank("vdb"), blank("vdc"), blank("vdd")}, ID: "3f9a2c1b0d4e5f60", RootfsSize: 100 * raid.MiB,
		Cmdline: "console=ttyS0 panic=-1 ftnas.slot=b ftnas.install=0000 ftnas.test_install=vdb,vdc:/dev/vdd initrd=\\ftnas\\b\\initrd.img \"ftnas.x=a b\" quiet",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Arrays) != 4 {
		t.Fatalf("%d arrays, want root-a, root-b, state, data", len(p.Arrays))
	}
	for _, a := range p.Arrays {
		c := a.Create
		if c.Device != "/dev/md/3f9a2c1b0d4e5f60-"+a.Role || c.Homehost != "3f9a2c1b0d4e5f60" || c.Name != "ftnas-"+a.Role || c.Bitmap != "internal" || c.AssumeClean {
			t.Errorf("%s: create spec %+v", a.Role, c)
		}
		if len(c.Devices) != 3 || !strings.HasPrefix(c.Devices[0], "/dev/vdb") || !strings.HasPrefix(c.Devices[2], "/dev/vdd") {
			t.Errorf("%s: members %v", a.Role, c.Devices)
		}
		if a.Zero != (a.Role == raid.RoleState || a.Role == raid.RoleData) {
			t.Errorf("%s: zero %v", a.Role, a.Zero)
		}
	}
	if d := p.Arrays[3]; d.Role != raid.RoleData || d.Level != raid.RAID5 {
		t.Errorf("data array %s %s, want raid5 over 3 disks", d.Role, d.Level)
	}
	want := `console=ttyS0 panic=-1 "ftnas.x=a b" quiet ftnas.slot=a ftnas.install=3f9a2c1b0d4e5f60`
	if got := p.Cmdlines["a"]; got != strings.Replace(want, `"ftnas.x=a b"`, `ftnas.x="a b"`, 1) {
		t.Errorf("slot a cmdline %q", got)
	}
	if !strings.HasSuffix(p.Cmdlines["b"], "ftnas.slot=b ftnas.install=3f9a2c1b0d4e5f60") {
		t.Errorf("slot b cmdline %q", p.Cmdlines["b"])
	}

	// An explicit level.
	p, err = PlanInstall(Request{Disks: []Disk{blank("vdb"), blank("vdc"), blank("vdd"), blank("vde")}, ID: "ab", DataLevel: raid.RAID10})
	if err != nil || p.Arrays[3].Level != raid.RAID10 {
		t.Errorf("raid10: %v %v", p.Arrays, err)
	}
}

func TestPlanInstallRefusals(t *testing.T) {
	used := blank("vdc")
	used.Signatures = []string{"a GPT header"}
	parted := blank("vdd")
	parted.Partitions = []string{"vdd1"}
	running := blank("vda")
	running.RunsFrom = "vda2 is a member of the running array md127"
	part := Disk{Name: "vdb1", Partition: true}
	for _, c := range []struct {
		name string
		req  Request
		want []string
	}{
		{"not blank", Request{Disks: []Disk{blank("vdb"), used, parted}}, []string{"vdc: not blank: found a GPT header", "vdd: not blank: it has partitions vdd1"}},
		{"running", Request{Disks: []Disk{running, blank("vdb")}}, []string{"vda: the box runs from it (vda2 is a member of the running array md127)"}},
		{"partition", Request{Disks: []Disk{part, blank("vdc")}}, []string{"vdb1: is a partition"}},
		{"too few for raid5", Request{Disks: []Disk{blank("vdb"), blank("vdc")}, DataLevel: raid.RAID5}, []string{"raid5 needs at least 3 disks, 2 named (vdb, vdc)"}},
		{"too few for raid6", Request{Disks: []Disk{blank("vdb"), blank("vdc"), blank("vdd")}, DataLevel: raid.RAID6}, []string{"raid6 needs at least 4 disks, 3 named"}},
		{"twice", Request{Disks: []Disk{blank("vdb"), blank("vdb")}}, []string{"vdb is named twice"}},
		{"none", Request{}, []string{"no disks named"}},
		{"small", Request{Disks: []Disk{{Name: "vdb", Size: 2 * raid.GiB, SectorSize: 512}}}, []string{"vdb", "too small"}},
		{"rootfs", Request{Disks: []Disk{blank("vdb")}, RootfsSize: 3 * raid.GiB}, []string{"does not fit the root slot ftnas-root-a"}},
	} {
		if c.req.ID == "" {
			c.req.ID = "abc"
		}
		_, err := PlanInstall(c.req)
		if !errors.Is(err, ErrRefused) {
			t.Errorf("%s: err %v, want a refusal", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
	}
	if _, err := PlanInstall(Request{Disks: []Disk{blank("vdb")}, ID: "Bad:ID"}); err == nil {
		t.Error("a bad installation id was accepted")
	}
}

func TestSignatures(t *testing.T) {
	size := int64(64 * raid.MiB)
	head, tail := make([]byte, raid.MiB), make([]byte, raid.MiB)
	if s := Signatures(head, tail, size, 512); len(s) != 0 {
		t.Errorf("zeros: %v", s)
	}
	copy(tail[len(tail)-512:], "EFI PART")
	if s := Signatures(head, tail, size, 512); len(s) != 1 || s[0] != "a backup GPT header" {
		t.Errorf("backup GPT: %v", s)
	}
	tail = make([]byte, raid.MiB)
	// md 1.0 superblock: 8 KiB before the end.
	copy(tail[len(tail)-8192:], []byte{0xfc, 0x4e, 0x2b, 0xa9})
	if s := Signatures(head, tail, size, 512); len(s) != 1 || !strings.Contains(s[0], "md superblock magic at byte") {
		t.Errorf("md 1.0: %v", s)
	}
	// md 1.2 at 4 KiB, and an MBR.
	copy(head[4096:], []byte{0xfc, 0x4e, 0x2b, 0xa9})
	head[510], head[511] = 0x55, 0xaa
	if s := Signatures(head, make([]byte, raid.MiB), size, 512); len(s) != 2 {
		t.Errorf("md 1.2 and MBR: %v", s)
	}
}

func TestEntryCmdlineAndOptions(t *testing.T) {
	got, err := EntryCmdline("console=ttyS0 ro ftnas.slot=a ftnas.test_update=/dev/vdc ftnas.test_share=t1", "b", "ff")
	if err != nil || got != "console=ttyS0 ro ftnas.test_share=t1 ftnas.slot=b ftnas.install=ff" {
		t.Errorf("EntryCmdline = %q, %v", got, err)
	}
	if _, err := EntryCmdline(`bad="`, "a", "ff"); err == nil {
		t.Error("an unterminated quote was accepted")
	}
	entry := "title ftnas slot A\nlinux /ftnas/a/vmlinuz\ninitrd /ftnas/a/initrd.img\noptions console=ttyS0 ftnas.slot=a\n"
	if o := EntryOptions(entry); o != "console=ttyS0 ftnas.slot=a" {
		t.Errorf("EntryOptions = %q", o)
	}
	if o := EntryOptions("title x\n"); o != "" {
		t.Errorf("EntryOptions without options = %q", o)
	}
}

func TestLayoutFromAndLevel(t *testing.T) {
	tbl := raid.DiskTable{SectorSize: 512, Partitions: []raid.GPTEntry{
		{Number: 1, Name: "ftnas-esp", FirstLBA: 2048, LastLBA: 2048 + 64*2048 - 1},
		{Number: 2, Name: "ftnas-root-a", FirstLBA: 1 << 20, LastLBA: 1<<20 + 192*2048 - 1},
		{Number: 4, Name: "ftnas-state", FirstLBA: 1 << 22, LastLBA: 1<<22 + 8*2048 - 1},
	}}
	lo := LayoutFrom(tbl)
	if lo.ESPSize != 64*raid.MiB || lo.RootSize != 192*raid.MiB || lo.StateSize != 8*raid.MiB || lo.MinData != 0 {
		t.Errorf("LayoutFrom = %+v", lo)
	}
	for in, want := range map[string]raid.Level{"": "", "raid5": raid.RAID5, "6": raid.RAID6, "RAID10": raid.RAID10, "1": raid.RAID1} {
		if l, err := ParseLevel(in); err != nil || l != want {
			t.Errorf("ParseLevel(%q) = %q, %v", in, l, err)
		}
	}
	if _, err := ParseLevel("raid0"); err == nil {
		t.Error("raid0 accepted")
	}
}

func TestNewID(t *testing.T) {
	id, err := NewID(bytes.NewReader(bytes.Repeat([]byte{0xab}, 8)))
	if err != nil || id != "abababababababab" {
		t.Errorf("NewID = %q, %v", id, err)
	}
	if _, err := NewID(bytes.NewReader(nil)); err == nil {
		t.Error("NewID from nothing")
	}
}
