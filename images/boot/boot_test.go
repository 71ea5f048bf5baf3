package boot

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"ftnas/images/guest"
	"ftnas/raid"
)

func TestParseOptions(t *testing.T) {
	params, err := guest.ParseCmdline("console=ttyS0 ftnas.slot=b ftnas.degraded_after=1500ms ftnas.rootwait=10s")
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseOptions(params)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Options{Slot: "b", RootWait: 10 * time.Second, DegradedAfter: 1500 * time.Millisecond}); o != want {
		t.Errorf("ParseOptions = %+v, want %+v", o, want)
	}
	if o, err := ParseOptions(nil); err != nil || o != DefaultOptions() {
		t.Errorf("ParseOptions(nil) = %+v, %v; want the defaults", o, err)
	}
	for _, bad := range []string{"ftnas.slot=../x", "ftnas.slot=", "ftnas.rootwait=5", "ftnas.degraded_after=-1s"} {
		params, _ := guest.ParseCmdline(bad)
		if _, err := ParseOptions(params); err == nil {
			t.Errorf("ParseOptions(%q) accepted", bad)
		}
	}
}

func TestArrayNameMatchesPlan(t *testing.T) {
	l, err := raid.Plan([]raid.Disk{{Name: "vda", Size: 8 * raid.GiB}}, raid.LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for slot, role := range map[string]string{"a": raid.RoleRootA, "b": raid.RoleRootB} {
		a, ok := l.Array(role)
		if !ok || a.Name != ArrayName(slot) {
			t.Errorf("plan's %s array is %q, boot looks for %q", role, a.Name, ArrayName(slot))
		}
		p, _ := l.Disks[0].Partition(role)
		if p.Label != ArrayName(slot) {
			t.Errorf("plan's %s partition label is %q, boot scans for %q", role, p.Label, ArrayName(slot))
		}
	}
}

func sb(uuid, name string, devices int, events int64) raid.Superblock {
	return raid.Superblock{UUID: uuid, Name: name, Devices: devices, Events: events, Populated: true}
}

func TestChoose(t *testing.T) {
	cands := []Candidate{
		{"/dev/vdc2", sb("u1", "any:ftnas-root-a", 4, 20)},
		{"/dev/vda2", sb("u1", "ftnas-root-a", 4, 21)},
		{"/dev/vdb2", sb("u2", "other:ftnas-root-a", 2, 99)}, // a disk from another box
		{"/dev/vdd2", sb("u3", "ftnas-root-b", 4, 50)},       // the wrong slot
		{"/dev/vde2", raid.Superblock{}},                     // blank
	}
	g, ok := Choose(cands, "ftnas-root-a")
	want := Group{UUID: "u1", Name: "ftnas-root-a", Devices: []string{"/dev/vda2", "/dev/vdc2"}, Expected: 4, Events: 21}
	if !ok || !reflect.DeepEqual(g, want) {
		t.Errorf("Choose = %+v, %v; want %+v", g, ok, want)
	}
	if g.Complete() {
		t.Error("2 of 4 members reported complete")
	}
	// One member each: the higher event count wins.
	g, _ = Choose(cands[1:3], "ftnas-root-a")
	if g.UUID != "u2" {
		t.Errorf("tie on members: chose %s, want the higher events (u2)", g.UUID)
	}
	if _, ok := Choose(cands[3:], "ftnas-root-a"); ok {
		t.Error("Choose found slot a among slot b and a blank disk")
	}
}

func TestWaiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	opts := Options{Slot: "a", RootWait: 10 * time.Second, DegradedAfter: 2 * time.Second}
	half := Group{Devices: []string{"/dev/vda2"}, Expected: 2}
	full := Group{Devices: []string{"/dev/vda2", "/dev/vdb2"}, Expected: 2}

	w := NewWaiter(opts, t0)
	steps := []struct {
		at    time.Duration
		g     Group
		found bool
		want  Decision
	}{
		{0, Group{}, false, Decision{Action: Wait}},
		{3 * time.Second, half, true, Decision{Action: Wait}},         // first member seen at 3s
		{4900 * time.Millisecond, half, true, Decision{Action: Wait}}, // 1.9s later
		{5 * time.Second, half, true, Decision{Action: Assemble, Degraded: true}},
	}
	for _, s := range steps {
		if got := w.Decide(t0.Add(s.at), s.g, s.found); got != s.want {
			t.Errorf("at %v: %+v, want %+v", s.at, got, s.want)
		}
	}
	// All members at once: no degraded wait.
	w = NewWaiter(opts, t0)
	if got := w.Decide(t0.Add(time.Second), full, true); got != (Decision{Action: Assemble}) {
		t.Errorf("complete group: %+v, want Assemble", got)
	}
	// The mirror shows up during the degraded wait.
	w = NewWaiter(opts, t0)
	w.Decide(t0, half, true)
	if got := w.Decide(t0.Add(time.Second), full, true); got != (Decision{Action: Assemble}) {
		t.Errorf("mirror arrived: %+v, want Assemble not degraded", got)
	}
	// Nothing at all.
	w = NewWaiter(opts, t0)
	if got := w.Decide(t0.Add(9*time.Second), Group{}, false); got.Action != Wait {
		t.Errorf("at 9s with nothing: %+v, want Wait", got)
	}
	if got := w.Decide(t0.Add(10*time.Second), Group{}, false); got.Action != GiveUp {
		t.Errorf("at the root wait with nothing: %+v, want GiveUp", got)
	}
}

func TestMarker(t *testing.T) {
	st := raid.ArrayStatus{Name: "md127", RaidDisks: 4, Degraded: 3, Members: []raid.Member{{Name: "vda2", State: []string{"in_sync"}}}}
	if got, want := Marker("a", st), "ftnas: root A assembled degraded=3 members=1/4 array=md127"; got != want {
		t.Errorf("Marker = %q, want %q", got, want)
	}
	mi, ok := ParseMarker("noise\r\n" + Marker("b", st) + "\r\nmore\n")
	if want := (MarkerInfo{Slot: "b", Degraded: 3, InSync: 1, RaidDisks: 4, Array: "md127"}); !ok || mi != want {
		t.Errorf("ParseMarker = %+v, %v; want %+v", mi, ok, want)
	}
	if _, ok := ParseMarker("echo ftnas: root A assembled degraded=0 members=1/1 array=md0"); ok {
		t.Error("ParseMarker matched mid-line")
	}
}

func TestParseUevent(t *testing.T) {
	u := ParseUevent("MAJOR=254\nMINOR=2\nDEVNAME=vda2\nDEVTYPE=partition\nPARTN=2\nPARTNAME=ftnas-root-a\n")
	if u["DEVNAME"] != "vda2" || u["PARTNAME"] != "ftnas-root-a" || u["DEVTYPE"] != "partition" {
		t.Errorf("ParseUevent = %v", u)
	}
}

const mountinfo = `1 1 0:2 / / rw - rootfs rootfs rw
22 1 0:20 / /proc rw,nosuid,nodev,noexec - proc proc rw
30 1 9:127 / / ro,relatime - squashfs /dev/md127 ro,errors=continue
31 30 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw,size=10k
32 30 0:30 / /mnt/my\040disk rw - ext4 /dev/vdb1 rw
`

func TestFindMount(t *testing.T) {
	m, err := FindMount(mountinfo, "/")
	if err != nil {
		t.Fatal(err)
	}
	want := Mount{Point: "/", FSType: "squashfs", Source: "/dev/md127", Options: []string{"ro", "relatime"}}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("FindMount(/) = %+v, want %+v (the later mount hides the rootfs)", m, want)
	}
	if m, err := FindMount(mountinfo, "/mnt/my disk"); err != nil || m.Source != "/dev/vdb1" {
		t.Errorf("FindMount with an escaped space = %+v, %v", m, err)
	}
	if _, err := FindMount(mountinfo, "/nope"); err == nil {
		t.Error("FindMount found a missing mount point")
	}
	if _, err := FindMount("garbage line\n", "/"); err == nil || !strings.Contains(err.Error(), "bad line") {
		t.Errorf("FindMount on garbage: %v", err)
	}
}

func FuzzFindMount(f *testing.F) {
	f.Add(mountinfo, "/")
	f.Add(`1 1 0:2 / /a\134b rw - x y rw`, `/a\b`)
	f.Fuzz(func(t *testing.T, text, point string) {
		m, err := FindMount(text, point)
		if err == nil && m.Point != point {
			t.Fatalf("FindMount(%q) returned point %q", point, m.Point)
		}
		ParseUevent(text)
	})
}

func TestDecodeEFIString(t *testing.T) {
	enc := func(s string, nul bool) []byte {
		b := []byte{7, 0, 0, 0}
		for _, c := range s {
			b = append(b, byte(c), 0)
		}
		if nul {
			b = append(b, 0, 0)
		}
		return b
	}
	for _, nul := range []bool{true, false} {
		got, err := DecodeEFIString(enc("systemd-boot 252.39-1~deb12u2", nul))
		if err != nil || got != "systemd-boot 252.39-1~deb12u2" {
			t.Errorf("DecodeEFIString(nul=%v) = %q, %v", nul, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {7, 0, 0}, {7, 0, 0, 0, 'a'}} {
		if _, err := DecodeEFIString(bad); err == nil {
			t.Errorf("DecodeEFIString(%v) accepted", bad)
		}
	}
	if EFIVarFile(VarLoaderInfo) != "LoaderInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f" {
		t.Errorf("EFIVarFile = %s", EFIVarFile(VarLoaderInfo))
	}
}

func TestUserlandRegexp(t *testing.T) {
	line := "ftnas: slot a userland up: root=/dev/md127 fstype=squashfs array=ftnas-root-a level=raid1 degraded=1 members=1/4"
	m := UserlandRegexp().FindStringSubmatch("noise\r\n" + line + "\r\nmore")
	if m == nil || m[1] != line || m[2] != "a" {
		t.Errorf("UserlandRegexp on CheckSlot's line = %q", m)
	}
	if UserlandRegexp().MatchString("ftnas: slot a userland down") {
		t.Error("matched a line that is not the userland line")
	}
}

func TestChooseInInstall(t *testing.T) {
	cands := []Candidate{
		// The installer medium: any homehost, left plugged in.
		{"/dev/vda2", sb("um", "any:ftnas-root-a", 1, 500)},
		// The installed box, one disk missing: fewer members than
		// another installation's.
		{"/dev/vdb2", sb("ui", "3f9a2c1b0d4e5f60:ftnas-root-a", 2, 10)},
		{"/dev/vdc2", sb("uo", "0000000000000001:ftnas-root-a", 3, 900)},
		{"/dev/vdd2", sb("uo", "0000000000000001:ftnas-root-a", 3, 900)},
	}
	g, ok := ChooseIn(cands, "ftnas-root-a", "3f9a2c1b0d4e5f60")
	if !ok || g.UUID != "ui" || !reflect.DeepEqual(g.Devices, []string{"/dev/vdb2"}) {
		t.Errorf("ChooseIn = %+v, %v; want the installation's array ui on vdb2", g, ok)
	}
	if g, _ := Choose(cands, "ftnas-root-a"); g.UUID != "uo" {
		t.Errorf("Choose (no installation id) = %s, want the most members (uo)", g.UUID)
	}
	if _, ok := ChooseIn(cands, "ftnas-root-a", "ffff"); ok {
		t.Error("ChooseIn found an array of an installation that has none here")
	}
	if _, ok := ChooseIn([]Candidate{{"/dev/vda2", sb("u", "ftnas-root-a", 1, 1)}}, "ftnas-root-a", "abc"); ok {
		t.Error("ChooseIn took a superblock without a homehost for installation abc")
	}
}

func TestParseOptionsInstall(t *testing.T) {
	params, _ := guest.ParseCmdline("ftnas.slot=a ftnas.install=3f9a2c1b0d4e5f60")
	o, err := ParseOptions(params)
	if err != nil || o.Install != "3f9a2c1b0d4e5f60" {
		t.Errorf("ParseOptions = %+v, %v; want install 3f9a2c1b0d4e5f60", o, err)
	}
	for _, bad := range []string{"ftnas.install=", "ftnas.install=ABC", "ftnas.install=a:b", "ftnas.install=0123456789abcdef0"} {
		params, _ := guest.ParseCmdline(bad)
		if _, err := ParseOptions(params); err == nil {
			t.Errorf("ParseOptions(%q) accepted", bad)
		}
	}
	if SuperblockHomehost("any:ftnas-data") != "any" || SuperblockHomehost("ftnas-data") != "" {
		t.Error("SuperblockHomehost")
	}
}
