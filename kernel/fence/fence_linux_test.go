package fence

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ftnas/heartbeat"
	"ftnas/kernel/netns"
)

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}

// pairNS makes namespaces a and b joined by a veth: a has 10.9.0.1 and
// the VIP 10.9.0.100 on "va", b has 10.9.0.2 on "vb".
func pairNS(t *testing.T) (a, b string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes network namespaces and loads a BPF program")
	}
	var r [3]byte
	rand.Read(r[:])
	a, b = "ftfence-"+hex.EncodeToString(r[:])+"-a", "ftfence-"+hex.EncodeToString(r[:])+"-b"
	ip(t, "netns", "add", a)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", a).Run() })
	ip(t, "netns", "add", b)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", b).Run() })
	ip(t, "-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b)
	ip(t, "-n", a, "addr", "add", "10.9.0.1/24", "dev", "va")
	ip(t, "-n", a, "addr", "add", "10.9.0.100/24", "dev", "va")
	ip(t, "-n", b, "addr", "add", "10.9.0.2/24", "dev", "vb")
	for _, ns := range []string{a, b} {
		ip(t, "-n", ns, "link", "set", "lo", "up")
	}
	ip(t, "-n", a, "link", "set", "va", "up")
	ip(t, "-n", b, "link", "set", "vb", "up")
	return a, b
}

// reach reports whether a TCP connection from ns to addr completes
// within 500 ms.
func reach(ns, addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	c, err := netns.DialContext(ctx, ns, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// acceptIn accepts and closes TCP connections to addr in ns until the
// test ends.
func acceptIn(t *testing.T, ns, addr string) {
	t.Helper()
	ln, err := netns.Listen(ns, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

func TestFenceDropsTheVIPAfterTheLease(t *testing.T) {
	a, b := pairNS(t)
	acceptIn(t, a, "0.0.0.0:7555")
	var f *Fence
	if err := netns.Do(a, func() error {
		var err error
		f, err = Attach("va", netip.MustParseAddr("10.9.0.100"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const vip, own = "10.9.0.100:7555", "10.9.0.1:7555"

	// A new fence starts expired: nothing reaches the VIP.
	if reach(b, vip) {
		t.Fatal("VIP reachable before the first lease")
	}
	if !reach(b, own) {
		t.Fatal("the node's own address is fenced too")
	}
	if err := f.Renew(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ip(t, "-n", b, "neigh", "flush", "all")
	if !reach(b, vip) {
		t.Fatal("VIP unreachable under a valid lease")
	}

	// Expired with the client's ARP entry still fresh: IPv4 is dropped.
	if err := f.Expire(); err != nil {
		t.Fatal(err)
	}
	if reach(b, vip) {
		t.Fatal("VIP reachable after the lease expired (ARP cached)")
	}
	// And with no ARP entry: the node no longer answers ARP for the VIP.
	ip(t, "-n", b, "neigh", "flush", "all")
	if reach(b, vip) {
		t.Fatal("VIP reachable after the lease expired (ARP flushed)")
	}
	out, _ := exec.Command("ip", "-n", b, "neigh", "show", "10.9.0.100").CombinedOutput()
	if len(out) > 0 && !strings.Contains(string(out), "FAILED") && !strings.Contains(string(out), "INCOMPLETE") {
		t.Fatalf("client learned the fenced VIP's MAC: %s", out)
	}
	if !reach(b, own) {
		t.Fatal("the node's own address is fenced too")
	}

	// A lease in the past is an expired lease; a renewal lets traffic pass.
	if err := f.Renew(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if reach(b, vip) {
		t.Fatal("VIP reachable under a lease that ended in the past")
	}
	if err := f.Renew(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ip(t, "-n", b, "neigh", "flush", "all")
	if !reach(b, vip) {
		t.Fatal("VIP unreachable after renewal")
	}

	// Closing detaches: the VIP passes whatever the lease says.
	if err := f.Expire(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if !reach(b, vip) {
		t.Fatal("VIP unreachable after Close")
	}
}

func TestAttachErrors(t *testing.T) {
	if _, err := Attach("no-such-if0", netip.MustParseAddr("10.0.0.1")); err == nil {
		t.Fatal("attached to a missing interface")
	}
	if _, err := Attach("lo", netip.MustParseAddr("fd00::1")); err == nil {
		t.Fatal("attached for an IPv6 address")
	}
}

// TestPinnedFenceOutlivesItsProcess: a pinned fence stays attached when
// the process's references go (kill -9), so an expired lease keeps the
// VIP dropped; the next AttachPinned in the same place replaces it, and
// Close detaches both.
func TestPinnedFenceOutlivesItsProcess(t *testing.T) {
	a, b := pairNS(t)
	pins := t.TempDir()
	if err := MountBPFFS(pins); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(pins, unix.MNT_DETACH) })
	if err := MountBPFFS(pins); err != nil { // already one: nothing to do
		t.Fatalf("second MountBPFFS: %v", err)
	}
	dir := filepath.Join(pins, "node1")
	acceptIn(t, a, "0.0.0.0:7556")
	const vip = "10.9.0.100:7556"
	attachIn := func() *Fence {
		t.Helper()
		var f *Fence
		if err := netns.Do(a, func() error {
			var err error
			f, err = AttachPinned("va", netip.MustParseAddr("10.9.0.100"), dir)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return f
	}

	f := attachIn()
	for _, n := range pinNames {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Fatalf("pin %s: %v", n, err)
		}
	}
	if err := f.Renew(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !reach(b, vip) {
		t.Fatal("VIP unreachable under a valid lease")
	}
	// The lease ends and the process goes away without Close.
	if err := f.Expire(); err != nil {
		t.Fatal(err)
	}
	if err := f.closeFDs(); err != nil {
		t.Fatal(err)
	}
	ip(t, "-n", b, "neigh", "flush", "all")
	if reach(b, vip) {
		t.Fatal("VIP reachable after the fencing process died: the pinned fence was detached")
	}

	// A new process takes over: the old fence goes, the new one rules.
	f = attachIn()
	if err := f.Renew(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ip(t, "-n", b, "neigh", "flush", "all")
	if !reach(b, vip) {
		t.Fatal("VIP unreachable under the new fence's lease: the old fence is still attached")
	}
	if err := f.Expire(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range pinNames {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pin %s after Close: %v", n, err)
		}
	}
	ip(t, "-n", b, "neigh", "flush", "all")
	if !reach(b, vip) {
		t.Fatal("VIP unreachable after Close: a fence is still attached")
	}
}

// TestFencedStandbyAsksWhoHasTheVIP: a node whose fence is closed (a
// standby) may still ask who has the VIP and hear the holder's answer;
// only ARP that would make it answer for the VIP, or claim it, is dropped.
func TestFencedStandbyAsksWhoHasTheVIP(t *testing.T) {
	a, b := pairNS(t)
	ip(t, "-n", a, "addr", "del", "10.9.0.100/24", "dev", "va")
	ip(t, "-n", b, "addr", "add", "10.9.0.100/24", "dev", "vb")
	var f *Fence
	if err := netns.Do(a, func() error {
		var err error
		f, err = Attach("va", netip.MustParseAddr("10.9.0.100"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var holder, want net.HardwareAddr
	if err := netns.Do(b, func() error {
		ifc, err := net.InterfaceByName("vb")
		if err == nil {
			want = ifc.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := netns.Do(a, func() error {
		var err error
		holder, err = heartbeat.ProbeVIP(context.Background(), "va", netip.MustParseAddr("10.9.0.100"), 500*time.Millisecond)
		return err
	}); err != nil {
		t.Fatalf("probe through a closed fence: %v", err)
	}
	if !bytes.Equal(holder, want) {
		t.Fatalf("probe through a closed fence found %v, want the holder %v", holder, want)
	}
}
