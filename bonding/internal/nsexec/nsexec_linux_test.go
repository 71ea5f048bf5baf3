package nsexec

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/vishvananda/netns"
)

func TestDo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	name := fmt.Sprintf("ftnsexec-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	mine, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	var inside netns.NsHandle
	if err := Do(ns, func() error {
		var err error
		inside, err = netns.Get()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer inside.Close()
	if !inside.Equal(ns) {
		t.Fatalf("fn ran in %v, want %v", inside, ns)
	}
	after, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if !after.Equal(mine) {
		t.Fatal("the caller's thread changed namespace")
	}
	if err := Do(netns.None(), func() error { return nil }); err == nil {
		t.Fatal("Do with a closed handle succeeded")
	}
}
