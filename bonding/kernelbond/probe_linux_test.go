package kernelbond

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"ftnas/bonding"
)

// TestLiveProbes sends the datapath's probes through NICs that are not in
// a bond (being checked, or forced out), which needs no bonding driver:
// m0's veth peer has the target address, m1's peer has none. The target's
// kernel answers m0's RFC 5227 probe, m1 hears nothing, and the target
// learns no address from the probes.
func TestLiveProbes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	ns := fmt.Sprintf("ftkprobe-%d", os.Getpid())
	target, dead := ns+"-t", ns+"-d"
	ip := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for _, n := range []string{ns, target, dead} {
		ip("netns", "add", n)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
	}
	ip("-n", ns, "link", "add", "m0", "type", "veth", "peer", "name", "p0", "netns", target)
	ip("-n", ns, "link", "add", "m1", "type", "veth", "peer", "name", "p1", "netns", dead)
	for _, l := range [][2]string{{ns, "m0"}, {ns, "m1"}, {target, "p0"}, {dead, "p1"}} {
		ip("-n", l[0], "link", "set", l[1], "up")
	}
	ip("-n", ns, "addr", "add", "10.77.0.1/24", "dev", "m0")
	ip("-n", target, "addr", "add", "10.77.0.2/24", "dev", "p0")

	dp, err := New(Options{Namespace: "/run/netns/" + ns})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	bondMAC := [6]byte{0x02, 0, 0, 0, 0, 0x01}
	for _, m := range []string{"m0", "m1"} {
		if err := dp.Apply(bonding.Prepare{NIC: m}); err != nil {
			t.Fatal(err)
		}
	}
	if err := dp.Apply(bonding.SendProbe{NIC: "m2", Target: netip.MustParseAddr("10.77.0.2"), SrcMAC: bondMAC[:], SrcIP: netip.MustParseAddr("10.77.0.1")}); err == nil {
		t.Error("probe through an unprepared NIC: no error")
	}
	// The agent probes every interval; a reply can be lost to the
	// kernel's own neighbour resolution racing the first one.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	var got []string
	for len(got) == 0 {
		for _, m := range []string{"m0", "m1"} {
			if err := dp.Apply(bonding.SendProbe{NIC: m, Target: netip.MustParseAddr("10.77.0.2"), SrcMAC: bondMAC[:], SrcIP: netip.MustParseAddr("10.77.0.1")}); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("no answer to m0's probes within 5s")
		}
		got = dp.ProbeAnswers()
	}
	if !slices.Equal(got, []string{"m0"}) {
		t.Fatalf("answered through %v, want [m0]", got)
	}
	if again := dp.ProbeAnswers(); len(again) != 0 {
		t.Errorf("answers reported twice: %v", again)
	}
	// Sender 0.0.0.0: the target learnt neither the bond's address nor m0's.
	if neigh := ip("-n", target, "neigh", "show", "dev", "p0"); strings.Contains(neigh, "10.77.0.1") {
		t.Errorf("the target learnt a neighbour from the probes: %s", neigh)
	}
	if err := dp.Apply(bonding.Release{NIC: "m1", MTU: 1500}); err != nil {
		t.Fatal(err)
	}
	if err := dp.Apply(bonding.SendProbe{NIC: "m1", Target: netip.MustParseAddr("10.77.0.2"), SrcMAC: bondMAC[:], SrcIP: netip.MustParseAddr("10.77.0.1")}); err == nil {
		t.Error("probe through a released NIC: no error")
	}
}
