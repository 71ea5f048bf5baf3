package clustertest

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"ftnas/appliance"
	"ftnas/appliance/api"
	"ftnas/kernel/netns/labtest"
)

// hasVIP reports whether node n's public interface carries vip.
func hasVIP(t *testing.T, n labtest.Node, vip string) bool {
	t.Helper()
	out, err := exec.Command("ip", "-n", n.NS, "-o", "-4", "addr", "show", "dev", n.PublicIf).CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr show in %s: %v: %s", n.NS, err, out)
	}
	return strings.Contains(string(out), " "+vip+"/")
}

// dropHeartbeats drops the pair's heartbeat datagrams to and from peer on
// n's public interface (a firewall rule gone wrong, say): the public
// network itself, ARP included, still works.
func dropHeartbeats(t *testing.T, n labtest.Node, peer string) {
	t.Helper()
	rules := fmt.Sprintf(`table inet fthbcut {
	chain in { type filter hook input priority -10; policy accept; ip saddr %[1]s udp dport %[2]d drop; }
	chain out { type filter hook output priority -10; policy accept; ip daddr %[1]s udp dport %[2]d drop; }
}
`, peer, appliance.DefaultHeartbeatPort)
	cmd := exec.Command("ip", "netns", "exec", n.NS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("drop heartbeats on %s: %v: %s", n.Name, err, out)
	}
}

// TestPairHeartbeatsLostMasterServes: both heartbeat paths fail (the
// dedicated link cut, heartbeats dropped on the public network) while
// both nodes reach the witness and the public network works. The master
// keeps serving; the standby, asking who has the VIP before it promotes,
// hears the master and stays standby: never two servers. It also stops
// counting itself a copy: the master, hearing no standby, acknowledges
// sync writes alone. So when the master then really dies, the standby
// does not take over by itself (it would serve without those writes); the
// operator's takeover serves (its fence silenced the dead master's VIP).
func TestPairHeartbeatsLostMasterServes(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft (scripts/deps installs nftables)")
	}
	lab := labtest.Up(t, labtest.Options{Nodes: 2, Clients: 1, FS: "btrfs"})
	p := newPair(t, lab)
	n1, n2 := lab.Node("n1"), lab.Node("n2")
	p.form()
	epoch := p.status("n1").Epoch

	lab.Cut(t, "n1", "dedicated")
	dropHeartbeats(t, n1, n2.PublicIP)
	p.waitFor("both nodes lose each other", 20*time.Second, func(s1, s2 api.ClusterStatus) bool {
		return !s1.PeerAlive && !s2.PeerAlive
	})
	// Well past the standby's wait (dead interval + lease) and several
	// witness probes: n1 serves throughout, n2 never.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		s1, s2 := p.status("n1"), p.status("n2")
		v1, v2 := hasVIP(t, n1, lab.VIP), hasVIP(t, n2, lab.VIP)
		if !s1.Serving || !v1 || s2.Serving || v2 || s2.Epoch != epoch {
			t.Fatalf("heartbeats lost, master alive: n1 serving %v vip %v; n2 serving %v vip %v epoch %d (was %d)",
				s1.Serving, v1, s2.Serving, v2, s2.Epoch, epoch)
		}
		tm := time.NewTimer(50 * time.Millisecond)
		<-tm.C
	}

	if s2 := p.status("n2"); s2.Synced {
		t.Fatalf("n2 still counts itself a copy of a master it cannot hear but that holds the VIP: %+v", s2)
	}

	// Now the master really dies, heartbeats still cut: n2 does not take
	// over by itself; the operator's takeover does.
	lab.Nasd(t, "kill", "n1")
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		if s2 := p.status("n2"); s2.Serving {
			t.Fatalf("n2, no copy of the master's data, took over by itself: %+v", s2)
		}
		tm := time.NewTimer(100 * time.Millisecond)
		<-tm.C
	}
	if err := p.api["n2"].ClusterAction(p.ctx(), "takeover"); err != nil {
		t.Fatalf("takeover: %v", err)
	}
	p.waitNode("n2", "n2 takes over on the operator's word", 20*time.Second, func(s2 api.ClusterStatus) bool {
		return serving(s2, "primaryslave") && s2.Epoch > epoch
	})
	if !hasVIP(t, n2, lab.VIP) {
		t.Fatal("n2 serves without the VIP")
	}
}
