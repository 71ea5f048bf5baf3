//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestWatchSeesTheVIP runs the watcher on a namespace of its own: the VIP
// present at the start, removed, added again; other addresses ignored.
func TestWatchSeesTheVIP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2)")
	}
	ns := fmt.Sprintf("ftfbw%d", os.Getpid())
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
	ip("-n", ns, "addr", "add", "192.0.2.100/24", "dev", "pub")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- watch(ctx, "192.0.2.100", []member{{"n1", ns}}, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	next := func() string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("watch ended early: %v", lines.Err())
		}
		return lines.Text()
	}
	if l := next(); l != "# ready" {
		t.Fatalf("first line %q, want # ready", l)
	}
	if l := next(); !strings.HasSuffix(l, " n1 add") {
		t.Fatalf("the VIP present at the start: %q, want UNIX_NS n1 add", l)
	}
	before := time.Now().UnixNano()
	ip("-n", ns, "addr", "add", "192.0.2.7/24", "dev", "pub") // not the VIP
	ip("-n", ns, "addr", "del", "192.0.2.100/24", "dev", "pub")
	ip("-n", ns, "addr", "add", "192.0.2.100/24", "dev", "pub")
	for _, want := range []string{"del", "add"} {
		l := next()
		evs, err := parseEvents(strings.NewReader(l))
		if err != nil || len(evs) != 1 || evs[0].Member != "n1" || evs[0].Add != (want == "add") || evs[0].At < before {
			t.Fatalf("line %q (%v): want a %s of n1 stamped after %d", l, err, want, before)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("watch: %v", err)
	}
}
