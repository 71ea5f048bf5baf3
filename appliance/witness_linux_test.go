package appliance

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"ftnas/kernel/netns"
)

// TestPingWitnessResends: the witness's first echo is dropped (nftables,
// every other echo request, in a namespace of the test's own); the probe
// still succeeds on its resend. An address that never answers fails by
// the deadline.
func TestPingWitnessResends(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and nftables")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed")
	}
	ns := fmt.Sprintf("ftwit%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "-n", ns, "link", "set", "lo", "up")
	run("ip", "-n", ns, "addr", "add", "192.0.2.1/24", "dev", "lo")
	run("ip", "netns", "exec", ns, "nft", "add table inet t; add chain inet t in { type filter hook input priority 0; }; "+
		"add rule inet t in icmp type echo-request ip daddr 127.0.0.1 numgen inc mod 2 == 0 counter drop; "+
		"add rule inet t in ip daddr 192.0.2.1 drop")

	probe := func(addr string) (ok bool, took time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := netns.Do(ns, func() error {
			ok = pingWitness(netip.MustParseAddr(addr))(ctx)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return ok, time.Since(start)
	}
	if ok, _ := probe("127.0.0.1"); !ok {
		t.Fatal("witness probe failed although only its first echo was dropped")
	}
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "t", "in").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`counter packets 1 bytes \d+ drop`).Match(out) {
		t.Fatalf("the first echo was not dropped by the test's rule:\n%s", out)
	}
	if ok, took := probe("192.0.2.1"); ok || took < 250*time.Millisecond {
		t.Fatalf("probe of a silent witness: ok %v after %v, want false at the deadline", ok, took)
	}
}
