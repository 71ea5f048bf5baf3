package appliance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/smb"
	"ftnas/appliance/store"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	nfsrpc "github.com/willscott/go-nfs-client/nfs/rpc"
)

// inNetns skips a test that needs the standard ports when the binary could
// not get a network namespace of its own.
func inNetns(t *testing.T) {
	t.Helper()
	if os.Getenv(netnsEnv) == "" {
		t.Skip("needs root and unshare(1): nasd takes ports 111, 445 and 2049 in a private network namespace")
	}
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (apt install samba smbclient libnfs-utils): %v", tool, err)
		}
	}
}

// nasd is one appliance run inside the test.
type nasd struct {
	t      *testing.T
	cfg    Config
	cancel context.CancelFunc
	done   chan error
	ready  Ready
	client *api.Client
}

func newConfig(t *testing.T) Config {
	dir := t.TempDir()
	// smbd serves as the user: the volume's parents must be traversable
	// (t.TempDir makes them 0700).
	for d := dir; d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	vol := filepath.Join(dir, "vol")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	return Config{
		StateDir: filepath.Join(dir, "state"), Volume: vol, Listen: "127.0.0.1",
		Metrics: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

func start(t *testing.T, cfg Config) *nasd {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &nasd{t: t, cfg: cfg, cancel: cancel, done: make(chan error, 1)}
	readyc := make(chan Ready, 1)
	go func() { n.done <- Run(ctx, cfg, func(r Ready) { readyc <- r }) }()
	select {
	case n.ready = <-readyc:
	case err := <-n.done:
		cancel()
		t.Fatalf("nasd did not start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("nasd did not get ready in 60 s")
	}
	n.client = api.NewClient(n.ready.API)
	t.Cleanup(n.stop)
	return n
}

func (n *nasd) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	if err := <-n.done; err != nil {
		n.t.Errorf("nasd returned %v", err)
	}
	n.cancel = nil
}

// waitSMB waits until nasd's own probe says SMB serves.
func (n *nasd) waitSMB() {
	n.t.Helper()
	waitFor(n.t, "smb to pass its health probe", 30*time.Second, func() bool {
		st, err := n.client.Status(context.Background())
		if err != nil {
			return false
		}
		for _, s := range st.Services {
			if s.Name == "smb" {
				return s.Healthy
			}
		}
		return false
	})
}

func uniqueUser(t *testing.T) string {
	var b [3]byte
	rand.Read(b[:])
	name := "ftt" + hex.EncodeToString(b[:])
	t.Cleanup(func() { removeAccount(context.Background(), name) })
	return name
}

// smbd finds the smbd main process serving this nasd's config.
func smbdPID(t *testing.T, cfg Config) int {
	t.Helper()
	b, err := os.ReadFile(smb.PathsFor(cfg.StateDir).PidFile)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// waitFor polls a real condition (an external process's state) with a deadline.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}

func TestStockClientsReadAndWrite(t *testing.T) {
	inNetns(t)
	needTools(t, "smbd", "smbclient", "nfs-cp", "nfs-ls", "pdbedit")
	n := start(t, newConfig(t))
	ctx := context.Background()
	if _, err := n.client.AddShare(ctx, api.AddShareRequest{Name: "media", Path: "media"}); err != nil {
		t.Fatal(err)
	}
	user := uniqueUser(t)
	u, err := n.client.AddUser(ctx, api.AddUserRequest{Name: user, Password: "pa ss:word"})
	if err != nil {
		t.Fatal(err)
	}
	n.waitSMB()
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	payload := bytes.Repeat([]byte("ftnas"), 200000)
	if err := os.WriteFile(src, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	// SMB: smbclient writes, the file lands in the share, owned by the user.
	out, err := exec.Command("smbclient", "//127.0.0.1/media", "-U", user+"%pa ss:word",
		"-c", "put "+src+" viasmb.bin").CombinedOutput()
	if err != nil {
		t.Fatalf("smbclient put: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(n.cfg.Volume, "media", "viasmb.bin"))
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("file written over SMB differs on the volume (%v)", err)
	}
	// NFS: libnfs reads what SMB wrote and writes its own file.
	back := filepath.Join(tmp, "back")
	if out, err := exec.Command("nfs-cp", "nfs://127.0.0.1/media/viasmb.bin", back).CombinedOutput(); err != nil {
		t.Fatalf("nfs-cp read: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(back); !bytes.Equal(got, payload) {
		t.Fatal("file read over NFS differs")
	}
	// The same person over NFS: AUTH_SYS with the user's uid and gid.
	asUser := fmt.Sprintf("?uid=%d&gid=%d", u.UID, u.GID)
	if out, err := exec.Command("nfs-cp", src, "nfs://127.0.0.1/media/vianfs.bin"+asUser).CombinedOutput(); err != nil {
		t.Fatalf("nfs-cp write: %v\n%s", err, out)
	}
	out, err = exec.Command("nfs-ls", "nfs://127.0.0.1/media").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "vianfs.bin") || !strings.Contains(string(out), "viasmb.bin") {
		t.Fatalf("nfs-ls: %v\n%s", err, out)
	}
	if fi, err := os.Stat(filepath.Join(n.cfg.Volume, "media", "vianfs.bin")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != u.UID {
		t.Fatalf("file written over NFS as uid %d: %v %+v", u.UID, err, fi)
	}
	// SMB reads what NFS wrote.
	out, err = exec.Command("smbclient", "//127.0.0.1/media", "-U", user+"%pa ss:word",
		"-c", "get vianfs.bin "+filepath.Join(tmp, "smbback")).CombinedOutput()
	if err != nil {
		t.Fatalf("smbclient get: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(tmp, "smbback")); !bytes.Equal(got, payload) {
		t.Fatal("file read over SMB differs")
	}
	// A wrong password is refused.
	if out, err := exec.Command("smbclient", "//127.0.0.1/media", "-U", user+"%wrong", "-c", "ls").CombinedOutput(); err == nil {
		t.Fatalf("smbclient with a wrong password succeeded:\n%s", out)
	}
	// Metrics count the NFS traffic.
	resp, err := http.Get("http://" + n.ready.Metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`ftnas_nfs_ops_total{op="write"}`, `ftnas_nfs_bytes_total{direction="read"}`,
		`ftnas_service_healthy{service="nfs"} 1`, `ftnas_smb_ops_total{op="write"}`, `ftnas_smb_bytes_total{direction="read"}`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestHandleSurvivesRestartAndRename(t *testing.T) {
	inNetns(t)
	cfg := newConfig(t)
	cfg.NoSMB = true
	n := start(t, cfg)
	if _, err := n.client.AddShare(context.Background(), api.AddShareRequest{Name: "docs", Path: "docs", NFS: true}); err != nil {
		t.Fatal(err)
	}
	mount := func() *nfsc.Target {
		t.Helper()
		m, err := nfsc.DialMount("127.0.0.1", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		tg, err := m.Mount("/docs", nfsrpc.NewAuthUnix("t", 0, 0).Auth())
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	tg := mount()
	// Root is squashed: let nobody create in the share.
	if err := os.Chmod(filepath.Join(cfg.Volume, "docs"), 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Mkdir("dir", 0o777); err != nil {
		t.Fatal(err)
	}
	f, err := tg.OpenFile("dir/f", 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("the right bytes")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, fh, err := tg.Lookup("dir/f")
	if err != nil {
		t.Fatal(err)
	}
	n.stop()
	// While nasd is down the directory is renamed, and a copy keeping the
	// xattr appears.
	if err := os.Rename(filepath.Join(cfg.Volume, "docs/dir"), filepath.Join(cfg.Volume, "docs/moved")); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(cfg.Volume, "docs/moved/f"), filepath.Join(cfg.Volume, "docs/copy")).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v %s", err, out)
	}
	start(t, cfg)
	tg = mount()
	attr, err := tg.GetAttr(fh)
	if err != nil {
		t.Fatalf("GETATTR with a handle from before the restart: %v", err)
	}
	if attr.Size() != int64(len("the right bytes")) {
		t.Fatalf("size %d", attr.Size())
	}
	// The copy got its own identity; the old handle still names the original.
	_, cfh, err := tg.Lookup("copy")
	if err != nil || bytes.Equal(cfh, fh) {
		t.Fatalf("copy's handle %x equals the original's %x (%v)", cfh, fh, err)
	}
	if err := tg.Rename("moved/f", "moved/g"); err != nil {
		t.Fatal(err)
	}
	if err := tg.Remove("copy"); err != nil {
		t.Fatal(err)
	}
	file, err := tg.Open("moved/g")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	_, gfh, _ := tg.Lookup("moved/g")
	if !bytes.Equal(gfh, fh) {
		t.Fatalf("handle changed across rename: %x -> %x", fh, gfh)
	}
	b, err := io.ReadAll(file)
	if err != nil || string(b) != "the right bytes" {
		t.Fatalf("read %q, %v", b, err)
	}
}

func TestSmbdRestartsAfterKill(t *testing.T) {
	inNetns(t)
	needTools(t, "smbd", "smbclient", "pdbedit")
	n := start(t, newConfig(t))
	waitFor(t, "smbd pid file", 20*time.Second, func() bool { return smbdPID(t, n.cfg) > 0 })
	old := smbdPID(t, n.cfg)
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new smbd", 30*time.Second, func() bool {
		p := smbdPID(t, n.cfg)
		return p > 0 && p != old && syscall.Kill(p, 0) == nil
	})
	n.waitSMB()
	n.stop()
	// Stopping nasd stops smbd.
	pid := smbdPID(t, n.cfg)
	if pid > 0 && syscall.Kill(pid, 0) == nil {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(b), ") Z") {
			t.Fatalf("smbd %d still runs after nasd stopped", pid)
		}
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	inNetns(t)
	cfg := newConfig(t)
	cfg.NoSMB = true
	n := start(t, cfg)
	ctx := context.Background()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(cfg.Volume, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.AddShare(ctx, api.AddShareRequest{Name: "ok", Path: "ok"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  api.AddShareRequest
		want string
	}{
		{api.AddShareRequest{Name: "esc", Path: "../etc"}, ".."},
		{api.AddShareRequest{Name: "abs", Path: "/etc"}, "absolute"},
		{api.AddShareRequest{Name: "sym", Path: "link/x"}, "symbolic link"},
		{api.AddShareRequest{Name: "OK", Path: "other"}, "exists"},
		{api.AddShareRequest{Name: "bad name", Path: "x"}, "share name"},
		{api.AddShareRequest{Name: "ipc$", Path: "x"}, "share name"},
	} {
		_, err := n.client.AddShare(ctx, tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AddShare(%+v) = %v; want an error mentioning %q", tc.req, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused share created a folder outside the volume")
	}
	shares, _ := n.client.ListShares(ctx)
	if len(shares) != 1 {
		t.Fatalf("refused requests changed the share list: %+v", shares)
	}
	if _, err := n.client.AddUser(ctx, api.AddUserRequest{Name: uniqueUser(t), Password: ""}); err == nil || !strings.Contains(err.Error(), "password") {
		t.Errorf("empty password: %v", err)
	}
	if _, err := n.client.AddUser(ctx, api.AddUserRequest{Name: "root", Password: "x"}); err == nil {
		t.Error("a user named root was accepted")
	}
	users, _ := n.client.ListUsers(ctx)
	if len(users) != 0 {
		t.Fatalf("refused requests added users: %+v", users)
	}
	n.stop()

	// A corrupt state file: nasd refuses to start and leaves it as it is.
	db := filepath.Join(cfg.StateDir, StateFile)
	orig, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(orig)
	// Both meta pages damaged (bbolt keeps two, so one is not enough).
	pg := os.Getpagesize()
	copy(bad[16:], bytes.Repeat([]byte{0xff}, 64))
	copy(bad[pg+16:], bytes.Repeat([]byte{0xff}, 64))
	if err := os.WriteFile(db, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	err = Run(ctx, cfg, nil)
	if err == nil || !strings.Contains(err.Error(), db) {
		t.Fatalf("Run with a corrupt state file = %v; want a refusal naming %s", err, db)
	}
	if now, _ := os.ReadFile(db); !bytes.Equal(now, bad) {
		t.Fatal("nasd rewrote a state file it refused")
	}
	// A missing volume.
	cfg.Volume = filepath.Join(outside, "nope")
	if err := Run(ctx, cfg, nil); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Run with a missing volume = %v", err)
	}
	_ = store.ErrInvalid
}
