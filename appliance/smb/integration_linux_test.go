//go:build linux

package smb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests run the real Samba tools as root.

func needRealSamba(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: smbd, pdbedit and useradd")
	}
	for _, tool := range []string{"smbd", "smbclient", "pdbedit", "smbcontrol", "useradd", "userdel"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newUnixUser creates a system account (no home, no login) and removes it
// when the test ends. It returns the name and uid.
func newUnixUser(t *testing.T, suffix string) (string, int) {
	t.Helper()
	name := "ftnastest" + randHex(t, 3) + suffix
	if out, err := exec.Command("useradd", "-M", "-s", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	return name, uid
}

// stateDir is a world-traversable temp dir (t.TempDir is 0700, which the
// smbd process serving a user could not enter).
func stateDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ftnas-smb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type smbEnv struct {
	dir, conf   string
	cfg         Config
	user, pass  string
	uid         int
	probe       string
	probePass   string
	shareDir    string
	port        int
	addr        string
	passdb      *Passdb
	log         *slog.Logger
	work        string // local dir for smbclient
	authFile    string
	badAuthFile string
}

// newSmbEnv renders a config (share "data" owned by a fresh test user,
// probe share for a fresh probe user) on 127.0.0.1 and a free port, and
// fills the passdb. smbd is not started.
func newSmbEnv(t *testing.T) *smbEnv {
	t.Helper()
	needRealSamba(t)
	e := &smbEnv{dir: stateDir(t), log: testLogger(t)}
	e.user, e.uid = newUnixUser(t, "")
	e.probe, _ = newUnixUser(t, "p")
	t.Cleanup(func() {
		// Safety net if a test failed half-way: no smbd may outlive it.
		conf := filepath.Join(e.dir, "smb.conf")
		if err := NewSupervisor(SupervisorConfig{ConfPath: conf}).sweep(); err != nil {
			t.Errorf("cleanup sweep: %v", err)
		}
	})
	e.pass = "pw-" + randHex(t, 8)
	e.probePass = "probe-" + randHex(t, 8)
	e.shareDir = filepath.Join(e.dir, "data")
	e.work = filepath.Join(e.dir, "work")
	for _, d := range []string{e.shareDir, e.work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(e.shareDir, e.uid, -1); err != nil {
		t.Fatal(err)
	}
	e.port = freePort(t)
	e.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(e.port))
	e.conf = filepath.Join(e.dir, "smb.conf")
	e.cfg = Config{
		StateDir:  e.dir,
		Listen:    "127.0.0.1",
		Port:      e.port,
		Shares:    []Share{{Name: "data", Path: e.shareDir}},
		ProbeUser: e.probe,
		ProbeDir:  filepath.Join(e.dir, "probe"),
	}
	e.writeConf(t)
	e.passdb = NewPassdb(e.conf, e.log)
	ctx := context.Background()
	if err := e.passdb.Sync(ctx, map[string]string{e.user: NTHash(e.pass), e.probe: NTHash(e.probePass)}); err != nil {
		t.Fatal(err)
	}
	e.authFile = e.writeAuth(t, "auth", e.user, e.pass)
	e.badAuthFile = e.writeAuth(t, "badauth", e.user, "wrong")
	return e
}

func (e *smbEnv) writeConf(t *testing.T) {
	t.Helper()
	if err := MakeDirs(e.cfg); err != nil {
		t.Fatal(err)
	}
	data, err := Render(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteConfig(e.conf, data); err != nil {
		t.Fatal(err)
	}
}

func (e *smbEnv) writeAuth(t *testing.T, name, user, pass string) string {
	p := filepath.Join(e.work, name)
	if err := os.WriteFile(p, []byte("username = "+user+"\npassword = "+pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// smbclient runs the real smbclient against share with commands.
func (e *smbEnv) smbclient(t *testing.T, auth, share, commands string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "smbclient", "//127.0.0.1/"+share, "-p", strconv.Itoa(e.port), "-A", auth, "-c", commands)
	cmd.Dir = e.work
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *smbEnv) waitPort(t *testing.T) {
	t.Helper()
	waitFor(t, 15*time.Second, "smbd listening on "+e.addr, func() bool {
		c, err := net.DialTimeout("tcp", e.addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

func (e *smbEnv) supervisor() *Supervisor {
	return NewSupervisor(SupervisorConfig{
		ConfPath: e.conf, Log: e.log,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
}

// confProcs lists live processes whose command line mentions the config,
// independently of the supervisor's own matching.
func confProcs(t *testing.T, conf string) map[int]string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	found := map[int]string{}
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() || !alive(pid) {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && bytes.Contains(b, []byte(conf)) {
			found[pid] = strings.ReplaceAll(string(bytes.TrimRight(b, "\x00")), "\x00", " ")
		}
	}
	return found
}

// roundTrip writes random bytes through smbclient put, reads them back
// with get, and checks both copies and the file's owner on disk.
func (e *smbEnv) roundTrip(t *testing.T, name string) {
	t.Helper()
	want := []byte(randHex(t, 2000))
	if err := os.WriteFile(filepath.Join(e.work, name+".in"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := e.smbclient(t, e.authFile, "data", fmt.Sprintf("put %[1]s.in %[1]s; get %[1]s %[1]s.out", name))
	if err != nil {
		t.Fatalf("smbclient put/get: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(e.work, name+".out"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("smbclient get returned %d bytes (%v), want the %d put", len(got), err, len(want))
	}
	onDisk := filepath.Join(e.shareDir, name)
	got, err = os.ReadFile(onDisk)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("file in share dir: %d bytes, %v; want the %d put", len(got), err, len(want))
	}
	fi, err := os.Stat(onDisk)
	if err != nil {
		t.Fatal(err)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; int(uid) != e.uid {
		t.Errorf("%s owned by uid %d, want the SMB user's %d", onDisk, uid, e.uid)
	}
}

func TestIntegrationSmbd(t *testing.T) {
	e := newSmbEnv(t)
	ctx := context.Background()
	names, err := e.passdb.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{e.user, e.probe}; !slices.Equal(names, slices.Sorted(slices.Values(want))) {
		t.Fatalf("passdb users %v, want %v", names, want)
	}

	s := e.supervisor()
	cancel, run := startRun(t, s)
	waitFor(t, 15*time.Second, "supervisor running", func() bool { return s.State().Phase == PhaseRunning })
	e.waitPort(t)
	pid := s.State().PID

	e.roundTrip(t, "first.bin")
	if out, err := e.smbclient(t, e.badAuthFile, "data", "ls"); err == nil {
		t.Errorf("smbclient with a wrong password succeeded:\n%s", out)
	}

	// Health probe: works for the probe user on its share, fails at the
	// named step otherwise.
	if err := Probe(ctx, e.addr, e.probe, e.probePass, ProbeShareName); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if err := Probe(ctx, e.addr, e.probe, "wrong", ProbeShareName); err == nil || !strings.Contains(err.Error(), "login") {
		t.Errorf("Probe with wrong password = %v, want a login error", err)
	}
	if err := Probe(ctx, e.addr, e.probe, e.probePass, "data"); err == nil || !strings.Contains(err.Error(), "mount data") {
		t.Errorf("probe user on a data share = %v, want a mount error", err)
	}
	if err := Probe(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))), e.probe, e.probePass, ProbeShareName); err == nil || !strings.Contains(err.Error(), "dial") {
		t.Errorf("Probe of a closed port = %v, want a dial error", err)
	}

	// Reload: a share added to the config is served by the same smbd.
	second := filepath.Join(e.dir, "second")
	if err := os.Mkdir(second, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(second, "marker.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.cfg.Shares = append(e.cfg.Shares, Share{Name: "second", Path: second, ReadOnly: true})
	e.writeConf(t)
	if err := s.Reload(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if out, err := e.smbclient(t, e.authFile, "second", "ls"); err != nil || !strings.Contains(out, "marker.txt") {
		t.Errorf("new share after reload: %v\n%s", err, out)
	}
	if s.State().PID != pid {
		t.Errorf("Reload restarted smbd: pid %d -> %d", pid, s.State().PID)
	}

	// Crash: SIGKILL the main smbd; the supervisor starts a new one.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "smbd restarted", func() bool {
		st := s.State()
		return st.Phase == PhaseRunning && st.PID != pid && st.PID != 0
	})
	if st := s.State(); st.Restarts != 1 || !strings.Contains(st.LastError, "killed") {
		t.Errorf("state after crash: %+v", st)
	}
	e.waitPort(t)
	e.roundTrip(t, "second.bin")

	// Listing shares makes smbd spawn samba-dcerpcd (own session); the
	// supervisor must stop it too.
	if out, err := e.smbclient(t, e.authFile, "IPC$", "ls"); err != nil && !strings.Contains(out, "NT_STATUS") {
		t.Logf("IPC$: %v %s", err, out)
	}
	lst := exec.Command("smbclient", "-L", "//127.0.0.1", "-p", strconv.Itoa(e.port), "-A", e.authFile)
	if out, err := lst.CombinedOutput(); err != nil || !strings.Contains(string(out), "data") {
		t.Errorf("smbclient -L: %v\n%s", err, out)
	}
	helpers := 0
	for _, cmdline := range confProcs(t, e.conf) {
		if strings.Contains(cmdline, "dcerpcd") || strings.Contains(cmdline, "rpcd_") {
			helpers++
		}
	}
	if helpers == 0 {
		t.Error("no samba-dcerpcd helper found after a share listing; the helper sweep is untested")
	}

	cancel()
	if err := waitRunReturn(t, run); err != nil {
		t.Errorf("Run = %v", err)
	}
	if left := confProcs(t, e.conf); len(left) > 0 {
		t.Errorf("processes left after Run returned: %v", left)
	}
	if st := s.State(); st.Phase != PhaseStopped {
		t.Errorf("state after Run: %+v", st)
	}
}

// TestIntegrationStaleSmbd: an smbd left by an earlier nasd (same config)
// is stopped before the supervisor starts its own.
func TestIntegrationStaleSmbd(t *testing.T) {
	e := newSmbEnv(t)
	stale := exec.Command("smbd", smbdArgs(e.conf)...)
	stale.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := stale.Start(); err != nil {
		t.Fatal(err)
	}
	staleDone := make(chan struct{})
	go func() { stale.Wait(); close(staleDone) }()
	t.Cleanup(func() {
		stale.Process.Kill()
		<-staleDone
	})
	e.waitPort(t)
	stalePid := stale.Process.Pid
	waitFor(t, 10*time.Second, "stale pid file", func() bool {
		pid, err := readPidFile(PathsFor(e.dir).PidFile)
		return err == nil && pid == stalePid
	})

	s := e.supervisor()
	cancel, run := startRun(t, s)
	select {
	case <-staleDone:
	case <-time.After(15 * time.Second):
		t.Fatal("stale smbd was not stopped")
	}
	waitFor(t, 15*time.Second, "supervised smbd running", func() bool { return s.State().Phase == PhaseRunning })
	if pid := s.State().PID; pid == stalePid {
		t.Fatalf("supervisor reports the stale pid %d", pid)
	}
	if ws := stale.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() && ws.ExitStatus() != 0 {
		t.Logf("stale smbd exit: %v", stale.ProcessState)
	}
	e.waitPort(t)
	if err := Probe(context.Background(), e.addr, e.probe, e.probePass, ProbeShareName); err != nil {
		t.Errorf("Probe of the new smbd: %v", err)
	}
	cancel()
	if err := waitRunReturn(t, run); err != nil {
		t.Errorf("Run = %v", err)
	}
	if left := confProcs(t, e.conf); len(left) > 0 {
		t.Errorf("processes left after Run returned: %v", left)
	}
}

// TestIntegrationStaleIgnoresOthers: a pid file pointing at a process that
// is not smbd with this config must not get it killed.
func TestIntegrationStaleIgnoresOthers(t *testing.T) {
	needRealSamba(t)
	dir, conf := fakeSetup(t)
	other := exec.Command("sleep", "1000")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	if err := os.MkdirAll(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run", "smbd.pid"), []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := NewSupervisor(SupervisorConfig{ConfPath: conf, SmbdPath: filepath.Join(dir, "missing"), Clock: newFakeClock()})
	if err := s.stopStale(); err != nil {
		t.Fatal(err)
	}
	if !alive(other.Process.Pid) {
		t.Error("stopStale killed a process that is not smbd")
	}
}

func TestIntegrationPassdb(t *testing.T) {
	needRealSamba(t)
	dir := stateDir(t)
	cfg := Config{StateDir: dir, Listen: "127.0.0.1", Port: freePort(t)}
	if err := MakeDirs(cfg); err != nil {
		t.Fatal(err)
	}
	data, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "smb.conf")
	if err := WriteConfig(conf, data); err != nil {
		t.Fatal(err)
	}
	alice, _ := newUnixUser(t, "a")
	bob, _ := newUnixUser(t, "b")
	p := NewPassdb(conf, testLogger(t))
	ctx := context.Background()
	hashes := func() map[string]string {
		t.Helper()
		out, err := exec.Command("pdbedit", "-s", conf, "-L", "-w").Output()
		if err != nil {
			t.Fatal(err)
		}
		m, err := parseSmbpasswdList(out)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	if err := p.SetUser(ctx, alice, strings.ToLower(NTHash("one"))); err != nil {
		t.Fatal(err)
	}
	if h := hashes()[alice]; h != NTHash("one") {
		t.Errorf("after add: hash %q, want %q", h, NTHash("one"))
	}
	if err := p.SetUser(ctx, alice, NTHash("two")); err != nil {
		t.Fatal(err)
	}
	if h := hashes()[alice]; h != NTHash("two") {
		t.Errorf("after update: hash %q", h)
	}
	// Samba must not consider the imported password expired.
	out, err := exec.Command("pdbedit", "-s", conf, "-L", "-v", "-u", alice).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "Password must change: never") {
		t.Errorf("imported password is not valid indefinitely:\n%s", out)
	}

	if err := p.SetUser(ctx, "ftnasnosuchuser", NTHash("x")); err == nil || !strings.Contains(err.Error(), "unix account") {
		t.Errorf("SetUser without unix account = %v", err)
	}
	if err := p.SetUser(ctx, bob, "not-a-hash"); err == nil || !strings.Contains(err.Error(), "NT hash") {
		t.Errorf("SetUser with bad hash = %v", err)
	}

	if err := p.Sync(ctx, map[string]string{bob: NTHash("b")}); err != nil {
		t.Fatal(err)
	}
	if got := hashes(); len(got) != 1 || got[bob] != NTHash("b") {
		t.Errorf("after sync: %v", got)
	}
	if err := p.Sync(ctx, map[string]string{bob: NTHash("b"), alice: "zz"}); err == nil {
		t.Error("Sync accepted a bad hash")
	}
	if got := hashes(); len(got) != 1 {
		t.Errorf("failed Sync changed the passdb: %v", got)
	}
	if err := p.DeleteUser(ctx, bob); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteUser(ctx, bob); err != nil {
		t.Errorf("deleting a missing user: %v", err)
	}
	if names, err := p.ListUsers(ctx); err != nil || len(names) != 0 {
		t.Errorf("ListUsers = %v, %v; want empty", names, err)
	}

	// NTHash agrees with Samba's own hashing for non-ASCII passwords
	// (including a character outside the BMP).
	pw := "Pässwörd-€-😀-" + randHex(t, 4)
	cmd := exec.Command("pdbedit", "-s", conf, "-a", "-u", alice, "-t")
	cmd.Stdin = strings.NewReader(pw + "\n" + pw + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pdbedit -a -t: %v\n%s", err, out)
	}
	if h := hashes()[alice]; h != NTHash(pw) {
		t.Errorf("Samba hashed %q as %s, NTHash gives %s", pw, h, NTHash(pw))
	}
}

// fakeNasdEnv makes the test binary act as nasd: it supervises smbd with
// the config named by this variable until it is killed.
const fakeNasdEnv = "FTNAS_SMB_TEST_FAKE_NASD"

// TestIntegrationDiesWithNasd: when nasd is SIGKILLed, smbd (Pdeathsig)
// goes away with it, and the next nasd finds nothing or cleans up.
func TestIntegrationDiesWithNasd(t *testing.T) {
	if conf := os.Getenv(fakeNasdEnv); conf != "" {
		s := NewSupervisor(SupervisorConfig{ConfPath: conf, Log: testLogger(t)})
		t.Fatal(s.Run(context.Background())) // returns only on failure
	}
	e := newSmbEnv(t)
	nasd := exec.Command(os.Args[0], "-test.run=^TestIntegrationDiesWithNasd$", "-test.v")
	nasd.Env = append(os.Environ(), fakeNasdEnv+"="+e.conf)
	var out bytes.Buffer
	nasd.Stdout, nasd.Stderr = &out, &out
	if err := nasd.Start(); err != nil {
		t.Fatal(err)
	}
	nasdDone := make(chan struct{})
	go func() { nasd.Wait(); close(nasdDone) }()
	t.Cleanup(func() {
		nasd.Process.Kill()
		<-nasdDone
		if t.Failed() {
			t.Logf("fake nasd output:\n%s", out.String())
		}
	})
	e.waitPort(t)
	var smbdPid int
	waitFor(t, 10*time.Second, "smbd pid file", func() bool {
		pid, err := readPidFile(PathsFor(e.dir).PidFile)
		smbdPid = pid
		return err == nil && alive(pid)
	})
	if err := nasd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-nasdDone
	waitFor(t, 10*time.Second, "smbd to exit after nasd died", func() bool { return !alive(smbdPid) })
	waitFor(t, 10*time.Second, "all smbd processes to exit", func() bool { return len(confProcs(t, e.conf)) == 0 })
}
