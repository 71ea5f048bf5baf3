package tickle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"ftnas/kernel/netns"
)

func needRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and raw sockets")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
}

func run(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
}

func newNS(t *testing.T, tag string) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "fttk-" + tag + "-" + hex.EncodeToString(b)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

func TestConnectionsLoopback(t *testing.T) {
	needRoot(t)
	ns := newNS(t, "lo")
	ln, err := netns.Listen(ns, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := netns.Dial(ns, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A dual-stack listener: its IPv4 connection shows in tcp6, mapped.
	ln6, err := netns.Listen(ns, "tcp", "[::]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln6.Close()
	port6 := uint16(ln6.Addr().(*net.TCPAddr).Port)
	c6, err := netns.Dial(ns, "tcp4", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port6).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c6.Close()
	s6, err := ln6.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s6.Close()

	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	var conns []Conn
	if err := netns.Do(ns, func() (err error) {
		conns, err = Connections(netip.MustParseAddr("127.0.0.1"), []uint16{port, port6})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := map[Conn]bool{
		{VIP: netip.MustParseAddrPort(s.LocalAddr().String()), Client: netip.MustParseAddrPort(c.LocalAddr().String())}:                 true,
		{VIP: unmap(netip.MustParseAddrPort(s6.LocalAddr().String())), Client: unmap(netip.MustParseAddrPort(c6.LocalAddr().String()))}: true,
	}
	if len(conns) != len(want) {
		t.Fatalf("conns = %v, want %v", conns, want)
	}
	for _, got := range conns {
		if !want[got] {
			t.Fatalf("conns = %v, want %v", conns, want)
		}
	}
	// The caller's own namespace does not see them.
	mine, err := Connections(netip.MustParseAddr("127.0.0.1"), []uint16{port})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mine {
		if want[m] {
			t.Fatalf("namespace connection %v visible outside it", m)
		}
	}
}

// TestTakeoverResetsClient: a client in its own namespace talks to the VIP
// on node1; node1 dies silently (link down, no FIN/RST), the VIP moves to
// node2, which never had the connection, and Tickle from node2 must make
// the client's blocked read fail with ECONNRESET. node2's kernel RSTs are
// dropped by nftables so only Tickle's own RST (window 1234) can do it. A
// second, untickled connection must stay blocked: the control.
func TestTakeoverResetsClient(t *testing.T) {
	needRoot(t, "nft")
	cl, n1, n2 := newNS(t, "cl"), newNS(t, "n1"), newNS(t, "n2")
	const vipS = "10.77.0.100"
	run(t, "ip", "-n", cl, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", cl, "addr", "add", "10.77.0.1/24", "dev", "br0")
	run(t, "ip", "-n", cl, "link", "set", "br0", "up")
	for i, n := range []string{n1, n2} {
		port := []string{"p1", "p2"}[i]
		run(t, "ip", "-n", cl, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", n)
		run(t, "ip", "-n", cl, "link", "set", port, "master", "br0", "up")
		run(t, "ip", "-n", n, "addr", "add", []string{"10.77.0.2/24", "10.77.0.3/24"}[i], "dev", "eth0")
		run(t, "ip", "-n", n, "link", "set", "eth0", "up")
	}
	run(t, "ip", "-n", n1, "addr", "add", vipS+"/24", "dev", "eth0")
	// node2's kernel would answer the client's challenge ACK with an RST
	// of its own; drop those so the test proves Tickle's RST works.
	run(t, "ip", "netns", "exec", n2, "nft", "add table ip t; add chain ip t out { type filter hook output priority 0; } ; add rule ip t out tcp flags rst tcp window != 1234 counter drop")

	ln, err := netns.Listen(n1, "tcp", vipS+":445")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dial := func() (client, server net.Conn) {
		c, err := netns.Dial(cl, "tcp", vipS+":445")
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		// Move the sequence numbers along both ways.
		if _, err := c.Write([]byte("negotiate")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, make([]byte, 9)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte("ok")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
			t.Fatal(err)
		}
		return c, s
	}
	c1, s1 := dial()
	defer c1.Close()
	defer s1.Close()
	c2, s2 := dial()
	defer c2.Close()
	defer s2.Close()

	// The master's periodic snapshot.
	var conns []Conn
	if err := netns.Do(n1, func() (err error) {
		conns, err = Connections(netip.MustParseAddr(vipS), []uint16{445, 2049})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := Conn{VIP: netip.MustParseAddrPort(vipS + ":445"), Client: netip.MustParseAddrPort(c1.LocalAddr().String())}
	var found bool
	for _, c := range conns {
		found = found || c == want
	}
	if len(conns) != 2 || !found {
		t.Fatalf("connections on node1 = %v, want 2 including %v", conns, want)
	}

	readErr := func(c net.Conn) <-chan error {
		ch := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 1))
			ch <- err
		}()
		return ch
	}
	r1, r2 := readErr(c1), readErr(c2)

	// Takeover: node1 vanishes without a word, node2 takes the VIP. The
	// client forgets node1's MAC (what node2's gratuitous ARP would do).
	run(t, "ip", "-n", n1, "link", "set", "eth0", "down")
	run(t, "ip", "-n", n2, "addr", "add", vipS+"/24", "dev", "eth0")
	run(t, "ip", "-n", cl, "neigh", "flush", "dev", "br0")

	select {
	case err := <-r1:
		t.Fatalf("client read returned before the tickle: %v", err)
	default:
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rep Report
	if err := netns.Do(n2, func() (err error) {
		rep, err = Tickle(ctx, []Conn{want}, 20)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("tickle took %v: %+v", time.Since(start), rep)
	if len(rep.Reset) != 1 || rep.Reset[0] != want || len(rep.Unanswered) != 0 {
		t.Fatalf("report %+v, want %v reset", rep, want)
	}

	timer := time.NewTimer(2 * time.Second)
	defer timer.Stop()
	select {
	case err := <-r1:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("client read: %v, want ECONNRESET", err)
		}
	case <-timer.C:
		t.Fatal("client read still blocked 2s after the tickle")
	}
	select {
	case err := <-r2:
		t.Fatalf("untickled control connection ended too: %v", err)
	default:
	}
	// node2's kernel did try to reset (the client answered it) and the
	// firewall stopped it, so the RST that worked was Tickle's.
	out, err := exec.Command("ip", "netns", "exec", n2, "nft", "list", "chain", "ip", "t", "out").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v: %s", err, out)
	}
	if strings.Contains(string(out), "packets 0 ") {
		t.Fatalf("node2's kernel sent no RST to drop; the test did not isolate Tickle's RST:\n%s", out)
	}
}

func TestTickleNothingAndIPv6(t *testing.T) {
	rep, err := Tickle(context.Background(), nil, 5)
	if err != nil || len(rep.Reset)+len(rep.Unanswered) != 0 {
		t.Fatalf("empty: %+v %v", rep, err)
	}
	_, err = Tickle(context.Background(), []Conn{{
		VIP:    netip.MustParseAddrPort("[2001:db8::1]:445"),
		Client: netip.MustParseAddrPort("[2001:db8::2]:5000"),
	}}, 5)
	if err == nil || !strings.Contains(err.Error(), "IPv4") {
		t.Fatalf("IPv6: %v", err)
	}
}

// An unreachable client is reported, not an error, and count bounds the time.
func TestTickleUnanswered(t *testing.T) {
	needRoot(t)
	ns := newNS(t, "un")
	// A veth whose peer has no address: nobody answers ARP for the client.
	run(t, "ip", "-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	run(t, "ip", "-n", ns, "addr", "add", "10.78.0.100/24", "dev", "v0")
	run(t, "ip", "-n", ns, "link", "set", "v0", "up")
	run(t, "ip", "-n", ns, "link", "set", "v1", "up")
	c := Conn{VIP: netip.MustParseAddrPort("10.78.0.100:2049"), Client: netip.MustParseAddrPort("10.78.0.5:700")}
	var rep Report
	if err := netns.Do(ns, func() (err error) {
		rep, err = Tickle(context.Background(), []Conn{c}, 2)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(rep.Reset) != 0 || len(rep.Unanswered) != 1 || rep.Unanswered[0] != c {
		t.Fatalf("report %+v", rep)
	}
}
