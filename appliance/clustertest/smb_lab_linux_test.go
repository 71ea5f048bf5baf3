package clustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ftnas/appliance/api"
	"ftnas/kernel/netns"
	"ftnas/kernel/netns/labtest"

	"github.com/hirochachacha/go-smb2"
)

// smbLabShare is the SMB share of the SMB lab test. It is called "data"
// like the NFS test's share, so pair.onVolume finds its files.
const smbLabShare = "data"

// watchedConn is a client TCP connection that records how its first
// failed read ended and when. go-smb2 reads its connection all the time
// (a receiver goroutine), so the record is when the client learnt that
// the connection was gone.
type watchedConn struct {
	net.Conn
	once  sync.Once
	ended chan struct{} // closed at the first read error
	err   error         // that error, valid once ended is closed
	at    time.Time
}

func (c *watchedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		c.once.Do(func() {
			c.err, c.at = err, time.Now()
			close(c.ended)
		})
	}
	return n, err
}

// smbClient is one go-smb2 session to the VIP, made from the client
// namespace, with the share mounted.
type smbClient struct {
	conn *watchedConn
	sess *smb2.Session
	fs   *smb2.Share
}

// smbDialOnce logs in as user over one new TCP connection from the
// client namespace to the VIP and mounts the share.
func smbDialOnce(p *pair, user, password string) (*smbClient, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, err := netns.DialContext(ctx, p.lab.Client("c1").NS, "tcp", net.JoinHostPort(p.vip, "445"))
	if err != nil {
		return nil, fmt.Errorf("dial %s:445: %w", p.vip, err)
	}
	c := &smbClient{conn: &watchedConn{Conn: raw, ended: make(chan struct{})}}
	d := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: user, Password: password}}
	// Bound the login by closing the connection, since go-smb2 does not
	// watch ctx during its I/O.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	if c.sess, err = d.DialContext(ctx, c.conn); err != nil {
		raw.Close()
		return nil, fmt.Errorf("SMB login as %s through %s: %w", user, p.vip, err)
	}
	if c.fs, err = c.sess.Mount(smbLabShare); err != nil {
		raw.Close()
		return nil, fmt.Errorf("mount %s through %s: %w", smbLabShare, p.vip, err)
	}
	return c, nil
}

// smbDial is smbDialOnce, retried while smbd comes up on the VIP (it is
// kicked when the address arrives), and closed at cleanup.
func smbDial(p *pair, user, password string) *smbClient {
	p.t.Helper()
	var err error
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var c *smbClient
		if c, err = smbDialOnce(p, user, password); err == nil {
			p.t.Cleanup(func() { c.conn.Close() })
			return c
		}
		poll := time.NewTimer(200 * time.Millisecond)
		<-poll.C
	}
	p.t.Fatalf("SMB session through the VIP: %v", err)
	return nil
}

// smbclientRun runs the real smbclient CLI from the client namespace
// against //VIP/data, retrying while a takeover or failback settles, and
// returns its output.
func smbclientRun(p *pair, user, password, cmds string) string {
	p.t.Helper()
	var out []byte
	var err error
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		out, err = exec.CommandContext(ctx, "ip", "netns", "exec", p.lab.Client("c1").NS,
			"smbclient", "//"+p.vip+"/"+smbLabShare, "-U", user+"%"+password, "-c", cmds).CombinedOutput()
		cancel()
		if err == nil {
			return string(out)
		}
		poll := time.NewTimer(200 * time.Millisecond)
		<-poll.C
	}
	p.t.Fatalf("smbclient //%s/%s -c %q: %v\n%s", p.vip, smbLabShare, cmds, err, out)
	return ""
}

// smbclientGet reads file through the VIP with smbclient.
func smbclientGet(p *pair, user, password, file string) string {
	p.t.Helper()
	dst := filepath.Join(p.t.TempDir(), file)
	smbclientRun(p, user, password, fmt.Sprintf("get %s %s", file, dst))
	b, err := os.ReadFile(dst)
	if err != nil {
		p.t.Fatalf("smbclient get %s: %v", file, err)
	}
	return string(b)
}

// smbLabNasd returns the nasd binary the test runs: $FTNAS_NASD, or one
// built once for the test (the lab would build the tree again at every
// start, which is slow on a busy machine and races with edits).
func smbLabNasd(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FTNAS_NASD"); p != "" {
		return p
	}
	bin := filepath.Join(t.TempDir(), "nasd")
	if out, err := exec.Command("go", "build", "-o", bin, "ftnas/cmd/nasd").CombinedOutput(); err != nil {
		t.Fatalf("go build ftnas/cmd/nasd: %v\n%s", err, out)
	}
	return bin
}

// dropSMBReplies makes node's kernel drop every TCP segment from port 445
// that leaves through its public interface (or removes that rule), so
// that a killed node behaves like a crashed box: neither its dying smbd
// (FIN) nor its kernel (RST) can tell the client its connection is gone.
// Only the new master's tickle can.
func dropSMBReplies(t *testing.T, n labtest.Node, on bool) {
	t.Helper()
	rules := fmt.Sprintf(`table inet ftnas_smbtest {
	chain out {
		type filter hook output priority 0; policy accept;
		oifname %q tcp sport 445 drop
	}
}
`, n.PublicIf)
	args := []string{"netns", "exec", n.NS, "nft", "-f", "-"}
	if !on {
		args, rules = []string{"netns", "exec", n.NS, "nft", "delete", "table", "inet", "ftnas_smbtest"}, ""
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: nft (drop SMB replies %v): %v: %s", n.Name, on, err, out)
	}
}

// TestPairSMBFailover: an SMB client of the VIP whose master dies is
// reset at once by the new master's tickle, logs in again on the new
// master with the same account (config sync carried it), finds what it
// wrote, and smbclient works through the VIP after the failover and after
// the failback.
func TestPairSMBFailover(t *testing.T) {
	for _, tool := range []string{"smbd", "smbclient", "pdbedit", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (apt install samba smbclient nftables): %v", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the lab makes network namespaces")
	}
	bin := smbLabNasd(t)
	lab := labtest.Up(t, labtest.Options{Nodes: 2, Clients: 1, FS: "btrfs"})
	p := &pair{t: t, lab: lab, api: map[string]*api.Client{}, vip: lab.VIP}
	n1, n2 := lab.Node("n1"), lab.Node("n2")
	smbStart := func(node string) { lab.Nasd(t, "start", node, "--bin", bin, "--timeout", "60", "--", "--metrics", "") }
	for _, n := range []labtest.Node{n1, n2} {
		smbStart(n.Name)
		p.api[n.Name] = api.NewClient(n.API)
		t.Cleanup(p.api[n.Name].Close)
	}
	// smbd serves as the user: the volumes' parents in the lab dir must
	// let the user through.
	for _, n := range []labtest.Node{n1, n2} {
		for d := filepath.Dir(n.Volume); strings.HasPrefix(d, lab.Dir); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := p.api["n1"].AddShare(p.ctx(), api.AddShareRequest{Name: smbLabShare, Path: smbLabShare, SMB: true}); err != nil {
		t.Fatalf("n1: add SMB share: %v", err)
	}
	user, password := fmt.Sprintf("cs%d", time.Now().UnixNano()%1e6), "smb pair-secret:1"
	if _, err := p.api["n1"].AddUser(p.ctx(), api.AddUserRequest{Name: user, Password: password}); err != nil {
		t.Fatalf("n1: add user: %v", err)
	}
	t.Cleanup(func() {
		for _, n := range []string{"n1", "n2"} {
			p.api[n].RemoveUser(context.Background(), user)
		}
		exec.Command("userdel", user).Run()
	})

	init, err := p.api["n1"].InitCluster(p.ctx(), api.ClusterInitRequest{
		VIP: lab.VIP + "/24", Public: n1.PublicIP, PeerPublic: n2.PublicIP,
		Dedicated: n1.Dedicated[0].IP, PeerDedicated: n1.Dedicated[0].PeerIP, Witness: lab.Witness.IP,
	})
	if err != nil {
		t.Fatalf("cluster init: %v", err)
	}
	if _, err := p.api["n2"].JoinCluster(p.ctx(), api.ClusterJoinRequest{Token: init.Token}); err != nil {
		t.Fatalf("cluster join: %v", err)
	}
	p.waitFor("n1 master, n2 slave, protected", 30*time.Second, func(s1, s2 api.ClusterStatus) bool {
		return serving(s1, "master") && s2.State == "slave" && !s2.Serving &&
			s1.Protection == api.ProtectionProtected && s2.Protection == api.ProtectionProtected
	})
	p.waitNode("n2", "the SMB share and the user configured on n2", 20*time.Second, func(s2 api.ClusterStatus) bool {
		sh, err1 := p.api["n2"].ListShares(p.ctx())
		us, err2 := p.api["n2"].ListUsers(p.ctx())
		return errors.Join(err1, err2) == nil && len(sh) == 1 && sh[0].SMB && len(us) == 1 && us[0].Name == user &&
			s2.Replication.Role == "standby" && s2.Replication.Connected
	})

	// The client writes through the VIP (n1) and closes the file; the
	// share is asynchronously replicated, so wait until the journal has
	// brought the file to n2's volume before the master dies.
	before := strings.Repeat("written over SMB to n1 before the failover\n", 200)
	old := smbDial(p, user, password)
	if err := old.fs.WriteFile("before.txt", []byte(before), 0o644); err != nil {
		t.Fatalf("SMB write through the VIP: %v", err)
	}
	if got, err := old.fs.ReadFile("before.txt"); err != nil || string(got) != before {
		t.Fatalf("SMB read back through the VIP: %d bytes, %v", len(got), err)
	}
	p.onVolume("n2", "before.txt", before)
	// n2 learns the client's connection from n1's snapshots. smbd's own
	// health probe also connects to the VIP now and then, for a moment:
	// the count must hold for several snapshots (one each 0.5 s).
	var heldSince time.Time
	p.waitNode("n2", "n2 knows the SMB client's connection", 15*time.Second, func(s2 api.ClusterStatus) bool {
		if s2.PeerClients < 1 {
			heldSince = time.Time{}
			return false
		}
		if heldSince.IsZero() {
			heldSince = time.Now()
		}
		return time.Since(heldSince) > 1500*time.Millisecond
	})

	// The master dies like a crashed box: nothing it sends on port 445
	// reaches the client any more, then nasd is killed (its smbd follows
	// it) and the service manager removes the VIP. Without the first
	// step the dying smbd would close the connection itself (the client
	// sees EOF at once) and the tickle would go untested.
	epoch1 := p.status("n1").Epoch
	dropSMBReplies(t, n1, true)
	killed := time.Now()
	lab.Nasd(t, "kill", "n1")
	removeVIP(t, n1, lab.VIP)
	p.waitFor("n2 takes over", 20*time.Second, func(_, s2 api.ClusterStatus) bool {
		return serving(s2, "primaryslave") && s2.Epoch > epoch1
	})
	t.Logf("n2 serves within %v of kill -9 of n1 (lab script time included)", time.Since(killed).Round(time.Millisecond))

	// (a) The idle client's connection ends with a reset (n2's tickle
	// makes the client answer n2, whose kernel resets it) instead of
	// hanging until a TCP timeout. 10 s is a deadlock guard, not a speed
	// requirement.
	guard := time.NewTimer(10 * time.Second)
	select {
	case <-old.conn.ended:
		guard.Stop()
		if !errors.Is(old.conn.err, syscall.ECONNRESET) {
			t.Fatalf("the SMB client's connection ended with %v, want a reset (the tickle)", old.conn.err)
		}
		t.Logf("the SMB client's connection was reset %v after the kill", old.conn.at.Sub(killed).Round(time.Millisecond))
	case <-guard.C:
		t.Fatal("the SMB client's connection is still open 10 s after the takeover: no tickle")
	}
	// The old session fails at once; it does not wait for a timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = old.fs.WithContext(ctx).ReadFile("before.txt")
	cancel()
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reading on the reset session: %v, want the transport error", err)
	}

	// (b) The client logs in again through the VIP, now n2, with the
	// same account, and finds its data; the durable handles it had on n1
	// are gone with n1's smbd, so it opens the file anew.
	fresh := smbDial(p, user, password)
	if c, err := smbDialOnce(p, user, password+"x"); err == nil {
		c.conn.Close()
		t.Fatal("n2 accepted an SMB login with a wrong password")
	}
	if got, err := fresh.fs.ReadFile("before.txt"); err != nil || string(got) != before {
		t.Fatalf("after the failover, before.txt through the VIP: %d of %d bytes, %v", len(got), len(before), err)
	}
	after := "written over SMB to n2 while n1 was down\n"
	if err := fresh.fs.WriteFile("after.txt", []byte(after), 0o644); err != nil {
		t.Fatalf("SMB write to n2 through the VIP: %v", err)
	}

	// (c) The stock client works through the VIP after the failover.
	if out := smbclientRun(p, user, password, "ls"); !strings.Contains(out, "before.txt") || !strings.Contains(out, "after.txt") {
		t.Fatalf("smbclient ls through the VIP (n2) should list before.txt and after.txt:\n%s", out)
	}

	// n1 comes back (its network healed), resynchronises from n2 and
	// takes the service back.
	dropSMBReplies(t, n1, false)
	smbStart("n1")
	p.waitFor("n1 rejoins as slave", 20*time.Second, func(s1, s2 api.ClusterStatus) bool {
		return s1.State == "slave" && !s1.Serving && serving(s2, "primaryslave") && s1.PeerAlive
	})
	p.onVolume("n1", "after.txt", after)
	fresh.conn.Close()
	if err := p.api["n2"].ClusterAction(p.ctx(), "failback"); err != nil {
		t.Fatalf("failback: %v", err)
	}
	p.waitFor("failback to n1", 20*time.Second, func(s1, s2 api.ClusterStatus) bool {
		return serving(s1, "master") && s2.State == "slave" && !s2.Serving
	})
	if got := smbclientGet(p, user, password, "after.txt"); got != after {
		t.Fatalf("after the failback, smbclient reads after.txt through the VIP (n1) as %q, want %q", got, after)
	}
	if got := smbclientGet(p, user, password, "before.txt"); !bytes.Equal([]byte(got), []byte(before)) {
		t.Fatalf("after the failback, before.txt through the VIP: %d of %d bytes", len(got), len(before))
	}

	// A second failover finds n2's smbd still running from the first,
	// its socket bound to the VIP that left and came back (a Kick does
	// nothing to a running smbd): it must serve again.
	p.waitFor("n2 caught up with n1's new log", 20*time.Second, caughtUp)
	epoch2 := p.status("n1").Epoch
	lab.Nasd(t, "kill", "n1")
	removeVIP(t, n1, lab.VIP)
	p.waitFor("n2 takes over again", 20*time.Second, func(_, s2 api.ClusterStatus) bool {
		return serving(s2, "primaryslave") && s2.Epoch > epoch2
	})
	if got := smbclientGet(p, user, password, "after.txt"); got != after {
		t.Fatalf("after the second failover, smbclient reads after.txt through the VIP (n2) as %q, want %q", got, after)
	}
}
