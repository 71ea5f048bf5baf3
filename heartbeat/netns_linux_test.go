//go:build linux

package heartbeat

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

func requireNetAdmin(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
}

func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newTestNetns creates a network namespace holding a veth pair hbv0/hbv1,
// both up, and removes it when the test ends.
func newTestNetns(t *testing.T) string {
	t.Helper()
	requireNetAdmin(t)
	name := fmt.Sprintf("ftnashb%d", rand.IntN(1_000_000_000))
	runCmd(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", name, err, out)
		}
	})
	runCmd(t, "ip", "-n", name, "link", "set", "lo", "up")
	runCmd(t, "ip", "-n", name, "link", "add", "hbv0", "type", "veth", "peer", "name", "hbv1")
	runCmd(t, "ip", "-n", name, "link", "set", "hbv0", "up")
	runCmd(t, "ip", "-n", name, "link", "set", "hbv1", "up")
	return name
}

// inNetns runs fn on a fresh goroutine whose OS thread joined the network
// namespace ns, so the netlink, packet and UDP sockets fn opens live
// there. The thread stays locked when the goroutine ends, so the runtime
// discards it and no other goroutine ever runs in the namespace.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", ns, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
