package raid

import (
	"reflect"
	"strings"
	"testing"
)

func TestPlanDefaults(t *testing.T) {
	disks := []Disk{{Name: "sda", Size: 8 * GiB}, {Name: "sdb", Size: 10 * GiB}, {Name: "sdc", Size: 8*GiB + 5*MiB}, {Name: "sdd", Size: 9 * GiB, SectorSize: 4096}}
	l, err := Plan(disks, LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Smallest disk 8 GiB: usable to 8 GiB - 1 MiB.
	wantParts := []Partition{
		{1, RoleESP, "ftnas-esp", TypeESP, 1 * MiB, 512 * MiB},
		{2, RoleRootA, "ftnas-root-a", TypeLinuxRAID, 513 * MiB, 2 * GiB},
		{3, RoleRootB, "ftnas-root-b", TypeLinuxRAID, 513*MiB + 2*GiB, 2 * GiB},
		{4, RoleState, "ftnas-state", TypeLinuxRAID, 513*MiB + 4*GiB, 1 * GiB},
		{5, RoleData, "ftnas-data", TypeLinuxRAID, 513*MiB + 5*GiB, 8*GiB - 1*MiB - (513*MiB + 5*GiB)},
	}
	if len(l.Disks) != 4 {
		t.Fatalf("disks = %d", len(l.Disks))
	}
	for _, d := range l.Disks {
		if !reflect.DeepEqual(d.Partitions, wantParts) {
			t.Errorf("disk %s partitions =\n%+v\nwant\n%+v", d.Disk, d.Partitions, wantParts)
		}
	}
	roles := []string{}
	for _, a := range l.Arrays {
		roles = append(roles, a.Role+":"+string(a.Level))
	}
	if strings.Join(roles, " ") != "root-a:raid1 root-b:raid1 state:raid1 data:raid6" {
		t.Errorf("arrays = %v", roles)
	}
	data, _ := l.Array(RoleData)
	if want := []string{"/dev/sda5", "/dev/sdb5", "/dev/sdc5", "/dev/sdd5"}; !reflect.DeepEqual(data.Members, want) {
		t.Errorf("data members = %v", data.Members)
	}
	if data.Size != 2*wantParts[4].Size || data.Device != "/dev/md/ftnas-data" || data.Name != "ftnas-data" {
		t.Errorf("data = %+v", data)
	}
	specs := l.CreateSpecs()
	if len(specs) != 4 || specs[0].Device != "/dev/md/ftnas-root-a" || specs[0].Bitmap != "internal" || specs[3].Level != RAID6 {
		t.Errorf("CreateSpecs = %+v", specs)
	}
	for _, s := range specs {
		if _, err := CreateArgs(s); err != nil {
			t.Errorf("CreateArgs(%+v): %v", s, err)
		}
	}
	for _, d := range l.Disks {
		for _, p := range d.Partitions {
			if p.Start%MiB != 0 || p.Size%MiB != 0 || p.Start+p.Size > 8*GiB-MiB {
				t.Errorf("%s%d misaligned or past the end: %+v", d.Disk, p.Number, p)
			}
		}
	}
	// The tables are copies: changing one leaves the others.
	l.Disks[0].Partitions[0].Size = 1
	if l.Disks[1].Partitions[0].Size != 512*MiB {
		t.Error("disks share one partition slice")
	}
}

func TestPlanLevels(t *testing.T) {
	small := LayoutOptions{ESPSize: 8 * MiB, RootSize: 16 * MiB, StateSize: 8 * MiB, MinData: 16 * MiB}
	disk := func(names ...string) []Disk {
		var out []Disk
		for _, n := range names {
			out = append(out, Disk{Name: n, Size: 128 * MiB})
		}
		return out
	}
	for _, tt := range []struct {
		disks []Disk
		level Level
		want  Level
		size  int64 // data array capacity
	}{
		{disk("vda"), "", RAID1, 78 * MiB},
		{disk("vda", "vdb"), "", RAID1, 78 * MiB},
		{disk("vda", "vdb", "vdc"), "", RAID5, 2 * 78 * MiB},
		{disk("vda", "vdb", "vdc", "vdd", "vde"), "", RAID6, 3 * 78 * MiB},
		{disk("vda", "vdb", "vdc", "vdd"), RAID10, RAID10, 2 * 78 * MiB},
		{disk("vda", "vdb", "vdc"), RAID1, RAID1, 78 * MiB},
	} {
		o := small
		o.DataLevel = tt.level
		l, err := Plan(tt.disks, o)
		if err != nil {
			t.Errorf("%d disks %q: %v", len(tt.disks), tt.level, err)
			continue
		}
		data, ok := l.Array(RoleData)
		if !ok || data.Level != tt.want || data.Size != tt.size {
			t.Errorf("%d disks %q: data = %s %d MiB, want %s %d MiB", len(tt.disks), tt.level, data.Level, data.Size/MiB, tt.want, tt.size/MiB)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	d := func(name string, size int64) Disk { return Disk{Name: name, Size: size} }
	for _, tt := range []struct {
		disks []Disk
		opts  LayoutOptions
		err   string
	}{
		{nil, LayoutOptions{}, "no disks"},
		{[]Disk{d("sda", 8*GiB), d("sdb", 4*GiB)}, LayoutOptions{}, "disk sdb (4096 MiB) is too small: needs 5634 MiB for ESP, root A/B and state plus 1024 MiB of data"},
		{[]Disk{d("sda", 8*GiB), d("sdb", 8*GiB), d("sdc", 8*GiB)}, LayoutOptions{DataLevel: RAID6}, "raid6 needs at least 4 disks, have 3"},
		{[]Disk{d("sda", 8*GiB)}, LayoutOptions{DataLevel: RAID10}, "raid10 needs at least 2 disks"},
		{[]Disk{d("sda", 8*GiB)}, LayoutOptions{DataLevel: "raid0"}, `unknown level "raid0"`},
		{[]Disk{d("sda", 8*GiB), d("sda", 8*GiB)}, LayoutOptions{}, "disk sda listed twice"},
		{[]Disk{d("/dev/sda", 8*GiB)}, LayoutOptions{}, "bad disk name"},
		{[]Disk{d("", 8*GiB)}, LayoutOptions{}, "bad disk name"},
		{[]Disk{{Name: "sda", Size: 8 * GiB, SectorSize: 520}}, LayoutOptions{}, "sector size 520"},
		{[]Disk{d("sda", 8*GiB)}, LayoutOptions{RootSize: MiB + 1}, "RootSize"},
		{[]Disk{d("sda", 8*GiB)}, LayoutOptions{ESPSize: -MiB}, "ESPSize"},
	} {
		if _, err := Plan(tt.disks, tt.opts); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Plan(%v, %+v) error = %v, want %q", tt.disks, tt.opts, err, tt.err)
		}
	}
}

func TestPartitionDevice(t *testing.T) {
	for _, tt := range []struct {
		disk string
		n    int
		want string
	}{
		{"sda", 1, "/dev/sda1"}, {"vdb", 5, "/dev/vdb5"}, {"nvme0n1", 2, "/dev/nvme0n1p2"}, {"mmcblk0", 1, "/dev/mmcblk0p1"}, {"", 1, ""},
	} {
		if got := PartitionDevice(tt.disk, tt.n); got != tt.want {
			t.Errorf("PartitionDevice(%q, %d) = %q, want %q", tt.disk, tt.n, got, tt.want)
		}
	}
}
