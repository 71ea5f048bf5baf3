//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"ftnas/kernel/netns"
)

func TestNeighbourMAC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2)")
	}
	ns := fmt.Sprintf("ftfbn%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", ns, "link", "add", "pub", "type", "veth", "peer", "name", "peer")
	ip("-n", ns, "link", "set", "pub", "up")
	ip("-n", ns, "addr", "add", "192.0.2.51/24", "dev", "pub")
	ip("-n", ns, "neigh", "replace", "192.0.2.100", "lladdr", "02:00:5e:00:01:02", "dev", "pub", "nud", "reachable")

	var mac string
	var missing error
	err := netns.Do(ns, func() error {
		var err error
		mac, err = neighbourMAC("192.0.2.100")
		_, missing = neighbourMAC("192.0.2.7")
		return err
	})
	if err != nil || mac != "02:00:5e:00:01:02" {
		t.Errorf("neighbourMAC = %q, %v; want 02:00:5e:00:01:02", mac, err)
	}
	if missing == nil || !strings.Contains(missing.Error(), "192.0.2.7") {
		t.Errorf("no entry: err %v, want one naming the address", missing)
	}
}
