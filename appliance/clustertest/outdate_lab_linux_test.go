package clustertest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ftnas/appliance/api"
	"ftnas/kernel/netns/labtest"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	nfsrpc "github.com/willscott/go-nfs-client/nfs/rpc"
)

// TestPairOutdatedStandby: the standby stays alive (heartbeats on the
// public network) while its journal is cut off (the dedicated link, which
// carries the journal, is cut). A commit on a sync share does not go on
// without the standby while the standby still counts itself a copy: the
// master first outdates it, and once the standby has acknowledged that,
// the commit is acknowledged alone (the pair degraded). When the master
// then dies, the outdated standby does not take over by itself: it would
// serve without that commit. The operator's takeover still serves.
func TestPairOutdatedStandby(t *testing.T) {
	lab := labtest.Up(t, labtest.Options{Nodes: 2, Clients: 1, FS: "btrfs"})
	p := newPair(t, lab)
	n2 := lab.Node("n2")
	p.form()
	if _, err := p.api["n1"].AddShare(p.ctx(), api.AddShareRequest{Name: "sync", Path: "sync", NFS: true, SyncReplication: true}); err != nil {
		t.Fatalf("n1: add sync share: %v", err)
	}
	p.waitNode("n2", "the sync share configured on n2, n2 synced", 20*time.Second, func(s api.ClusterStatus) bool {
		sh, err := p.api["n2"].ListShares(p.ctx())
		return err == nil && s.Synced && slices.ContainsFunc(sh, func(s api.Share) bool { return s.Name == "sync" && s.SyncReplication })
	})
	// The commits below wait for the outdating (tens of seconds), longer
	// than go-nfs-client's 5 s RPC timeout. Its receive loop hands a reply
	// to the waiting call over an unbuffered channel and blocks for good
	// when the call timed out just then (the retransmissions' replies make
	// that likely), so the client would hang with replies unread. Wait as
	// a kernel client on a hard mount does instead.
	before := nfsrpc.DefaultReadTimeout
	nfsrpc.DefaultReadTimeout = 3 * time.Minute
	t.Cleanup(func() { nfsrpc.DefaultReadTimeout = before })
	stg := p.nfsMount("/sync")

	lab.Cut(t, "n1", "dedicated")
	// Commits fail (the client is asked to retry) until the journal
	// session has ended, the new master's grace for a reconnecting
	// standby has passed and the standby has acknowledged that it is
	// outdated; then they go through.
	const name = "alone"
	want := strings.Repeat("acknowledged without the standby\n", 100)
	var err error
	deadline := time.Now().Add(90 * time.Second)
	tries := 0
	for time.Now().Before(deadline) {
		tries++
		if err = commitFile(stg, name, want); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("sync commit with the standby's journal cut: still failing after %d tries: %v\n n1: %+v", tries, err, p.status("n1"))
	}
	s1, s2 := p.status("n1"), p.status("n2")
	if !s1.Outdating || !s1.PeerOutdated || s2.Synced || !s2.PeerAlive || s1.Protection != api.ProtectionDegraded {
		t.Fatalf("after a commit without the standby: n1 outdating %v, peer outdated %v, protection %s; n2 synced %v, peer alive %v",
			s1.Outdating, s1.PeerOutdated, s1.Protection, s2.Synced, s2.PeerAlive)
	}
	if b, err := os.ReadFile(filepath.Join(n2.Volume, "sync", name)); err == nil && string(b) == want {
		t.Fatal("n2 holds the file although its journal is cut: the test did not cut what it meant to")
	}
	t.Logf("committed alone after %d tries", tries)

	// The master dies: the outdated standby must not serve by itself.
	lab.Nasd(t, "kill", "n1")
	p.waitNode("n2", "n2 sees its peer dead", 20*time.Second, func(s api.ClusterStatus) bool { return !s.PeerAlive })
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		if s := p.status("n2"); s.Serving {
			t.Fatalf("the outdated standby took over by itself: %+v", s)
		}
		tm := time.NewTimer(100 * time.Millisecond)
		<-tm.C
	}
	if err := p.api["n2"].ClusterAction(p.ctx(), "takeover"); err != nil {
		t.Fatalf("takeover: %v", err)
	}
	p.waitNode("n2", "n2 serves after the operator's takeover", 20*time.Second, func(s api.ClusterStatus) bool { return s.Serving })
}

// commitFile writes want to name on the share and commits it.
func commitFile(stg *nfsc.Target, name, want string) error {
	f, err := stg.OpenFile(name, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if _, err := f.Write([]byte(want)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("COMMIT %s: %w", name, err)
	}
	return nil
}
