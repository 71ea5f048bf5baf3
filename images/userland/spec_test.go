package userland

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"ftnas/images/guest"
)

func TestKey(t *testing.T) {
	s := DefaultSpec()
	k := Key(s, ToolMmdebstrap, "2026-07-11T10:16:37Z")
	if !strings.HasPrefix(k, "bookworm-") || len(k) != len("bookworm-")+16 {
		t.Errorf("Key = %q", k)
	}
	r := s
	r.Packages = []string{"samba", "mdadm", "iproute2", "btrfs-progs", "samba"}
	if Key(r, ToolMmdebstrap, "2026-07-11T10:16:37Z") != k {
		t.Error("package order or duplicates change the key")
	}
	m := s
	m.Mirror += "/"
	if Key(m, ToolMmdebstrap, "2026-07-11T10:16:37Z") != k {
		t.Error("a trailing slash on the mirror changes the key")
	}
	for name, other := range map[string]string{
		"tool":    Key(s, ToolDebootstrap, "2026-07-11T10:16:37Z"),
		"release": Key(s, ToolMmdebstrap, "2026-07-12T10:16:37Z"),
		"package": Key(Spec{Suite: s.Suite, Mirror: s.Mirror, Variant: s.Variant, Packages: append(slices.Clone(s.Packages), "curl")}, ToolMmdebstrap, "2026-07-11T10:16:37Z"),
		"variant": Key(Spec{Suite: s.Suite, Mirror: s.Mirror, Variant: "buildd", Packages: s.Packages}, ToolMmdebstrap, "2026-07-11T10:16:37Z"),
	} {
		if other == k {
			t.Errorf("a different %s gives the same key", name)
		}
	}
}

func TestSpecCheck(t *testing.T) {
	if err := DefaultSpec().Check(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Spec{
		{Suite: "", Mirror: "http://m/debian", Variant: "minbase"},
		{Suite: "bookworm", Mirror: "ftp://m/debian", Variant: "minbase"},
		{Suite: "bookworm", Mirror: "http://m/debian", Variant: ""},
		{Suite: "bookworm", Mirror: "http://m/debian", Variant: "minbase", Packages: []string{"a,b"}},
		{Suite: "book worm", Mirror: "http://m/debian", Variant: "minbase"},
	} {
		if err := bad.Check(); err == nil {
			t.Errorf("%+v passed", bad)
		}
		if _, err := BootstrapCommand(ToolMmdebstrap, bad, "/x"); err == nil {
			t.Errorf("BootstrapCommand(%+v) passed", bad)
		}
	}
}

func TestBootstrapCommand(t *testing.T) {
	got, err := BootstrapCommand(ToolMmdebstrap, DefaultSpec(), "/c/root.tmp")
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(got, " ")
	for _, want := range []string{"mmdebstrap ", "--variant=minbase", "--include=btrfs-progs,iproute2,mdadm,samba", `APT::Install-Recommends "false"`, "path-exclude=/usr/share/doc/*", " bookworm /c/root.tmp http://deb.debian.org/debian"} {
		if !strings.Contains(line, want) {
			t.Errorf("mmdebstrap command %q lacks %q", line, want)
		}
	}
	if !strings.HasSuffix(line, "bookworm /c/root.tmp http://deb.debian.org/debian") {
		t.Errorf("positional arguments not last: %q", line)
	}
	got, err = BootstrapCommand(ToolDebootstrap, DefaultSpec(), "/c/root.tmp")
	if err != nil {
		t.Fatal(err)
	}
	if want := "debootstrap --variant=minbase --include=btrfs-progs,iproute2,mdadm,samba bookworm /c/root.tmp http://deb.debian.org/debian"; strings.Join(got, " ") != want {
		t.Errorf("debootstrap command %q, want %q", strings.Join(got, " "), want)
	}
	if _, err := BootstrapCommand("cdebootstrap", DefaultSpec(), "/x"); err == nil {
		t.Error("unknown tool accepted")
	}
}

func TestSquashfsCommand(t *testing.T) {
	line := strings.Join(SquashfsCommand("/s", "/o.sqfs", 3), " ")
	for _, want := range []string{"mksquashfs /s /o.sqfs -noappend", "-comp zstd -Xcompression-level 3", "-reproducible", "-mkfs-time 1704067200", "-all-time 1704067200"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
	if strings.Contains(line, "-all-root") {
		t.Error("-all-root would drop the tree's owners (shadow, Samba's directories)")
	}
}

func TestReleaseListName(t *testing.T) {
	got, err := ReleaseListName("http://deb.debian.org/debian/", "bookworm")
	if err != nil || got != "deb.debian.org_debian_dists_bookworm_InRelease" {
		t.Errorf("ReleaseListName = %q, %v", got, err)
	}
	if _, err := ReleaseListName("not a url", "bookworm"); err == nil {
		t.Error("bad mirror accepted")
	}
}

func TestParseReleaseDate(t *testing.T) {
	text := "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nSuite: stable\nDate: Sat, 11 Jul 2026 10:16:37 UTC\nValid-Until: x\n"
	got, err := ParseReleaseDate(text)
	if err != nil || !got.Equal(time.Date(2026, 7, 11, 10, 16, 37, 0, time.UTC)) {
		t.Errorf("ParseReleaseDate = %v, %v", got, err)
	}
	if got, err := ParseReleaseDate("Date: Sat, 11 Jul 2026 10:16:37 +0200\n"); err != nil || got.Hour() != 8 {
		t.Errorf("numeric zone: %v, %v", got, err)
	}
	for _, bad := range []string{"", "Origin: Debian\n", "Date: yesterday\n"} {
		if _, err := ParseReleaseDate(bad); err == nil {
			t.Errorf("ParseReleaseDate(%q) passed", bad)
		}
	}
}

func FuzzParseReleaseDate(f *testing.F) {
	f.Add("Date: Sat, 11 Jul 2026 10:16:37 UTC\n")
	f.Add("Origin: Debian\nDate: Sat, 11 Jul 2026 10:16:37 +0000\n")
	f.Add("Date:\n")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseReleaseDate(s)
		if err == nil && d.Location() != time.UTC {
			t.Errorf("date %v not in UTC", d)
		}
	})
}

func TestFiles(t *testing.T) {
	fs, err := Files(Binaries{Nasd: "/b/nasd", Nasctl: "/b/nasctl", Init: "/b/init"}, []byte("samba=2\n"))
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]string{}
	for _, f := range fs {
		by[f.Path] = f.Source + string(f.Data)
		if f.Source != "" && f.Mode.Perm() != 0o755 {
			t.Errorf("%s mode %v, want executable", f.Path, f.Mode)
		}
	}
	for p, want := range map[string]string{InitPath: "/b/init", NasdPath: "/b/nasd", NasctlPath: "/b/nasctl", ManifestPath: "samba=2\n", "/etc/hostname": "ftnas\n", "/etc/machine-id": ""} {
		if got, ok := by[p]; !ok || got != want {
			t.Errorf("%s = %q (present %v), want %q", p, got, ok, want)
		}
	}
	if _, err := Files(Binaries{Nasd: "/b/nasd"}, nil); err == nil {
		t.Error("missing binaries accepted")
	}
}

func TestParseInitOptions(t *testing.T) {
	parse := func(s string) (InitOptions, error) {
		ps, err := guest.ParseCmdline(s)
		if err != nil {
			t.Fatal(err)
		}
		return ParseInitOptions(ps)
	}
	o, err := parse("console=ttyS0 ftnas.slot=a")
	if err != nil || o != DefaultInitOptions() {
		t.Errorf("defaults: %+v, %v", o, err)
	}
	o, err = parse("ftnas.ip=192.168.7.2/24 ftnas.gw=192.168.7.1 ftnas.test_share=media")
	if err != nil || o.Address != netip.MustParsePrefix("192.168.7.2/24") || o.Gateway != netip.MustParseAddr("192.168.7.1") || o.TestShare != "media" {
		t.Errorf("set: %+v, %v", o, err)
	}
	o, err = parse("ftnas.ip=192.168.7.2/24 ftnas.gw=none")
	if err != nil || o.Gateway.IsValid() {
		t.Errorf("no gateway: %+v, %v", o, err)
	}
	o, err = parse("ftnas.test_update=/dev/vdc")
	if err != nil || o.TestUpdate != "/dev/vdc" || len(o.TestUpdateDevices()) != 1 {
		t.Errorf("test update: %+v, %v", o, err)
	}
	o, err = parse("ftnas.test_update=/dev/vdc,/dev/vdd")
	if d := o.TestUpdateDevices(); err != nil || len(d) != 2 || d[1] != "/dev/vdd" {
		t.Errorf("test updates: %+v, %v", o, err)
	}
	if d := DefaultInitOptions().TestUpdateDevices(); d != nil {
		t.Errorf("no test update: %q", d)
	}
	o, err = parse("ftnas.watchdog=6 ftnas.watchdog_grace=3 ftnas.test_hang_nasd=1")
	if err != nil || o.Watchdog != 6*time.Second || o.WatchdogGrace != 3*time.Second || !o.TestHangNasd {
		t.Errorf("watchdog: %+v, %v", o, err)
	}
	if o, err = parse("ftnas.watchdog=off"); err != nil || o.Watchdog != 0 || o.WatchdogGrace != time.Minute {
		t.Errorf("watchdog off: %+v, %v", o, err)
	}
	if m := WatchdogRegexp().FindStringSubmatch(WatchdogPrefix + `/dev/watchdog identity="Software Watchdog" timeout=6s grace=3s` + "\r\n"); m == nil || m[2] != "Software Watchdog" || m[3] != "6s" {
		t.Errorf("watchdog line: %q", m)
	}
	o, err = parse("ftnas.test_install=vdb,vdc:/dev/vdd")
	ti, terr := ParseTestInstall(o.TestInstall)
	if err != nil || terr != nil || strings.Join(NasctlInstallArgs(ti)[1:], " ") != "install --disks /dev/vdb,/dev/vdc --bundle /dev/vdd --yes" {
		t.Errorf("test install: %+v, %v, %+v, %v", o, err, ti, terr)
	}
	if m := BlessRegexp().FindStringSubmatch(BlessPrefix + "blessed slot=b booted=ftnas-1-b+3.conf found=ftnas-1-b+2-1.conf entry=ftnas-1-b.conf\r\n"); m == nil || m[1] != "blessed" || m[4] != "ftnas-1-b+2-1.conf" || m[5] != "ftnas-1-b.conf" {
		t.Errorf("bless line: %q", m)
	}
	for _, bad := range []string{"ftnas.ip=10.0.2.15", "ftnas.ip=fe80::1/64", "ftnas.gw=x", "ftnas.ip=10.0.3.15/24", "ftnas.test_share=../x", "ftnas.test_share=", "ftnas.test_update=vdc", "ftnas.test_update=/dev/../etc/x", "ftnas.test_update=/dev/vdc,", "ftnas.test_update=/dev/vdc,vdd",
		"ftnas.watchdog=1", "ftnas.watchdog=x", "ftnas.watchdog=3601", "ftnas.watchdog_grace=0", "ftnas.watchdog_grace=off", "ftnas.test_hang_nasd=maybe", "ftnas.test_install=vdb", "ftnas.test_install=vdb:/tmp/x", "ftnas.test_install=,vdb:/dev/vdd", "ftnas.test_install=../vdb:/dev/vdd"} {
		if _, err := parse(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBackoff(t *testing.T) {
	var b Backoff
	var got []time.Duration
	for _, ran := range []time.Duration{time.Second, time.Second, 2 * time.Second, 0, 0, 0, 0, 0, 2 * time.Minute, time.Second} {
		got = append(got, b.Next(ran))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30, 1, 2}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("waits %v, want %v s", got, want)
		}
	}
}

func TestServed(t *testing.T) {
	line, ok, err := Served([]byte("{\n  \"hostname\": \"ftnas\",\n  \"services\": [\n    {\"name\": \"nfs\", \"healthy\": true},\n    {\"name\": \"smb\", \"healthy\": true}\n  ]\n}\n"))
	if err != nil || !ok || strings.Contains(line, "\n") || !ServingRegexp().MatchString(ServingPrefix+line+"\n") {
		t.Errorf("Served = %q, %v, %v", line, ok, err)
	}
	if _, ok, _ := Served([]byte(`{"services": [{"name": "nfs", "healthy": true}, {"name": "smb", "healthy": false}]}`)); ok {
		t.Error("an unhealthy service counted as served")
	}
	if _, ok, _ := Served([]byte(`{"services": []}`)); ok {
		t.Error("no services counted as served")
	}
	if _, _, err := Served([]byte("nasctl: connection refused")); err == nil {
		t.Error("non-JSON accepted")
	}
}

// The slot's nasd adopts blank replacement disks by itself.
func TestNasdArgsAutoAdopt(t *testing.T) {
	if !slices.Contains(NasdArgs(), "--raid-auto-adopt") {
		t.Fatalf("nasd in the slot runs without --raid-auto-adopt: %q", NasdArgs())
	}
}
