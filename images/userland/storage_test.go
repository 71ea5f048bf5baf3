package userland

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"ftnas/raid"
)

func TestStores(t *testing.T) {
	st := Stores()
	if len(st) != 2 || st[0].Role != raid.RoleState || st[1].Role != raid.RoleData {
		t.Fatalf("Stores() = %+v, want state then data", st)
	}
	if st[0].Mount != StateDir || st[1].Mount != Volume {
		t.Errorf("mount points %s, %s; want %s, %s", st[0].Mount, st[1].Mount, StateDir, Volume)
	}
	// The names the installer gives the arrays (raid.Plan).
	l, err := raid.Plan([]raid.Disk{{Name: "vda", Size: 8 * raid.GiB}}, raid.LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		a, ok := l.Array(s.Role)
		if !ok || a.Name != s.Array {
			t.Errorf("store %s: array %q, the plan's %q", s.Role, s.Array, a.Name)
		}
		p, _ := l.Disks[0].Partition(s.Role)
		if p.Label != s.Array {
			t.Errorf("store %s: array %q, GPT name %q", s.Role, s.Array, p.Label)
		}
	}
}

// image returns n bytes with magic at off.
func image(n int, off int, magic []byte) []byte {
	b := make([]byte, n)
	copy(b[off:], magic)
	return b
}

func TestProbeFSSignatures(t *testing.T) {
	ext := make([]byte, 2)
	binary.LittleEndian.PutUint16(ext, 0xEF53)
	junk := make([]byte, 4096)
	junk[100] = 1
	for _, c := range []struct {
		name string
		data []byte
		want Probe
		size int64 // 0: len(data)
	}{
		{"zeros", make([]byte, 2<<20), Probe{Blank: true}, 0},
		{"empty device", nil, Probe{Blank: true}, 0},
		{"small zero device", make([]byte, 100), Probe{Blank: true}, 0},
		{"ext4", image(1<<20, 1080, ext), Probe{Type: FSExt4}, 0},
		{"btrfs", image(1<<20, 65536+64, []byte("_BHRfS_M")), Probe{Type: FSBtrfs}, 0},
		{"xfs", image(8192, 0, []byte("XFSB")), Probe{Type: "xfs"}, 0},
		{"luks", image(8192, 0, []byte("LUKS\xba\xbe")), Probe{Type: "crypto_LUKS"}, 0},
		{"lvm", image(8192, 536, []byte("LVM2 001")), Probe{Type: "LVM2_member"}, 0},
		{"swap", image(8192, 4086, []byte("SWAPSPACE2")), Probe{Type: "swap"}, 0},
		{"junk", junk, Probe{}, 0},
		// A byte past ProbeSize is not looked at: still blank.
		{"late byte", image(2<<20, 1<<20, []byte{1}), Probe{Blank: true}, 0},
		// A btrfs magic beyond a short device is not read.
		{"btrfs magic cut off", image(65536+66, 65536+64, []byte("_B")), Probe{}, 0},
	} {
		size := c.size
		if size == 0 {
			size = int64(len(c.data))
		}
		got, err := ProbeFS(bytes.NewReader(c.data), size)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: ProbeFS = %+v, want %+v", c.name, got, c.want)
		}
	}
	if _, err := ProbeFS(bytes.NewReader(make([]byte, 10)), 4096); err == nil {
		t.Error("ProbeFS of a device shorter than its size passed")
	}
}

// TestProbeFSReal makes real ext4 and btrfs filesystems (the host's
// mkfs) and checks ProbeFS finds them and Decide keeps them.
func TestProbeFSReal(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		fs   string
		mkfs []string
	}{
		{FSExt4, []string{"mkfs.ext4", "-q", "-F", "-L", "x"}},
		{FSBtrfs, []string{"mkfs.btrfs", "-q", "-f", "-L", "x"}},
	} {
		if _, err := exec.LookPath(c.mkfs[0]); err != nil {
			t.Logf("skipping %s: %v", c.fs, err)
			continue
		}
		p := filepath.Join(dir, c.fs+".img")
		size := int64(BtrfsMinSize)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		blank, err := ProbeFS(f, size)
		if err != nil || !blank.Blank || blank.Type != "" {
			t.Errorf("blank image: %+v, %v", blank, err)
		}
		if out, err := exec.Command(c.mkfs[0], append(c.mkfs[1:], p)...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", c.mkfs, err, out)
		}
		got, err := ProbeFS(f, size)
		f.Close()
		if err != nil || got.Type != c.fs || got.Blank {
			t.Errorf("%s image: ProbeFS = %+v, %v", c.fs, got, err)
		}
		// Whichever store it is on, with or without btrfs tools, an
		// existing filesystem is kept and mounted as what it is.
		for _, s := range Stores() {
			for _, hb := range []bool{false, true} {
				if d := Decide(s, got, size, hb); d.Action != Keep || d.FSType != c.fs {
					t.Errorf("%s on %s (btrfs tools %v): %+v, want keep %s", c.fs, s.Role, hb, d, c.fs)
				}
			}
		}
	}
}

func TestDecide(t *testing.T) {
	state, data := Stores()[0], Stores()[1]
	blank := Probe{Blank: true}
	for _, c := range []struct {
		name      string
		s         Store
		p         Probe
		size      int64
		haveBtrfs bool
		want      Action
		fs        string
	}{
		{"state blank", state, blank, raid.GiB, true, Format, FSExt4},
		{"data blank, btrfs", data, blank, 10 * raid.GiB, true, Format, FSBtrfs},
		{"data blank, btrfs at the minimum", data, blank, BtrfsMinSize, true, Format, FSBtrfs},
		{"data blank, too small for btrfs", data, blank, BtrfsMinSize - raid.MiB, true, Format, FSExt4},
		{"data blank, no btrfs tools", data, blank, 10 * raid.GiB, false, Format, FSExt4},
		{"state ext4", state, Probe{Type: FSExt4}, raid.GiB, true, Keep, FSExt4},
		{"data ext4 with btrfs tools", data, Probe{Type: FSExt4}, 10 * raid.GiB, true, Keep, FSExt4},
		{"data btrfs", data, Probe{Type: FSBtrfs}, 10 * raid.GiB, false, Keep, FSBtrfs},
		{"data xfs", data, Probe{Type: "xfs"}, 10 * raid.GiB, true, Refuse, ""},
		{"state luks", state, Probe{Type: "crypto_LUKS"}, raid.GiB, true, Refuse, ""},
		{"data unknown", data, Probe{}, 10 * raid.GiB, true, Refuse, ""},
		{"state unknown", state, Probe{}, raid.GiB, true, Refuse, ""},
	} {
		d := Decide(c.s, c.p, c.size, c.haveBtrfs)
		if d.Action != c.want || d.FSType != c.fs || d.Reason == "" {
			t.Errorf("%s: %+v, want %v %q with a reason", c.name, d, c.want, c.fs)
		}
	}
}

func TestMkfsCommand(t *testing.T) {
	for _, c := range []struct {
		fs   string
		size int64
		want string
	}{
		{FSExt4, raid.GiB, MkfsExt4Path + " -q -L L /dev/md126"},
		{FSBtrfs, 10 * raid.GiB, MkfsBtrfsPath + " -q -L L /dev/md126"},
		{FSBtrfs, BtrfsMinSize, MkfsBtrfsPath + " -q -L L --mixed /dev/md126"},
	} {
		got, err := MkfsCommand(c.fs, "L", "/dev/md126", c.size)
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("MkfsCommand(%s, %d) = %q, %v; want %q", c.fs, c.size, got, err, c.want)
		}
		// Never a force flag: mkfs itself refuses an existing filesystem.
		if slices.Contains(got, "-f") || slices.Contains(got, "-F") || slices.Contains(got, "--force") {
			t.Errorf("MkfsCommand(%s) forces: %q", c.fs, got)
		}
	}
	if _, err := MkfsCommand("xfs", "L", "/dev/md126", raid.GiB); err == nil {
		t.Error("MkfsCommand(xfs) passed")
	}
}

func TestMountSpec(t *testing.T) {
	state, data := Stores()[0], Stores()[1]
	m := state.MountSpec("/dev/md126", FSExt4)
	if want := (MountSpec{Source: "/dev/md126", Target: StateDir, FSType: FSExt4, NoAtime: true, NoDev: true, NoSuid: true, Data: "errors=remount-ro"}); m != want {
		t.Errorf("state: %+v, want %+v", m, want)
	}
	if strings.Contains(m.Data, "data=") {
		t.Errorf("ext4 data mode set: %q (want the default, ordered)", m.Data)
	}
	m = data.MountSpec("/dev/md125", FSBtrfs)
	if want := (MountSpec{Source: "/dev/md125", Target: Volume, FSType: FSBtrfs, NoAtime: true, NoDev: true, NoSuid: true}); m != want {
		t.Errorf("data: %+v, want %+v", m, want)
	}
}

func TestStorageLine(t *testing.T) {
	r := StorageReport{
		Store: Stores()[1], Device: "/dev/md125", FSType: FSBtrfs, Formatted: true,
		Array: raid.ArrayStatus{Level: "raid1", Degraded: 1, RaidDisks: 2, Members: []raid.Member{{State: []string{"in_sync"}}}},
	}
	line := r.Line()
	want := "ftnas: storage data array=ftnas-data dev=/dev/md125 level=raid1 degraded=1 members=1/2 fs=btrfs formatted mount=/srv/ftnas"
	if line != want {
		t.Fatalf("Line() = %q, want %q", line, want)
	}
	m := StorageRegexp().FindStringSubmatch("x\n" + line + "\r\ny")
	if m == nil || m[1] != "data" || m[3] != "/dev/md125" || m[8] != FSBtrfs || m[9] != "formatted" || m[10] != Volume {
		t.Errorf("StorageRegexp on %q: %q", line, m)
	}
	r.Formatted = false
	if m := StorageRegexp().FindStringSubmatch(r.Line()); m == nil || m[9] != "kept" {
		t.Errorf("kept line %q: %q", r.Line(), m)
	}
	if w := FallbackLine(Stores()[0]); !strings.Contains(w, "WARNING") || !strings.Contains(w, StateDir) || StorageRegexp().MatchString(w) {
		t.Errorf("FallbackLine = %q", w)
	}
}

func TestFindShareAndKeptLine(t *testing.T) {
	list := []byte(`[
  {"name": "a", "nfs": true},
  {"name": "t", "path": "t", "nfs": true, "clients": []}
]`)
	sh, ok, err := FindShare(list, "t")
	if err != nil || !ok || sh != `{"name":"t","path":"t","nfs":true,"clients":[]}` {
		t.Errorf("FindShare(t) = %q, %v, %v", sh, ok, err)
	}
	if _, ok, err := FindShare(list, "x"); ok || err != nil {
		t.Errorf("FindShare(x) = %v, %v", ok, err)
	}
	if _, _, err := FindShare([]byte("No shares."), "t"); err == nil {
		t.Error("FindShare of text passed")
	}
	content := TestContent("a") + `"quoted"\`
	line := TestShareKeptLine("t", content, sh)
	m := TestShareKeptRegexp().FindStringSubmatch(line + "\r\n")
	if m == nil || m[1] != "t" || m[3] != sh {
		t.Fatalf("TestShareKeptRegexp on %q: %q", line, m)
	}
	if got, err := strconv.Unquote(m[2]); err != nil || got != content {
		t.Errorf("content %q (%v), want %q", got, err, content)
	}
}

// FuzzProbeFS: any device start probes without error, blank exactly when
// its first ProbeSize bytes are zero, and a blank one has no type.
func FuzzProbeFS(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 4096))
	f.Add(image(70000, 65536+64, []byte("_BHRfS_M")))
	f.Add(image(2048, 1080, []byte{0x53, 0xEF}))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ProbeFS(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		zero := !slices.ContainsFunc(b[:min(int64(len(b)), ProbeSize)], func(c byte) bool { return c != 0 })
		if p.Blank != zero || (p.Blank && p.Type != "") {
			t.Fatalf("ProbeFS = %+v for %d bytes (all zero %v)", p, len(b), zero)
		}
	})
}
