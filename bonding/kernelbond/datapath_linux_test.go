package kernelbond

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"ftnas/bonding"
)

// TestLiveBond runs the kernel datapath against the real bonding driver in
// a namespace of its own: two veth members, failover, removal.
func TestLiveBond(t *testing.T) {
	if _, err := os.Stat("/sys/class/net/bonding_masters"); err != nil {
		t.Skip("needs the kernel bonding driver (/sys/class/net/bonding_masters absent); runs in the qemu appliance lab")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces")
	}
	ns := fmt.Sprintf("ftkbond-%d", os.Getpid())
	peer := ns + "-p"
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, n := range []string{ns, peer} {
		ip("netns", "add", n)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
	}
	for _, m := range []string{"m0", "m1"} {
		ip("-n", ns, "link", "add", m, "type", "veth", "peer", "name", "p"+m, "netns", peer)
		ip("-n", ns, "link", "set", m, "up")
		ip("-n", peer, "link", "set", "p"+m, "up")
	}
	ip("-n", ns, "addr", "add", "10.78.0.1/24", "dev", "m0")
	dp, err := New(Options{Namespace: "/run/netns/" + ns})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	c, err := bonding.New(bonding.Config{Mode: bonding.Failover})
	if err != nil {
		t.Fatal(err)
	}
	a := bonding.NewAgent(c, dp, bonding.AgentOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go a.Run(ctx)
	for _, m := range []string{"m0", "m1"} {
		if err := a.Add(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	bond, err := dp.nl.LinkByName("bond0")
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := bond.(*netlink.Bond); !ok || b.Mode != netlink.BOND_MODE_ACTIVE_BACKUP || b.ActiveSlave <= 0 {
		t.Fatalf("bond0 = %+v", bond)
	}
	for _, m := range []string{"m1", "m0"} {
		if err := a.Remove(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dp.nl.LinkByName("bond0"); err == nil {
		t.Fatal("bond0 still there")
	}
	l, _ := dp.nl.LinkByName("m0")
	as, _ := dp.nl.AddrList(l, netlink.FAMILY_V4)
	if len(as) != 1 || as[0].IPNet.String() != "10.78.0.1/24" {
		t.Fatalf("m0 addresses after dissolving: %v", as)
	}
}
