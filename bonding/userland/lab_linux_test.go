package userland

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"ftnas/bonding"
	"ftnas/bonding/internal/nsexec"
)

// The lab: network namespaces this test creates, joined back to back by
// veth pairs, each end running the userland transceiver.

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, TAP devices, AF_PACKET sockets")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("needs /dev/net/tun: ", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip: ", err)
	}
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// labNS is one network namespace of the lab.
type labNS struct {
	name, path string
	h          netns.NsHandle
	nl         *netlink.Handle
}

func newNS(t *testing.T, tag string) *labNS {
	t.Helper()
	name := fmt.Sprintf("ftbond-%d-%s", os.Getpid(), tag)
	ipCmd(t, "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ipCmd(t, "-n", name, "link", "set", "lo", "up")
	n := &labNS{name: name, path: "/run/netns/" + name}
	var err error
	if n.h, err = netns.GetFromPath(n.path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.h.Close() })
	if n.nl, err = netlink.NewHandleAt(n.h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.nl.Close)
	return n
}

// link joins a and b by a veth pair named an (in a) and bn (in b).
func vethPair(t *testing.T, a *labNS, an string, b *labNS, bn string) {
	t.Helper()
	ipCmd(t, "-n", a.name, "link", "add", an, "type", "veth", "peer", "name", bn, "netns", b.name)
	ipCmd(t, "-n", a.name, "link", "set", an, "up")
	ipCmd(t, "-n", b.name, "link", "set", bn, "up")
}

func (n *labNS) addrs(t *testing.T, link string) []string {
	t.Helper()
	l, err := n.nl.LinkByName(link)
	if err != nil {
		return []string{"<" + err.Error() + ">"}
	}
	as, err := n.nl.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.IPNet.String())
	}
	return out
}

// side is one bonded endpoint: datapath, controller and agent.
type side struct {
	ns    *labNS
	dp    *Datapath
	agent *bonding.Agent
	mu    sync.Mutex
	seen  []bonding.Changed
	kick  chan struct{}
}

func startSide(t *testing.T, ns *labNS, peer netip.Addr, cfg bonding.Config) *side {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("ns", ns.name)
	dp, err := New(Options{Namespace: ns.path, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ProbeTarget = peer
	c, err := bonding.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &side{ns: ns, dp: dp, kick: make(chan struct{}, 1)}
	s.agent = bonding.NewAgent(c, dp, bonding.AgentOptions{Logger: log, OnChange: func(ch bonding.Changed) {
		s.mu.Lock()
		s.seen = append(s.seen, ch)
		s.mu.Unlock()
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.agent.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; dp.Close() })
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// waitState waits until nic has entered state since the mark'th change.
func (s *side) waitState(t *testing.T, mark int, nic string, state bonding.State, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(within)
	for {
		s.mu.Lock()
		for _, c := range s.seen[mark:] {
			if c.NIC == nic && c.To == state {
				s.mu.Unlock()
				return time.Since(start)
			}
		}
		s.mu.Unlock()
		select {
		case <-s.kick:
		case <-deadline:
			st, _ := s.agent.Status(context.Background())
			t.Fatalf("%s: %s did not become %v within %v; status %+v", s.ns.name, nic, state, within, st.NICs)
		}
	}
}

func (s *side) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func (s *side) add(t *testing.T, nic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.agent.Add(ctx, nic); err != nil {
		t.Fatalf("%s: add %s: %v", s.ns.name, nic, err)
	}
}

// ping sends ICMP echo requests from ns to dst until one is answered.
func ping(ns *labNS, dst netip.Addr, within time.Duration) error {
	var c net.PacketConn
	if err := nsexec.Do(ns.h, func() error {
		var err error
		c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(within)
	buf := make([]byte, 1500)
	for seq := 1; time.Now().Before(deadline); seq++ {
		msg := []byte{8, 0, 0, 0, 0xf7, 0xb0, byte(seq >> 8), byte(seq), 'f', 't', 'n', 'a', 's'}
		cs := inetChecksum(msg)
		msg[2], msg[3] = byte(cs>>8), byte(cs)
		if _, err := c.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return fmt.Errorf("ping %v: %w", dst, err)
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				break // timed out: send the next one
			}
			if n >= 8 && buf[0] == 0 && buf[4] == 0xf7 && buf[5] == 0xb0 {
				return nil
			}
		}
	}
	return fmt.Errorf("ping %v: no reply within %v", dst, within)
}

func inetChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// pattern is a deterministic byte stream: byte i is pat(i).
type pattern struct{ off int64 }

func pat(i int64) byte { return byte(i*131 + i>>9) }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = pat(p.off + int64(i))
	}
	p.off += int64(len(b))
	return len(b), nil
}

// tcpServer accepts connections in ns and checks each carries the
// pattern; it reports the bytes verified per connection.
func tcpServer(t *testing.T, ns *labNS, addr netip.Addr) (string, <-chan error) {
	t.Helper()
	var ln net.Listener
	if err := nsexec.Do(ns.h, func() error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(addr.String(), "0"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	results := make(chan error, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 256<<10)
				var off int64
				for {
					n, err := c.Read(buf)
					for i := range n {
						if buf[i] != pat(off+int64(i)) {
							results <- fmt.Errorf("byte %d: got %d want %d", off+int64(i), buf[i], pat(off+int64(i)))
							return
						}
					}
					off += int64(n)
					if err == io.EOF {
						_, err = c.Write([]byte(fmt.Sprint(off)))
						results <- err
						return
					}
					if err != nil {
						results <- err
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), results
}

// transfer sends size bytes of the pattern from ns to the server and waits
// for the server's verdict.
func transfer(ns *labNS, server string, results <-chan error, size int64, within time.Duration) error {
	var c net.Conn
	if err := nsexec.Do(ns.h, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", server, within)
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(within))
	if _, err := io.Copy(c, io.LimitReader(&pattern{}, size)); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	c.(*net.TCPConn).CloseWrite()
	ack, err := io.ReadAll(c)
	if err != nil {
		return fmt.Errorf("read ack: %w", err)
	}
	select {
	case err := <-results:
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
	case <-time.After(within):
		return errors.New("no verdict from the server")
	}
	if string(ack) != fmt.Sprint(size) {
		return fmt.Errorf("server verified %s bytes, sent %d", ack, size)
	}
	return nil
}

func txBytes(s *side) map[string]uint64 {
	out := map[string]uint64{}
	for n, p := range s.dp.Stats().Ports {
		out[n] = p.TxBytes
	}
	return out
}

func TestBackToBack(t *testing.T) {
	needRoot(t)
	A, B := newNS(t, "a"), newNS(t, "b")
	for i := range 3 {
		vethPair(t, A, fmt.Sprintf("a%d", i), B, fmt.Sprintf("b%d", i))
	}
	ipA, ipB := netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("10.77.0.2")
	ipCmd(t, "-n", A.name, "addr", "add", "10.77.0.1/24", "dev", "a0")
	ipCmd(t, "-n", B.name, "addr", "add", "10.77.0.2/24", "dev", "b0")
	cfg := bonding.Config{Interval: 50 * time.Millisecond, Misses: 3, UpDelay: 200 * time.Millisecond}
	sa := startSide(t, A, ipB, cfg)
	sb := startSide(t, B, ipA, cfg)

	// Interleaved adds: each NIC's reachability probe is answered by the
	// other side (its kernel while plain, its transceiver once bonded).
	for i := range 3 {
		sa.add(t, fmt.Sprintf("a%d", i))
		sb.add(t, fmt.Sprintf("b%d", i))
	}
	if got := A.addrs(t, "bond0"); strings.Join(got, ",") != "10.77.0.1/24" {
		t.Fatalf("A bond0 addresses %v", got)
	}
	if got := A.addrs(t, "a0"); len(got) != 0 {
		t.Fatalf("A a0 still has %v", got)
	}
	if l, err := A.nl.LinkByName("a2"); err != nil || l.Attrs().HardwareAddr.String() != mustLink(t, A, "bond0").Attrs().HardwareAddr.String() {
		t.Fatalf("a2 does not carry the bond's MAC: %v %v", l, err)
	}
	// A NIC that does not exist, or is already a member, is refused.
	ctx := context.Background()
	if err := sa.agent.Add(ctx, "nope0"); err == nil || !strings.Contains(err.Error(), "no such interface") {
		t.Fatalf("add nope0: %v", err)
	}
	if err := sa.agent.Add(ctx, "a1"); err == nil || !strings.Contains(err.Error(), "already in the bond") {
		t.Fatalf("add a1 twice: %v", err)
	}

	if err := ping(A, ipB, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	server, results := tcpServer(t, B, ipB)
	before := txBytes(sa)
	if err := transfer(A, server, results, 32<<20, 20*time.Second); err != nil {
		t.Fatalf("transfer over 3 members: %v", err)
	}
	after := txBytes(sa)
	for _, n := range []string{"a0", "a1", "a2"} {
		if after[n]-before[n] < 8<<20 {
			t.Fatalf("round-robin: %s sent %d bytes of the transfer (%v -> %v)", n, after[n]-before[n], before, after)
		}
	}

	// Cut b1: A sees a1's carrier drop; traffic goes on over a0 and a2.
	ma, mb := sa.mark(), sb.mark()
	ipCmd(t, "-n", B.name, "link", "set", "b1", "down")
	took := sa.waitState(t, ma, "a1", bonding.Down, 2*time.Second)
	sb.waitState(t, mb, "b1", bonding.Down, 2*time.Second)
	t.Logf("carrier loss on a1 noticed after %v", took)
	before = txBytes(sa)
	if err := ping(A, ipB, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := transfer(A, server, results, 16<<20, 20*time.Second); err != nil {
		t.Fatalf("transfer with a1 cut: %v", err)
	}
	after = txBytes(sa)
	if after["a1"] != before["a1"] || after["a0"]-before["a0"] < 6<<20 || after["a2"]-before["a2"] < 6<<20 {
		t.Fatalf("with a1 cut: tx %v -> %v", before, after)
	}

	// Restore: a1 rejoins after the hold-down.
	ma, mb = sa.mark(), sb.mark()
	ipCmd(t, "-n", B.name, "link", "set", "b1", "up")
	sa.waitState(t, ma, "a1", bonding.Up, 3*time.Second)
	sb.waitState(t, mb, "b1", bonding.Up, 3*time.Second)
	before = txBytes(sa)
	if err := transfer(A, server, results, 16<<20, 20*time.Second); err != nil {
		t.Fatalf("transfer after restore: %v", err)
	}
	after = txBytes(sa)
	if after["a1"]-before["a1"] < 4<<20 {
		t.Fatalf("a1 back in rotation but sent %d bytes", after["a1"]-before["a1"])
	}

	// A dead path with carrier up: both ends of the a2-b2 pair drop what
	// they send. Only the ARP probes can tell.
	ma, mb = sa.mark(), sb.mark()
	dropA := egressDrop(t, A, "a2")
	dropB := egressDrop(t, B, "b2")
	took = sa.waitState(t, ma, "a2", bonding.Down, 2*time.Second)
	sb.waitState(t, mb, "b2", bonding.Down, 2*time.Second)
	t.Logf("dead path on a2 caught by ARP probes after %v", took)
	if err := transfer(A, server, results, 8<<20, 20*time.Second); err != nil {
		t.Fatalf("transfer with a2 dead: %v", err)
	}
	ma = sa.mark()
	unix.Close(dropA)
	unix.Close(dropB)
	sa.waitState(t, ma, "a2", bonding.Up, 3*time.Second)

	// Failover mode: only the primary carries A's traffic; cutting it moves
	// the traffic to the next member.
	for _, sd := range []*side{sa, sb} {
		if err := sd.agent.SetMode(ctx, bonding.Failover); err != nil {
			t.Fatal(err)
		}
	}
	before = txBytes(sa)
	if err := transfer(A, server, results, 8<<20, 20*time.Second); err != nil {
		t.Fatalf("transfer in failover mode: %v", err)
	}
	after = txBytes(sa)
	if after["a0"]-before["a0"] < 8<<20 || after["a1"]-before["a1"] > 64<<10 || after["a2"]-before["a2"] > 64<<10 {
		t.Fatalf("failover mode: tx %v -> %v (want all on a0)", before, after)
	}
	ma = sa.mark()
	ipCmd(t, "-n", B.name, "link", "set", "b0", "down")
	sa.waitState(t, ma, "a0", bonding.Down, 2*time.Second)
	before = txBytes(sa)
	if err := transfer(A, server, results, 8<<20, 20*time.Second); err != nil {
		t.Fatalf("transfer after failover: %v", err)
	}
	after = txBytes(sa)
	if st, _ := sa.agent.Status(ctx); strings.Join(st.Active, ",") != "a1" || after["a1"]-before["a1"] < 8<<20 {
		t.Fatalf("after cutting the primary: active %v, tx %v -> %v", st.Active, before, after)
	}
	ipCmd(t, "-n", B.name, "link", "set", "b0", "up")

	// Remove every member from A: the address goes back to the last one.
	for _, n := range []string{"a1", "a2", "a0"} {
		if err := sa.agent.Remove(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if got := A.addrs(t, "a0"); strings.Join(got, ",") != "10.77.0.1/24" {
		t.Fatalf("a0 addresses after dissolving: %v", got)
	}
	if _, err := A.nl.LinkByName("bond0"); err == nil {
		t.Fatal("bond0 still exists after removing every member")
	}
	if st, _ := sa.agent.Status(ctx); st.Bonded || len(st.NICs) != 0 {
		t.Fatalf("status after dissolving: %+v", st)
	}
}

func mustLink(t *testing.T, n *labNS, name string) netlink.Link {
	t.Helper()
	l, err := n.nl.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// egressDrop drops everything ifname sends (the path looks dead while the
// carrier stays up). Close the returned fd to undo.
func egressDrop(t *testing.T, n *labNS, ifname string) int {
	t.Helper()
	l := mustLink(t, n, ifname)
	var fd int
	if err := nsexec.Do(n.h, func() error {
		var err error
		fd, err = attachDrop(l.Attrs().Index, unix.BPF_TCX_EGRESS)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestAdmissionNeedsARPReply: a neighbour that sends frames through the
// NIC but does not answer the probe (arp_ignore=8) does not get it
// admitted; once it answers, it does.
func TestAdmissionNeedsARPReply(t *testing.T) {
	needRoot(t)
	A, B := newNS(t, "qa"), newNS(t, "qb")
	vethPair(t, A, "a0", B, "b0")
	ipCmd(t, "-n", A.name, "addr", "add", "10.77.0.1/24", "dev", "a0")
	ipCmd(t, "-n", B.name, "addr", "add", "10.77.0.2/24", "dev", "b0")
	sysctl := func(v string) {
		t.Helper()
		if out, err := exec.Command("ip", "netns", "exec", B.name, "sysctl", "-qw", "net.ipv4.conf.b0.arp_ignore="+v).CombinedOutput(); err != nil {
			t.Fatalf("sysctl: %v: %s", err, out)
		}
	}
	sysctl("8") // never answer ARP
	// Chatter: B broadcasts a UDP datagram through b0 every 10 ms.
	var conn net.PacketConn
	if err := nsexec.Do(B.h, func() error {
		var err error
		conn, err = net.ListenPacket("udp4", "10.77.0.2:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stop := make(chan struct{})
	chatted := make(chan int)
	go func() {
		n := 0
		defer func() { chatted <- n }()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.WriteTo([]byte("chatter"), &net.UDPAddr{IP: net.IPv4(10, 77, 0, 255), Port: 9}); err == nil {
					n++
				}
			}
		}
	}()
	sa := startSide(t, A, netip.MustParseAddr("10.77.0.2"), bonding.Config{Interval: 50 * time.Millisecond, AddTimeout: 400 * time.Millisecond})
	ctx := context.Background()
	err := sa.agent.Add(ctx, "a0")
	close(stop)
	if n := <-chatted; n < 10 {
		t.Fatalf("only %d chatter datagrams sent during the check", n)
	}
	if err == nil || !strings.Contains(err.Error(), "no ARP reply from 10.77.0.2") {
		t.Fatalf("add a0 with a silent target = %v, want no ARP reply", err)
	}
	if st, err := sa.agent.Status(ctx); err != nil || st.Bonded || len(st.NICs) != 0 {
		t.Fatalf("status after refusal: %+v, %v", st, err)
	}
	if got := A.addrs(t, "a0"); strings.Join(got, ",") != "10.77.0.1/24" {
		t.Fatalf("a0 addresses after refusal: %v", got)
	}
	sysctl("0")
	sa.add(t, "a0")
	if got := A.addrs(t, "bond0"); strings.Join(got, ",") != "10.77.0.1/24" {
		t.Fatalf("bond0 addresses %v", got)
	}
	if err := sa.agent.Remove(ctx, "a0"); err != nil {
		t.Fatal(err)
	}
}
