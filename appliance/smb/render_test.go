package smb

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func testConfig() Config {
	return Config{
		StateDir: "/var/lib/ftnas",
		Listen:   "192.0.2.10",
		Port:     1445,
		Shares: []Share{
			{Name: "media", Path: "/srv/media", ReadOnly: true},
			{Name: "Data", Path: "/srv/data", ValidUsers: []string{"bob", "alice", "bob"}},
		},
		ProbeUser: "ftnas-probe",
		ProbeDir:  "/var/lib/ftnas/probe",
	}
}

// sections splits rendered smb.conf into section -> "key = value" lines.
func sections(t *testing.T, conf []byte) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	cur := ""
	for _, l := range strings.Split(string(conf), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			cur = strings.Trim(l, "[]")
			if _, dup := out[cur]; dup {
				t.Fatalf("section %q twice", cur)
			}
			out[cur] = nil
		default:
			if cur == "" {
				t.Fatalf("parameter %q outside a section", l)
			}
			out[cur] = append(out[cur], l)
		}
	}
	return out
}

func has(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func hasKey(lines []string, key string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, key+" =") {
			return true
		}
	}
	return false
}

func TestRenderGlobal(t *testing.T) {
	conf, err := Render(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := sections(t, conf)
	g := s["global"]
	for _, want := range []string{
		"pid directory = /var/lib/ftnas/samba/run",
		"lock directory = /var/lib/ftnas/samba/lock",
		"state directory = /var/lib/ftnas/samba/state",
		"cache directory = /var/lib/ftnas/samba/cache",
		"private dir = /var/lib/ftnas/samba/private",
		"ncalrpc dir = /var/lib/ftnas/samba/ncalrpc",
		"passdb backend = tdbsam:/var/lib/ftnas/samba/private/passdb.tdb",
		"interfaces = 192.0.2.10",
		"bind interfaces only = yes",
		"smb ports = 1445",
		"load printers = no",
		"printcap name = /dev/null",
		"disable spoolss = yes",
		"disable netbios = yes",
		"map to guest = never",
		"server min protocol = SMB2_10",
		"log file = /var/lib/ftnas/samba/log/smbd.log",
		"durable handles = yes",
		"kernel oplocks = no",
		"kernel share modes = no",
		"posix locking = no",
	} {
		if !has(g, want) {
			t.Errorf("[global] lacks %q", want)
		}
	}
	if hasKey(g, "vfs objects") {
		t.Error("[global] sets vfs objects; want Samba's default")
	}
	wantSections := []string{"global", ProbeShareName, "Data", "media"}
	if len(s) != len(wantSections) {
		t.Errorf("sections = %v, want %v", s, wantSections)
	}
	// Shares come sorted (case-insensitively) after the probe share.
	iData := bytes.Index(conf, []byte("[Data]"))
	iMedia := bytes.Index(conf, []byte("[media]"))
	iProbe := bytes.Index(conf, []byte("["+ProbeShareName+"]"))
	if !(iProbe < iData && iData < iMedia) {
		t.Errorf("section order probe=%d Data=%d media=%d", iProbe, iData, iMedia)
	}
}

func TestRenderShares(t *testing.T) {
	conf, err := Render(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := sections(t, conf)
	probe := s[ProbeShareName]
	for _, want := range []string{"path = /var/lib/ftnas/probe", "valid users = ftnas-probe", "browseable = no", "read only = yes"} {
		if !has(probe, want) {
			t.Errorf("[%s] lacks %q: %v", ProbeShareName, want, probe)
		}
	}
	data := s["Data"]
	for _, want := range []string{"path = /srv/data", "read only = no", "valid users = alice bob", "invalid users = ftnas-probe"} {
		if !has(data, want) {
			t.Errorf("[Data] lacks %q: %v", want, data)
		}
	}
	media := s["media"]
	for _, want := range []string{"path = /srv/media", "read only = yes", "invalid users = ftnas-probe"} {
		if !has(media, want) {
			t.Errorf("[media] lacks %q: %v", want, media)
		}
	}
	if hasKey(media, "valid users") {
		t.Errorf("[media] has valid users, want none (any user): %v", media)
	}
}

func TestRenderListenAll(t *testing.T) {
	for _, listen := range []string{"", "0.0.0.0", "::"} {
		c := testConfig()
		c.Listen = listen
		c.Port = 0
		conf, err := Render(c)
		if err != nil {
			t.Fatalf("listen %q: %v", listen, err)
		}
		g := sections(t, conf)["global"]
		if hasKey(g, "interfaces") || hasKey(g, "bind interfaces only") {
			t.Errorf("listen %q: want no interfaces/bind-only, got %v", listen, g)
		}
		if !has(g, "smb ports = 445") {
			t.Errorf("listen %q: want default port 445", listen)
		}
	}
	c := testConfig()
	c.Listen = "fd00::1"
	conf, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	if !has(sections(t, conf)["global"], "interfaces = fd00::1") {
		t.Errorf("IPv6 listen not rendered:\n%s", conf)
	}
}

func TestRenderDeterministic(t *testing.T) {
	a := testConfig()
	b := testConfig()
	b.Shares = []Share{b.Shares[1], b.Shares[0]}
	b.Shares[0].ValidUsers = []string{"alice", "bob"}
	ca, err := Render(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := Render(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca, cb) {
		t.Errorf("same config, different output:\n%s\n---\n%s", ca, cb)
	}
	// Render must not reorder the caller's slices.
	if a.Shares[0].Name != "media" || a.Shares[1].ValidUsers[0] != "bob" {
		t.Errorf("Render modified its input: %+v", a.Shares)
	}
}

func TestRenderNoProbe(t *testing.T) {
	c := testConfig()
	c.ProbeUser, c.ProbeDir = "", ""
	conf, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(conf, []byte(ProbeShareName)) || bytes.Contains(conf, []byte("invalid users")) {
		t.Errorf("probe share rendered without probe user:\n%s", conf)
	}
}

func TestRenderRejects(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string // substring of the error
	}{
		{"newline in share name", func(c *Config) { c.Shares[0].Name = "a\nb" }, "control"},
		{"bracket in share name", func(c *Config) { c.Shares[0].Name = "a]b" }, `']'`},
		{"open bracket", func(c *Config) { c.Shares[0].Name = "[x" }, `'['`},
		{"percent in share name", func(c *Config) { c.Shares[0].Name = "a%U" }, `'%'`},
		{"slash in share name", func(c *Config) { c.Shares[0].Name = "a/b" }, `'/'`},
		{"empty share name", func(c *Config) { c.Shares[0].Name = "" }, "empty"},
		{"space-padded share name", func(c *Config) { c.Shares[0].Name = " x" }, "space"},
		{"long share name", func(c *Config) { c.Shares[0].Name = strings.Repeat("a", 81) }, "longer"},
		{"reserved global", func(c *Config) { c.Shares[0].Name = "Global" }, "reserved"},
		{"reserved ipc", func(c *Config) { c.Shares[0].Name = "IPC$" }, "reserved"},
		{"probe share name", func(c *Config) { c.Shares[0].Name = ProbeShareName }, "reserved"},
		{"duplicate share", func(c *Config) { c.Shares[1].Name = "MEDIA" }, "collide"},
		{"relative path", func(c *Config) { c.Shares[0].Path = "srv/x" }, "not absolute"},
		{"unclean path", func(c *Config) { c.Shares[0].Path = "/srv/x/" }, "not clean"},
		{"newline in path", func(c *Config) { c.Shares[0].Path = "/srv/x\nread only = no" }, "control"},
		{"percent in path", func(c *Config) { c.Shares[0].Path = "/srv/%U" }, `'%'`},
		{"backslash in path", func(c *Config) { c.Shares[0].Path = `/srv/a\` }, `'\\'`},
		{"trailing space in path", func(c *Config) { c.Shares[0].Path = "/srv/a " }, "white space"},
		{"bad valid user", func(c *Config) { c.Shares[0].ValidUsers = []string{"@staff"} }, "not allowed"},
		{"user with space", func(c *Config) { c.Shares[0].ValidUsers = []string{"a b"} }, "not allowed"},
		{"empty state dir", func(c *Config) { c.StateDir = "" }, "state dir is empty"},
		{"relative state dir", func(c *Config) { c.StateDir = "state" }, "not absolute"},
		{"bad listen", func(c *Config) { c.Listen = "eth0" }, "not an IP"},
		{"bad port", func(c *Config) { c.Port = 70000 }, "out of range"},
		{"negative port", func(c *Config) { c.Port = -1 }, "out of range"},
		{"probe user without dir", func(c *Config) { c.ProbeDir = "" }, "set together"},
		{"bad probe user", func(c *Config) { c.ProbeUser = "x:y" }, "probe user"},
		{"bad probe dir", func(c *Config) { c.ProbeDir = "probe" }, "probe dir"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			c.Shares = []Share{
				{Name: "media", Path: "/srv/media"},
				{Name: "data", Path: "/srv/data"},
			}
			tc.mod(&c)
			conf, err := Render(c)
			if err == nil {
				t.Fatalf("Render accepted it:\n%s", conf)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestCheckUserName(t *testing.T) {
	for _, ok := range []string{"alice", "_svc", "a.b-c_1", "ftnas-probe", strings.Repeat("a", 32)} {
		if err := CheckUserName(ok); err != nil {
			t.Errorf("CheckUserName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1abc", "-x", ".x", "a b", "a:b", "a,b", "a\n", "ü", "Bob", strings.Repeat("a", 33)} {
		if err := CheckUserName(bad); err == nil {
			t.Errorf("CheckUserName(%q) = nil, want error", bad)
		}
	}
}

// TestRenderTestparm proves Samba accepts the rendered file and reads the
// values we meant.
func TestRenderTestparm(t *testing.T) {
	testparm, err := exec.LookPath("testparm")
	if err != nil {
		t.Skip("testparm not installed: ", err)
	}
	dir := t.TempDir()
	c := testConfig()
	c.StateDir = dir
	c.Listen = "127.0.0.1"
	c.ProbeDir = filepath.Join(dir, "probe")
	c.Shares[0].Path = filepath.Join(dir, "media")
	c.Shares[1].Path = filepath.Join(dir, "data with space")
	if err := MakeDirs(c); err != nil {
		t.Fatal(err)
	}
	conf, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "smb.conf")
	if err := WriteConfig(path, conf); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(testparm, append([]string{"-s", "--suppress-prompt"}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("testparm %v: %v\n%s%s", args, err, stdout.String(), stderr.String())
		}
		return strings.TrimSpace(stdout.String()), stderr.String()
	}
	_, stderr := run(path)
	for _, bad := range []string{"Unknown parameter", "Ignoring", "ERROR", "WARNING", "Invalid"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("testparm complains (%q):\n%s", bad, stderr)
		}
	}
	if !strings.Contains(stderr, "Loaded services file OK") {
		t.Errorf("testparm did not load the file:\n%s", stderr)
	}
	param := func(section, name string) string {
		t.Helper()
		args := []string{"--parameter-name=" + name}
		if section != "" {
			args = append(args, "--section-name="+section)
		}
		out, _ := run(append(args, path)...)
		return out
	}
	for _, tc := range []struct{ section, name, want string }{
		{"", "passdb backend", "tdbsam:" + filepath.Join(dir, "samba/private/passdb.tdb")},
		{"", "pid directory", filepath.Join(dir, "samba/run")},
		{"", "ncalrpc dir", filepath.Join(dir, "samba/ncalrpc")},
		{"", "interfaces", "127.0.0.1"},
		{"", "bind interfaces only", "Yes"},
		{"", "smb ports", "1445"},
		{"", "map to guest", "Never"},
		{"", "load printers", "No"},
		{"", "disable spoolss", "Yes"},
		{"", "server min protocol", "SMB2"}, // SMB2_10 is an alias
		{"", "durable handles", "Yes"},
		{"", "kernel oplocks", "No"},
		{"", "kernel share modes", "No"},
		{"", "posix locking", "No"},
		{"Data", "path", filepath.Join(dir, "data with space")},
		{"Data", "read only", "No"},
		{"Data", "valid users", "alice bob"},
		{"Data", "invalid users", "ftnas-probe"},
		{"media", "read only", "Yes"},
		{ProbeShareName, "browseable", "No"},
		{ProbeShareName, "valid users", "ftnas-probe"},
	} {
		if got := param(tc.section, tc.name); got != tc.want {
			t.Errorf("testparm [%s] %q = %q, want %q", tc.section, tc.name, got, tc.want)
		}
	}
	if info, err := os.Stat(filepath.Join(dir, "samba/private")); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("private dir: %v, mode %v; want 0700", err, info.Mode())
	}
}

func TestListenUp(t *testing.T) {
	addrs := []net.Addr{
		&net.IPNet{IP: net.ParseIP("127.0.0.1"), Mask: net.CIDRMask(8, 32)},
		&net.IPNet{IP: net.ParseIP("10.77.1.100"), Mask: net.CIDRMask(24, 32)},
		&net.IPAddr{IP: net.ParseIP("fd00::5")},
	}
	for _, tc := range []struct {
		listen string
		addrs  []net.Addr
		want   bool
	}{
		{"", nil, true},
		{"0.0.0.0", nil, true},
		{"::", nil, true},
		{"10.77.1.100", addrs, true},
		{"10.77.1.101", addrs, false}, // a VIP held by the peer
		{"10.77.1.100", nil, false},
		{"fd00::5", addrs, true},
		{"fd00::6", addrs, false},
		{"::ffff:10.77.1.100", addrs, true},
		{"not-an-ip", nil, true}, // Render reports it
	} {
		if got := ListenUp(tc.listen, tc.addrs); got != tc.want {
			t.Errorf("ListenUp(%q, %d addrs) = %v, want %v", tc.listen, len(tc.addrs), got, tc.want)
		}
	}
}
