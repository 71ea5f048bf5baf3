package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/api/apitest"
)

type cli struct {
	t    *testing.T
	sock string
	fake *apitest.Fake
	now  time.Time
}

func newCLI(t *testing.T) *cli {
	fake := apitest.NewFake("nas1")
	return &cli{t: t, fake: fake, sock: apitest.Serve(t, fake, nil), now: time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)}
}

// run runs nasctl with FTNAS_SOCKET pointing at the test server.
func (c *cli) run(stdin string, argv ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	return c.runEnv(map[string]string{"FTNAS_SOCKET": c.sock}, stdin, argv...)
}

func (c *cli) runEnv(env map[string]string, stdin string, argv ...string) (string, string, int) {
	c.t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		getenv: func(k string) string { return env[k] }, now: func() time.Time { return c.now }}
	root := newRootCmd(a)
	root.SetArgs(argv)
	code := 0
	if err := root.ExecuteContext(context.Background()); err != nil {
		errb.WriteString("nasctl: " + err.Error() + "\n")
		code = 1
	}
	return out.String(), errb.String(), code
}

// ok runs nasctl and fails the test on a non-zero exit.
func (c *cli) ok(stdin string, argv ...string) string {
	c.t.Helper()
	out, errs, code := c.run(stdin, argv...)
	if code != 0 {
		c.t.Fatalf("nasctl %v: exit %d: %s", argv, code, errs)
	}
	return out
}

// fails runs nasctl, expects exit 1 and an error line mentioning want.
func (c *cli) fails(want, stdin string, argv ...string) string {
	c.t.Helper()
	_, errs, code := c.run(stdin, argv...)
	if code != 1 || !strings.HasPrefix(errs, "nasctl: ") || !strings.Contains(errs, want) {
		c.t.Errorf("nasctl %v = exit %d, stderr %q; want error mentioning %q", argv, code, errs, want)
	}
	return errs
}

func TestShareCommands(t *testing.T) {
	c := newCLI(t)
	if out := c.ok("", "share", "list"); !strings.Contains(out, "No shares.") {
		t.Errorf("empty list = %q", out)
	}
	out := c.ok("", "share", "add", "Media", "--path", "media/films")
	for _, w := range []string{"Added share Media (folder media/films, read-write)", "NFS export: /Media  clients: all", `SMB share:  \\nas1\Media`} {
		if !strings.Contains(out, w) {
			t.Errorf("share add output %q lacks %q", out, w)
		}
	}
	out = c.ok("", "share", "add", "docs", "--nfs", "--read-only", "--client", "192.0.2.0/24", "--client", "198.51.100.7,2001:db8::/32")
	if strings.Contains(out, "SMB") || !strings.Contains(out, "clients: 192.0.2.0/24,198.51.100.7,2001:db8::/32") {
		t.Errorf("nfs-only add = %q", out)
	}
	c.ok("", "share", "add", "win", "--smb", "--path", "w")

	out = c.ok("", "share", "list")
	want := "" +
		"NAME   PATH         PROTOCOLS  ACCESS      NFS CLIENTS                              FSID\n" +
		"docs   docs         nfs        read-only   192.0.2.0/24,198.51.100.7,2001:db8::/32  2\n" +
		"Media  media/films  nfs,smb    read-write  all                                      1\n" +
		"win    w            smb        read-write  -                                        3\n"
	if out != want {
		t.Errorf("share list =\n%s\nwant\n%s", out, want)
	}

	out = c.ok("", "--json", "share", "list")
	var shares []map[string]any
	if err := json.Unmarshal([]byte(out), &shares); err != nil || len(shares) != 3 {
		t.Fatalf("share list --json = %q: %v", out, err)
	}
	wantKeys := []string{"name", "path", "nfs", "smb", "read_only", "sync_replication", "fsid", "export", "unc", "clients"}
	for _, k := range wantKeys {
		if _, ok := shares[0][k]; !ok {
			t.Errorf("JSON share lacks %q: %v", k, shares[0])
		}
	}
	if len(shares[0]) != len(wantKeys) {
		t.Errorf("JSON share has extra keys: %v", shares[0])
	}
	if cl, _ := shares[2]["clients"].([]any); cl == nil {
		t.Errorf("clients of an all-clients share = %v, want []", shares[2]["clients"])
	}

	out = c.ok("", "share", "add", "j", "--json")
	var sh api.Share
	if err := json.Unmarshal([]byte(out), &sh); err != nil || sh.Name != "j" || sh.Path != "j" || !sh.NFS || !sh.SMB {
		t.Errorf("share add --json = %q, %v", out, err)
	}

	c.fails(`share "media": already exists (as "Media")`, "", "share", "add", "media")
	c.fails(`invalid share name "bad name"`, "", "share", "add", "bad name")
	c.fails(`".." is not allowed`, "", "share", "add", "x", "--path", "../etc")
	c.fails(`invalid client "nope"`, "", "share", "add", "x", "--client", "nope")
	c.fails("share add: missing NAME", "", "share", "add")
	c.fails("share rm: too many arguments", "", "share", "rm", "a", "b")

	if out := c.ok("", "share", "rm", "Media"); !strings.Contains(out, "Removed share Media; its folder and data are kept.") {
		t.Errorf("share rm = %q", out)
	}
	c.fails(`share "Media": not found`, "", "share", "rm", "Media")
	if out := c.ok("", "share", "rm", "docs", "--json"); out != "" {
		t.Errorf("share rm --json printed %q", out)
	}
}

func TestUserCommands(t *testing.T) {
	c := newCLI(t)
	if out := c.ok("", "user", "ls"); !strings.Contains(out, "No users.") {
		t.Errorf("empty list = %q", out)
	}
	out := c.ok("s3cret pw\r\n", "user", "add", "alice", "--password-stdin")
	if out != "Added user alice (uid 10000, gid 10000).\n" {
		t.Errorf("user add = %q", out)
	}
	if pw, _ := c.fake.Password("alice"); pw != "s3cret pw" {
		t.Errorf("server got password %q, want %q (trailing CR LF trimmed)", pw, "s3cret pw")
	}
	out = c.ok("pw2", "user", "add", "bob", "--password-stdin", "--json")
	if strings.TrimSpace(out) != "{\n  \"name\": \"bob\",\n  \"uid\": 10001,\n  \"gid\": 10001\n}" {
		t.Errorf("user add --json = %q", out)
	}
	if pw, _ := c.fake.Password("bob"); pw != "pw2" {
		t.Errorf("password without newline = %q", pw)
	}
	out = c.ok("", "user", "list")
	if out != "NAME   UID    GID\nalice  10000  10000\nbob    10001  10001\n" {
		t.Errorf("user list =\n%s", out)
	}
	out = c.ok("", "user", "list", "--json")
	var users []api.User
	if err := json.Unmarshal([]byte(out), &users); err != nil || len(users) != 2 || users[1].UID != 10001 {
		t.Errorf("user list --json = %q, %v", out, err)
	}

	if out := c.ok("new pw\nignored second line\n", "user", "passwd", "alice", "--password-stdin"); !strings.Contains(out, "Changed the password of alice.") {
		t.Errorf("passwd = %q", out)
	}
	if pw, _ := c.fake.Password("alice"); pw != "new pw" {
		t.Errorf("new password = %q", pw)
	}

	// Passwords never come from argv, and a refused one is not echoed.
	errs := c.fails("passwords are never taken from the command line", "", "user", "add", "carol", "hunter2")
	if strings.Contains(errs, "hunter2") {
		t.Errorf("error echoes the password: %q", errs)
	}
	c.fails("passwords are never taken from the command line", "", "user", "passwd", "alice", "hunter2", "--password-stdin")
	c.fails("a password is required: pass --password-stdin", "pw\n", "user", "add", "carol")
	c.fails("a password is required: pass --password-stdin", "pw\n", "user", "passwd", "alice")
	c.fails("nothing there", "", "user", "add", "carol", "--password-stdin")
	c.fails("the line is empty", "\n", "user", "add", "carol", "--password-stdin")
	c.fails("longer than 1024 bytes", strings.Repeat("p", 2000)+"\n", "user", "add", "carol", "--password-stdin")
	c.fails(`invalid user name "root": reserved`, "pw\n", "user", "add", "root", "--password-stdin")
	c.fails(`user "bob": already exists`, "pw\n", "user", "add", "bob", "--password-stdin")
	c.fails(`user "zed": not found`, "pw\n", "user", "passwd", "zed", "--password-stdin")
	if _, ok := c.fake.Password("carol"); ok {
		t.Error("a refused user was added")
	}

	if out := c.ok("", "user", "rm", "bob"); out != "Removed user bob.\n" {
		t.Errorf("user rm = %q", out)
	}
	c.fails(`user "bob": not found`, "", "user", "rm", "bob")
}

func TestStatusCommand(t *testing.T) {
	c := newCLI(t)
	c.fake.SetStatus(api.Status{
		Version: "0.1.0", Hostname: "nas1", StartedAt: c.now.Add(-(26*time.Hour + 5*time.Minute)),
		Volume: "/srv/ftnas", VolumeTotalBytes: 4 << 30, VolumeFreeBytes: 1 << 30,
		Services: []api.Service{
			{Name: "smb", State: "running", Healthy: true, Since: c.now.Add(-90 * time.Second)},
			{Name: "nfs", State: "running", Healthy: false, Detail: "probe timed out", Since: c.now.Add(-3 * time.Minute)},
		},
	})
	c.ok("pw\n", "user", "add", "alice", "--password-stdin")
	out := c.ok("", "status")
	for _, w := range []string{
		"Host:     nas1\n",
		"Version:  0.1.0\n",
		"Uptime:   1d2h (since ",
		"Volume:   /srv/ftnas (1.0 GiB free of 4.0 GiB, 75% used)\n",
		"Shares:   0\n",
		"Users:    1\n",
		"SERVICE  STATE    HEALTH   SINCE      DETAIL\n",
		"smb      running  ok       1m30s ago  \n",
		"nfs      running  FAILING  3m0s ago   probe timed out\n",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("status output lacks %q:\n%s", w, out)
		}
	}
	out = c.ok("", "status", "--json")
	var st api.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Users != 1 || len(st.Services) != 2 || st.VolumeFreeBytes != 1<<30 {
		t.Errorf("status --json = %q, %v", out, err)
	}
	for _, k := range []string{`"started_at"`, `"volume_total_bytes"`, `"services"`, `"healthy": false`} {
		if !strings.Contains(out, k) {
			t.Errorf("status JSON lacks %s", k)
		}
	}
}

func TestSocketSelection(t *testing.T) {
	c := newCLI(t)
	// --socket beats $FTNAS_SOCKET.
	if _, _, code := c.runEnv(map[string]string{"FTNAS_SOCKET": "/nonexistent/nasd.sock"}, "", "--socket", c.sock, "user", "list"); code != 0 {
		t.Error("--socket did not override $FTNAS_SOCKET")
	}
	// --state derives the socket.
	stateDir := filepath.Dir(c.sock)
	if _, errs, code := c.runEnv(nil, "", "--state", stateDir, "share", "list"); code != 0 {
		t.Errorf("--state: %s", errs)
	}
	_, errs, code := c.runEnv(nil, "", "--state", stateDir, "--socket", c.sock, "share", "list")
	if code != 1 || !strings.Contains(errs, "--socket and --state both given") {
		t.Errorf("both flags = %d %q", code, errs)
	}
	// Nothing listening: say so, and name the socket.
	dead := filepath.Join(t.TempDir(), "nasd.sock")
	_, errs, code = c.runEnv(map[string]string{"FTNAS_SOCKET": dead}, "", "status")
	if code != 1 || !strings.Contains(errs, "is nasd running? socket "+dead) {
		t.Errorf("no nasd = %d %q", code, errs)
	}
	// The default without $FTNAS_SOCKET is the real box's.
	a := &app{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	newRootCmd(a)
	if a.socket != api.SocketPath("/var/lib/ftnas") {
		t.Errorf("default socket = %q", a.socket)
	}
}

func TestRunExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	dead := filepath.Join(t.TempDir(), "nasd.sock")
	env := func(k string) string {
		if k == "FTNAS_SOCKET" {
			return dead
		}
		return ""
	}
	if code := run(context.Background(), []string{"status"}, strings.NewReader(""), &out, &errb, env); code != 1 {
		t.Errorf("exit code = %d", code)
	}
	if !strings.HasPrefix(errb.String(), "nasctl: cannot reach nasd: is nasd running? socket "+dead) || strings.Count(errb.String(), "\n") != 1 {
		t.Errorf("stderr = %q", errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), nil, strings.NewReader(""), &out, &errb, env); code != 0 || !strings.Contains(out.String(), "Usage:") {
		t.Errorf("no args: code %d, out %q", code, out.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"share", "add", "x", "--bogus"}, strings.NewReader(""), &out, &errb, env); code != 1 || !strings.Contains(errb.String(), "nasctl: unknown flag: --bogus") {
		t.Errorf("unknown flag: code %d, err %q", code, errb.String())
	}
}

func TestReadPassword(t *testing.T) {
	cases := map[string]string{"pw\n": "pw", "pw\r\n": "pw", "pw": "pw", " spaced pw \n": " spaced pw ", "a\nb\n": "a", "pw\r\r\n": "pw\r"}
	for in, want := range cases {
		got, err := readPassword(strings.NewReader(in))
		if err != nil || got != want {
			t.Errorf("readPassword(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := readPassword(errReader{}); err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Errorf("read error = %v", err)
	}
	exact := strings.Repeat("p", maxPasswordLine)
	if got, err := readPassword(strings.NewReader(exact + "\r\n")); err != nil || got != exact {
		t.Errorf("password of exactly %d bytes: %v", maxPasswordLine, err)
	}
	if _, err := readPassword(strings.NewReader(exact + "p\n")); err == nil {
		t.Error("over-long password accepted")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk gone") }

func TestFormatters(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", -time.Second: "0s", 59 * time.Second: "59s", 61 * time.Second: "1m1s", 3*time.Hour + 4*time.Minute: "3h4m", 50 * time.Hour: "2d2h"} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB", 1 << 62: "4.0 EiB"} {
		if got := fmtBytes(n); got != want {
			t.Errorf("fmtBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestMain(m *testing.M) {
	// Keep tests independent of the caller's environment.
	os.Unsetenv("FTNAS_SOCKET")
	os.Exit(m.Run())
}
