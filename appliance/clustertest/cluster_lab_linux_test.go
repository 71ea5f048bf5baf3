package clustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"ftnas/appliance"
	"ftnas/appliance/api"
	"ftnas/heartbeat"
	"ftnas/kernel/netns"
	"ftnas/kernel/netns/labtest"
)

func TestPairFailoverAndFailback(t *testing.T) {
	if _, err := exec.LookPath("nfs-cat"); err != nil {
		t.Skip("needs nfs-cat from libnfs-utils (scripts/deps installs it)")
	}
	lab := labtest.Up(t, labtest.Options{Nodes: 2, Clients: 1, FS: "btrfs"})
	p := newPair(t, lab)
	n1, n2 := lab.Node("n1"), lab.Node("n2")
	if _, err := p.api["n1"].AddShare(p.ctx(), api.AddShareRequest{Name: "data", Path: "data", NFS: true}); err != nil {
		t.Fatalf("n1: add share: %v", err)
	}

	// Form the pair: n1 primary, n2 standby from n1's token.
	init, err := p.api["n1"].InitCluster(p.ctx(), initRequest(lab))
	if err != nil {
		t.Fatalf("cluster init: %v", err)
	}
	if _, err := p.api["n2"].InitCluster(p.ctx(), api.ClusterInitRequest{VIP: "10.0.0.1"}); err == nil {
		t.Fatal("init with a VIP without prefix length accepted")
	}
	if _, err := p.api["n2"].JoinCluster(p.ctx(), api.ClusterJoinRequest{Token: "ftnas-join-1:garbage!"}); err == nil {
		t.Fatal("join with a corrupt token accepted")
	}
	if _, err := p.api["n2"].JoinCluster(p.ctx(), api.ClusterJoinRequest{Token: init.Token}); err != nil {
		t.Fatalf("cluster join: %v", err)
	}
	took := p.waitFor("n1 master, n2 slave, protected, the witness probed", 30*time.Second, func(s1, s2 api.ClusterStatus) bool {
		return serving(s1, "master") && s2.State == "slave" && !s2.Serving &&
			s1.Protection == api.ProtectionProtected && s2.Protection == api.ProtectionProtected && s1.Witness.Known
	})
	t.Logf("pair formed in %v", took)
	s1 := p.status("n1")
	if len(s1.Paths) != 2 || !s1.Paths[0].Alive || !s1.Paths[1].Alive || !s1.Witness.Reachable {
		t.Fatalf("n1 should hear n2 on both paths and reach the witness: %+v", s1)
	}
	// The standby's volume becomes a copy of the master's (the journal)
	// and its configuration too (config sync): the share, with the same
	// fsid (so the same handles), and the users, with the same UIDs.
	user := fmt.Sprintf("ct%d", time.Now().UnixNano()%1e6)
	if _, err := p.api["n1"].AddUser(p.ctx(), api.AddUserRequest{Name: user, Password: "pair-secret-1"}); err != nil {
		t.Fatalf("n1: add user: %v", err)
	}
	t.Cleanup(func() {
		for _, n := range []string{"n1", "n2"} {
			p.api[n].RemoveUser(context.Background(), user)
		}
		exec.Command("userdel", user).Run()
	})
	p.waitNode("n2", "the share folder replicated", 20*time.Second, func(s2 api.ClusterStatus) bool {
		_, err := os.Stat(filepath.Join(n2.Volume, "data"))
		return err == nil && s2.Replication.Role == "standby" && s2.Replication.Connected
	})
	p.waitNode("n2", "the share and the user configured on n2", 20*time.Second, func(api.ClusterStatus) bool {
		sh1, err1 := p.api["n1"].ListShares(p.ctx())
		sh2, err2 := p.api["n2"].ListShares(p.ctx())
		u1, err3 := p.api["n1"].ListUsers(p.ctx())
		u2, err4 := p.api["n2"].ListUsers(p.ctx())
		return errors.Join(err1, err2, err3, err4) == nil && len(sh2) == 1 && len(u2) == 1 &&
			sh2[0].Name == "data" && sh2[0].FSID == sh1[0].FSID && u2[0] == u1[0]
	})
	p.write("hello", "written through the VIP to n1")
	p.servedBy("n1", "hello", "written through the VIP to n1")
	p.onVolume("n2", "hello", "written through the VIP to n1")
	p.waitFor("the standby acknowledged everything", 20*time.Second, func(s1, s2 api.ClusterStatus) bool {
		r := s1.Replication
		return r.Role == "master" && r.Connected && r.LastSeq > 0 && r.AckedSeq == r.LastSeq && r.Depth == 0 && s2.Replication.AckedSeq == r.LastSeq
	})
	epoch1 := s1.Epoch

	// A forged heartbeat: n1's address and port as the source, the right
	// cluster and node, "master" at a far higher epoch — but not the
	// pair's key. It is counted as a bad MAC and changes nothing.
	before2 := p.status("n2")
	forged := heartbeat.Encode([]byte("not-the-pair-key-not-the-pair-key"), heartbeat.Msg{
		ClusterID: before2.ClusterID, NodeID: 1, Path: 0, State: heartbeat.StateMaster,
		Epoch: before2.Epoch + 100, Seq: 1 << 62, Time: time.Now().UnixNano(),
	})
	for range 5 {
		spoofUDP(t, lab.Client("c1").NS, n1.PublicIP, n2.PublicIP, appliance.DefaultHeartbeatPort, forged)
	}
	p.waitNode("n2", "the forged heartbeats counted as bad MACs", 10*time.Second, func(s2 api.ClusterStatus) bool {
		return s2.Heartbeats.BadMAC >= before2.Heartbeats.BadMAC+5
	})
	if s1, s2 := p.status("n1"), p.status("n2"); !serving(s1, "master") || s2.Serving || s2.Epoch != before2.Epoch || s1.Epoch != epoch1 {
		t.Fatalf("a forged heartbeat changed the pair:\n n1 %+v\n n2 %+v", s1, s2)
	}
	// A client's handle from n1, kept for after the failover.
	tg := p.nfsMount("/data")
	_, helloFH, err := tg.Lookup("hello")
	if err != nil {
		t.Fatalf("LOOKUP hello through the VIP: %v", err)
	}
	// The write verifier the client sees: it changes only when writes
	// it was told are UNSTABLE may have been lost (issue 6).
	p.write("verf", "v")
	_, verfFH, err := tg.Lookup("verf")
	if err != nil {
		t.Fatalf("LOOKUP verf through the VIP: %v", err)
	}
	verf1 := p.writeVerifier(verfFH, "1")

	// A sync-replicated share: once COMMIT (go-nfs-client's Close)
	// returns, the standby already has the data — no waiting (RPO 0).
	if _, err := p.api["n1"].AddShare(p.ctx(), api.AddShareRequest{Name: "sync", Path: "sync", NFS: true, SyncReplication: true}); err != nil {
		t.Fatalf("n1: add sync share: %v", err)
	}
	p.waitNode("n2", "the sync share configured on n2", 20*time.Second, func(api.ClusterStatus) bool {
		sh, err := p.api["n2"].ListShares(p.ctx())
		return err == nil && slices.ContainsFunc(sh, func(s api.Share) bool { return s.Name == "sync" && s.SyncReplication })
	})
	stg := p.nfsMount("/sync")
	for i := range 3 {
		name, want := fmt.Sprintf("committed-%d", i), strings.Repeat(fmt.Sprintf("sync write %d\n", i), 1000)
		f, err := stg.OpenFile(name, 0o644)
		if err != nil {
			t.Fatalf("create %s on the sync share: %v", name, err)
		}
		if _, err := f.Write([]byte(want)); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
		if err := f.Close(); err != nil {
			t.Fatalf("COMMIT %s: %v", name, err)
		}
		got, err := os.ReadFile(filepath.Join(n2.Volume, "sync", name))
		if err != nil || string(got) != want {
			t.Fatalf("right after COMMIT returned, n2 holds %d of %d bytes of %s (%v)", len(got), len(want), name, err)
		}
	}

	// Losing one path is an alarm, not a failover: wait until the
	// dedicated path has been silent for longer than a takeover needs
	// (dead interval + lease, about 1.5 s), then nothing may have moved.
	lab.Cut(t, "n1", "dedicated")
	p.waitFor("dedicated path silent for 3 s, alarm raised", 20*time.Second, func(s1, s2 api.ClusterStatus) bool {
		return len(s2.Paths) == 2 && !s2.Paths[1].Alive && s2.Paths[1].LastHeardMS > 3000 &&
			slices.Contains(s2.Alarms, "path-down(1)") && s1.Protection == api.ProtectionDegraded
	})
	if s1, s2 := p.status("n1"), p.status("n2"); !serving(s1, "master") || s2.Serving || s1.Epoch != epoch1 || !s2.PeerAlive {
		t.Fatalf("one path cut moved the service:\n n1 %+v\n n2 %+v", s1, s2)
	}
	lab.Restore(t, "n1", "dedicated")
	p.waitFor("both paths back", 20*time.Second, func(s1, s2 api.ClusterStatus) bool {
		return s1.Protection == api.ProtectionProtected && s2.Protection == api.ProtectionProtected
	})

	// The master dies (kill -9). Nothing removes the VIP it leaves on
	// its interface, but its lease fence is pinned (the lab's BPF
	// filesystem) and outlives nasd: the lease runs out at the wire and
	// n2 promotes after it.
	killed := time.Now()
	lab.Nasd(t, "kill", "n1")
	p.waitFor("n2 takes over", 20*time.Second, func(_, s2 api.ClusterStatus) bool {
		return serving(s2, "primaryslave") && s2.Epoch > epoch1
	})
	t.Logf("takeover within %v of kill -9 (lab script time included)", time.Since(killed))
	if out, err := exec.Command("ip", "-n", n1.NS, "-o", "addr", "show", "dev", n1.PublicIf).CombinedOutput(); err != nil || !strings.Contains(string(out), " "+lab.VIP+"/") {
		t.Fatalf("the killed master's VIP is gone (%v: %s); the test no longer shows the fence", err, out)
	}
	fenced(t, lab, n1, "a killed master's VIP past its lease")

	p.servedBy("n2", "hello", "written through the VIP to n1")
	// The handle n1 gave is valid on n2: same fsid, same file ID, same
	// generation; no stale handle.
	tg = p.nfsMount("/data")
	attr, err := tg.GetAttr(helloFH)
	if err != nil || attr.Size() != int64(len("written through the VIP to n1")) {
		t.Fatalf("GETATTR on n2 with n1's handle: %v (size %v)", err, attr)
	}
	if _, fh2, err := tg.Lookup("hello"); err != nil || !bytes.Equal(fh2, helloFH) {
		t.Fatalf("n2's handle for hello %x differs from n1's %x (%v)", fh2, helloFH, err)
	}
	p.write("after", "written to n2 while n1 was down")
	verf2 := p.writeVerifier(verfFH, "2")
	if verf2 == verf1 {
		t.Fatalf("the write verifier %x survived a kill -9 of the master: the client would not resend its uncommitted writes", verf1)
	}

	// The repaired primary comes back: it joins as slave, the standby
	// keeps serving; failback hands the service back.
	p.start("n1")
	p.waitFor("n1 rejoins as slave", 20*time.Second, func(s1, s2 api.ClusterStatus) bool {
		return s1.State == "slave" && !s1.Serving && serving(s2, "primaryslave") && s1.PeerAlive
	})
	// It resynchronises from the acting master's journal.
	p.onVolume("n1", "after", "written to n2 while n1 was down")
	p.servedBy("n2", "after", "written to n2 while n1 was down")
	// No wait for config sync (a connection of its own) to bring n1 the
	// write generation n2 serves with: the journal's hand-off carries it
	// (CI once failed back 0.9 s after n1 rejoined, before config sync
	// had brought it, and the verifier changed).
	resyncs := p.status("n2").Replication.Resyncs
	if err := p.api["n2"].ClusterAction(p.ctx(), "failback"); err != nil {
		t.Fatalf("failback: %v", err)
	}
	took = p.waitFor("failback to n1", 20*time.Second, func(s1, s2 api.ClusterStatus) bool {
		return serving(s1, "master") && s2.State == "slave" && !s2.Serving
	})
	t.Logf("failback took %v", took)
	// n1 had all of n2's log at the hand-off: its log continues it, and
	// n2, whose volume is that log's, follows without a resync, a copy
	// all along.
	p.waitFor("n2 caught up with n1's log", 20*time.Second, caughtUp)
	continued(t, p, resyncs)
	p.servedBy("n1", "after", "written to n2 while n1 was down")
	if v := p.writeVerifier(verfFH, "3"); v != verf2 {
		t.Fatalf("a planned failback changed the write verifier %x to %x (nothing was lost: clients should not resend)", verf2, v)
	}
	if got, err := p.read("verf"); err != nil || got != "3" {
		t.Fatalf("verf after the failback = %q, %v; want the UNSTABLE write made before it", got, err)
	}

	// A frozen master (SIGSTOP) cannot remove its VIP and its kernel would
	// go on answering ARP and TCP for it; its lease fence (a tcx program)
	// drops the VIP's traffic once the lease runs out, and the standby
	// promotes only after that. The client must end up on n2 alone.
	epochF := p.status("n1").Epoch
	lab.Nasd(t, "freeze", "n1")
	p.waitNode("n2", "n2 takes over from a frozen master", 20*time.Second, func(s2 api.ClusterStatus) bool {
		return serving(s2, "primaryslave") && s2.Epoch > epochF
	})
	p.servedBy("n2", "after", "written to n2 while n1 was down")
	verf4 := p.writeVerifier(verfFH, "4")
	if verf4 == verf2 {
		t.Fatalf("the write verifier %x survived the takeover from a frozen master", verf4)
	}
	// The frozen node's kernel still holds the VIP and would complete TCP
	// handshakes for it (into the frozen nasd's backlog).
	fenced(t, lab, n1, "a frozen master past its lease")
	p.servedBy("n2", "hello", "written through the VIP to n1")
	lab.Nasd(t, "thaw", "n1")
	p.waitFor("the thawed master yields", 20*time.Second, func(s1, s2 api.ClusterStatus) bool {
		return s1.State == "slave" && !s1.Serving && serving(s2, "primaryslave")
	})
	p.write("thawed", "written to n2 while n1 was frozen")
	p.onVolume("n1", "thawed", "written to n2 while n1 was frozen")
	resyncs = p.status("n2").Replication.Resyncs
	if err := p.api["n2"].ClusterAction(p.ctx(), "failback"); err != nil {
		t.Fatalf("failback: %v", err)
	}
	p.waitFor("failback to n1 again", 20*time.Second, func(s1, s2 api.ClusterStatus) bool {
		return serving(s1, "master") && s2.State == "slave" && !s2.Serving
	})
	p.servedBy("n1", "thawed", "written to n2 while n1 was frozen")
	if v := p.writeVerifier(verfFH, "5"); v != verf4 {
		t.Fatalf("the second failback changed the write verifier %x to %x", verf4, v)
	}
	p.waitFor("n2 caught up with n1's log again", 20*time.Second, caughtUp)
	continued(t, p, resyncs)

	// A partition of the master from the peer and the witness: it
	// releases the VIP, the standby (which still reaches the witness)
	// takes over; after healing exactly one serves.
	before := p.status("n1").Epoch
	// An idle client connection to the VIP's NFS port, known to n2 from
	// n1's snapshots. n1 vanishes from the network (no FIN, unlike a
	// killed process whose kernel still closes its sockets): after the
	// takeover n2 tickles the connection, and the client's blocked read
	// ends with a reset at once instead of hanging until a TCP timeout
	// (an idle client sends nothing that n2 could reset).
	idle, err := netns.Dial(lab.Client("c1").NS, "tcp", lab.VIP+":2049")
	if err != nil {
		t.Fatalf("connect to the VIP's NFS port: %v", err)
	}
	defer idle.Close()
	known := p.status("n2").PeerClients
	p.waitNode("n2", "n2 knows the new client connection", 10*time.Second, func(s2 api.ClusterStatus) bool { return s2.PeerClients > known })
	readErr := make(chan error, 1)
	go func() {
		_, err := idle.Read(make([]byte, 1))
		readErr <- err
	}()
	cut := time.Now()
	lab.Partition(t, "n1")
	p.waitFor("partitioned master releases, standby serves", 20*time.Second, func(s1, s2 api.ClusterStatus) bool {
		return !s1.Serving && s2.Serving && s2.Epoch > before
	})
	reset := time.NewTimer(5 * time.Second)
	select {
	case err := <-readErr:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("the idle client connection ended with %v, want a reset (the tickle)", err)
		}
		t.Logf("idle client connection reset %v after the partition", time.Since(cut))
	case <-reset.C:
		t.Fatal("the idle client connection is still blocked 5 s after the takeover: no tickle")
	}
	p.servedBy("n2", "thawed", "written to n2 while n1 was frozen")
	lab.Heal(t, "n1")
	p.waitFor("one master after healing", 20*time.Second, func(s1, s2 api.ClusterStatus) bool {
		return s1.Serving != s2.Serving && s1.PeerAlive && s2.PeerAlive
	})
	if s1, s2 := p.status("n1"), p.status("n2"); s1.Serving == s2.Serving || (s1.Serving && s1.Epoch < s2.Epoch) || (s2.Serving && s2.Epoch < s1.Epoch) {
		t.Fatalf("after healing: n1 %+v\nn2 %+v", s1, s2)
	}

	// Leaving makes a node stand-alone again.
	if err := p.api["n2"].LeaveCluster(p.ctx()); err != nil {
		t.Fatalf("leave: %v", err)
	}
	p.waitFor("n2 stand-alone", 20*time.Second, func(_, s2 api.ClusterStatus) bool {
		return !s2.Configured && s2.Protection == api.ProtectionStandalone
	})
}

// continued checks that n1's log continues the one n2 handed over with,
// and that n2 follows it without a resync (resyncs: n2's count before).
func continued(t *testing.T, p *pair, resyncs uint64) {
	t.Helper()
	if r := p.status("n1").Replication; !r.Continued {
		t.Fatalf("n1's log after the failback does not continue n2's: %+v", r)
	}
	if s := p.status("n2"); s.Replication.Resyncs != resyncs || !s.Synced {
		t.Fatalf("n2 after the failback: resyncs %d (before %d), synced %v", s.Replication.Resyncs, resyncs, s.Synced)
	}
}
