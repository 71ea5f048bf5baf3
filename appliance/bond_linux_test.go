package appliance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"ftnas/appliance/api"
	"ftnas/appliance/store"
	"ftnas/bonding"
	knetns "ftnas/kernel/netns"
)

func TestBondStats(t *testing.T) {
	s := newBondStats()
	ch := func(nic string, from, to bonding.State) { s.change(bonding.Changed{NIC: nic, From: from, To: to}) }
	ch("a", bonding.Gone, bonding.Checking)
	ch("a", bonding.Checking, bonding.Up)
	ch("b", bonding.Gone, bonding.Checking)
	ch("b", bonding.Checking, bonding.Up)
	s.setActive([]string{"a"}) // failover mode: a carries the traffic
	ch("b", bonding.Up, bonding.Down)
	if s.failures["b"] != 1 || s.failovers != 0 {
		t.Errorf("a standby failing: failures %v, failovers %d; want 1, 0", s.failures, s.failovers)
	}
	ch("a", bonding.Up, bonding.Down)
	if s.failures["a"] != 1 || s.failovers != 1 {
		t.Errorf("the active member failing: failures %v, failovers %d; want 1, 1", s.failures, s.failovers)
	}
	// A recovering member that fails again was not in rotation.
	ch("a", bonding.Down, bonding.Recovering)
	ch("a", bonding.Recovering, bonding.Down)
	if s.failures["a"] != 1 || s.failovers != 1 {
		t.Errorf("recovering -> down counted: %v %d", s.failures, s.failovers)
	}
	ch("b", bonding.Down, bonding.Gone)
	if _, ok := s.states["b"]; ok || s.states["a"] != bonding.Down {
		t.Errorf("states = %v", s.states)
	}
	s.reset()
	if len(s.states) != 0 || s.active != nil || s.failures["a"] != 1 {
		t.Errorf("reset keeps counters only: %+v", s)
	}
}

func TestBondClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		kind error
	}{
		{errors.New("bonding: add x: no such interface"), store.ErrNotFound},
		{errors.New("bonding: add x: no carrier (cable unplugged or switch port down?)"), store.ErrInvalid},
		{errors.New("bonding: add x: already in the bond"), store.ErrExists},
		{errors.New("bonding: add x: no ARP reply from 192.0.2.1 through it within 1s (does it reach the switch?)"), store.ErrInvalid},
		{fmt.Errorf("bonding: add x: prepare: %w", errors.New("EPERM")), nil},
		{bonding.ErrStopped, nil},
	} {
		got := classify(c.err)
		if got.Error() != c.err.Error() {
			t.Errorf("classify changed the message: %q", got)
		}
		for _, k := range []error{store.ErrInvalid, store.ErrNotFound, store.ErrExists} {
			if errors.Is(got, k) != (k == c.kind) {
				t.Errorf("classify(%q) is %v: %v, want kind %v", c.err, k, errors.Is(got, k), c.kind)
			}
		}
	}
	if classify(nil) != nil {
		t.Error("classify(nil) != nil")
	}
	for _, s := range []string{"", "auto", "userland", "kernel"} {
		if _, err := parseBondDatapath(s); err != nil {
			t.Errorf("parseBondDatapath(%q) = %v", s, err)
		}
	}
	if _, err := parseBondDatapath("dpdk"); err == nil || !strings.Contains(err.Error(), `--bond-datapath "dpdk"`) {
		t.Errorf("parseBondDatapath(dpdk) = %v", err)
	}
}

// The bond lab: nasd's namespace (the test's own, see TestMain) is joined
// to a peer namespace by veth pairs m0-p0, m1-p1, m2-p2; the peer bridges
// them on br0 (a switch) holding 10.91.0.2, the probe target. p2 stays
// down, so m2 has no carrier.
const (
	bondIP     = "10.91.0.1"
	bondPrefix = "10.91.0.1/24"
	peerIP     = "10.91.0.2"
	bondRoute  = "10.92.0.0/24" // through peerIP
)

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func bondLab(t *testing.T) (peer string) {
	t.Helper()
	inNetns(t)
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("needs /dev/net/tun for the userland bond: ", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip: ", err)
	}
	peer = fmt.Sprintf("ftbondpeer-%d", os.Getpid())
	sh(t, "ip", "netns", "add", peer)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", peer).Run() })
	sh(t, "ip", "-n", peer, "link", "set", "lo", "up")
	sh(t, "ip", "-n", peer, "link", "add", "br0", "type", "bridge")
	sh(t, "ip", "-n", peer, "addr", "add", peerIP+"/24", "dev", "br0")
	sh(t, "ip", "-n", peer, "link", "set", "br0", "up")
	for i := range 3 {
		m, p := fmt.Sprintf("m%d", i), fmt.Sprintf("p%d", i)
		sh(t, "ip", "link", "add", m, "type", "veth", "peer", "name", p, "netns", peer)
		t.Cleanup(func() { exec.Command("ip", "link", "del", m).Run() })
		sh(t, "ip", "-n", peer, "link", "set", p, "master", "br0")
		sh(t, "ip", "link", "set", m, "up")
		if i < 2 {
			sh(t, "ip", "-n", peer, "link", "set", p, "up")
		}
	}
	sh(t, "ip", "addr", "add", bondPrefix, "dev", "m0")
	sh(t, "ip", "route", "add", bondRoute, "via", peerIP, "dev", "m0")
	return peer
}

// routeDev is the device the main table's route to dst goes through, or
// "" with none.
func routeDev(t *testing.T, dst string) string {
	t.Helper()
	out, err := exec.Command("ip", "-4", "route", "show", "exact", dst).Output()
	if err != nil {
		t.Fatalf("ip route show %s: %v", dst, err)
	}
	f := strings.Fields(string(out))
	if i := slices.Index(f, "dev"); i >= 0 && i+1 < len(f) {
		return f[i+1]
	}
	return ""
}

func addrsOf(t *testing.T, name string) []string {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil
	}
	as, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.IPNet.String())
	}
	return out
}

func macOf(t *testing.T, name string) string {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().HardwareAddr.String()
}

// ping sends ICMP echo requests from namespace ns to dst until one is
// answered.
func ping(ns, dst string, within time.Duration) error {
	c, err := knetns.ListenPacket(ns, "ip4:icmp", "0.0.0.0")
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(within)
	buf := make([]byte, 1500)
	for seq := 1; time.Now().Before(deadline); seq++ {
		msg := []byte{8, 0, 0, 0, 0x7e, 0x57, byte(seq >> 8), byte(seq), 'f', 't', 'n', 'a', 's'}
		var sum uint32
		for i := 0; i+1 < len(msg); i += 2 {
			sum += uint32(msg[i])<<8 | uint32(msg[i+1])
		}
		sum += uint32(msg[len(msg)-1]) << 8
		for sum>>16 != 0 {
			sum = sum&0xffff + sum>>16
		}
		msg[2], msg[3] = byte(^sum>>8), byte(^sum)
		if _, err := c.WriteTo(msg, &net.IPAddr{IP: net.ParseIP(dst)}); err != nil {
			return fmt.Errorf("ping %s: %w", dst, err)
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				break // timed out: send the next one
			}
			if n >= 8 && buf[0] == 0 && buf[4] == 0x7e && buf[5] == 0x57 {
				return nil
			}
		}
	}
	return fmt.Errorf("ping %s from %s: no reply within %v", dst, ns, within)
}

// echoStream is a TCP connection from the peer to an echo server on the
// bond's address, exchanging rounds of data until stopped.
type echoStream struct {
	mu     sync.Mutex
	rounds int
	err    error
	stop   chan struct{}
	done   chan struct{}
}

func startEcho(t *testing.T, peer string) *echoStream {
	t.Helper()
	ln, err := net.Listen("tcp4", bondIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := knetns.Dial(peer, "tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	e := &echoStream{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(e.done)
		defer c.Close()
		out := make([]byte, 64<<10)
		in := make([]byte, len(out))
		for r := 0; ; r++ {
			select {
			case <-e.stop:
				return
			default:
			}
			for i := range out {
				out[i] = byte(r + i*7)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err := c.Write(out)
			if err == nil {
				_, err = io.ReadFull(c, in)
			}
			if err == nil && !bytes.Equal(in, out) {
				err = fmt.Errorf("round %d: echoed data differs", r)
			}
			e.mu.Lock()
			if err != nil {
				e.err = err
			} else {
				e.rounds++
			}
			e.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return e
}

func (e *echoStream) state() (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rounds, e.err
}

func (e *echoStream) end() (int, error) {
	close(e.stop)
	<-e.done
	return e.state()
}

func member(st api.BondStatus, nic string) api.BondMember {
	for _, m := range st.Members {
		if m.Name == nic {
			return m
		}
	}
	return api.BondMember{State: "absent"}
}

// waitMember waits until nic is in state per nasd's API.
func (n *nasd) waitMember(nic, state string, within time.Duration) api.BondStatus {
	n.t.Helper()
	var st api.BondStatus
	waitFor(n.t, nic+" to be "+state, within, func() bool {
		var err error
		st, err = n.client.BondStatus(context.Background())
		return err == nil && member(st, nic).State == state
	})
	return st
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBondThroughNasd(t *testing.T) {
	peer := bondLab(t)
	m1MAC := macOf(t, "m1")
	cfg := newConfig(t)
	cfg.NoSMB = true
	// The cluster step below pins its lease fence here (a BPF filesystem
	// nasd mounts).
	cfg.BPFDir = filepath.Join(t.TempDir(), "bpf")
	t.Cleanup(func() { unix.Unmount(cfg.BPFDir, unix.MNT_DETACH) })
	n := start(t, cfg)
	ctx := context.Background()

	// Refusals change nothing.
	_, err := n.client.AddBondMember(ctx, api.BondAddRequest{NIC: "nope0"})
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "bond add nope0") || !strings.Contains(err.Error(), "no such interface") {
		t.Errorf("add a NIC that does not exist = %v", err)
	}
	_, err = n.client.AddBondMember(ctx, api.BondAddRequest{NIC: "m2"})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "bonding: add m2: no carrier") {
		t.Errorf("add a NIC without carrier = %v", err)
	}

	st, err := n.client.AddBondMember(ctx, api.BondAddRequest{NIC: "m0", ProbeTarget: peerIP})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Bonded || st.Datapath != store.BondDatapathUserland || strings.Join(st.Addresses, ",") != bondPrefix || !member(st, "m0").Primary {
		t.Fatalf("after adding m0: %+v", st)
	}
	if _, err := n.client.AddBondMember(ctx, api.BondAddRequest{NIC: "m1"}); err != nil {
		t.Fatal(err)
	}
	_, err = n.client.AddBondMember(ctx, api.BondAddRequest{NIC: "m2", ProbeTarget: "10.91.0.3"})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "remove every member to change the probe target") {
		t.Errorf("change the probe target of a formed bond = %v", err)
	}
	if _, err = n.client.AddBondMember(ctx, api.BondAddRequest{NIC: "m2"}); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "no carrier") {
		t.Errorf("add a NIC without carrier to the bond = %v", err)
	}
	if _, err = n.client.AddBondMember(ctx, api.BondAddRequest{NIC: "m1"}); !errors.Is(err, store.ErrExists) {
		t.Errorf("add m1 twice = %v", err)
	}
	// A NIC with carrier that does not reach the probe target (p2 is cut
	// off the switch, and the peer answers no ARP on it) is refused, and
	// gets its own MAC back.
	m2MAC := macOf(t, "m2")
	sh(t, "ip", "-n", peer, "link", "set", "p2", "nomaster")
	// IPv6 stays on: its chatter through m2 is no answer to the probe.
	sh(t, "ip", "netns", "exec", peer, "sysctl", "-qw", "net.ipv4.conf.p2.arp_ignore=8")
	sh(t, "ip", "-n", peer, "link", "set", "p2", "up")
	_, err = n.client.AddBondMember(ctx, api.BondAddRequest{NIC: "m2"})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "bonding: add m2: no ARP reply from "+peerIP) {
		t.Errorf("add a NIC that does not reach the probe target = %v", err)
	}
	if got := macOf(t, "m2"); got != m2MAC {
		t.Errorf("m2 MAC after a refused add = %s, want %s", got, m2MAC)
	}
	if got := addrsOf(t, BondInterface); strings.Join(got, ",") != bondPrefix {
		t.Fatalf("%s addresses = %v", BondInterface, got)
	}
	if got := addrsOf(t, "m0"); len(got) != 0 {
		t.Fatalf("m0 still has %v", got)
	}
	if err := ping(peer, bondIP, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := routeDev(t, bondRoute); got != BondInterface {
		t.Errorf("route %s goes through %q, want the bond", bondRoute, got)
	}

	// Cut m1 while a TCP stream runs: it goes on over m0.
	echo := startEcho(t, peer)
	waitFor(t, "the TCP stream to run", 10*time.Second, func() bool { r, err := echo.state(); return r > 3 || err != nil })
	sh(t, "ip", "-n", peer, "link", "set", "p1", "down")
	st = n.waitMember("m1", "down", 5*time.Second)
	if m := member(st, "m1"); m.Failures != 1 || m.Carrier || m.Active || m.Reason != "carrier lost" || st.Failovers != 1 || strings.Join(st.Active, ",") != "m0" {
		t.Errorf("after cutting m1: %+v", st)
	}
	cut, _ := echo.state()
	waitFor(t, "the TCP stream to go on after the cut", 10*time.Second, func() bool { r, err := echo.state(); return r > cut+5 || err != nil })
	if rounds, err := echo.end(); err != nil {
		t.Fatalf("TCP stream across the cut: %v (after %d rounds)", err, rounds)
	}
	if err := ping(peer, bondIP, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n.ready.Metrics != "" {
		m := scrape(t, n.ready.Metrics)
		for _, w := range []string{`ftnas_bond_member_up{nic="m0"} 1`, `ftnas_bond_member_up{nic="m1"} 0`, "ftnas_bond_failovers_total 1",
			`ftnas_bond_member_failures_total{nic="m1"} 1`, `ftnas_bond_members{state="down"} 1`, "ftnas_bond_bonded 1", "ftnas_bond_active_members 1"} {
			if !strings.Contains(m, w) {
				t.Errorf("metrics lack %q", w)
			}
		}
	}
	sh(t, "ip", "-n", peer, "link", "set", "p1", "up")
	n.waitMember("m1", "up", 5*time.Second)

	st, err = n.client.SetBondMode(ctx, "failover")
	if err != nil || st.Mode != "failover" || strings.Join(st.Active, ",") != "m0" {
		t.Fatalf("SetBondMode = %+v, %v", st, err)
	}

	// Stop: the bond dissolves, m0 is plain again, m1 has its own MAC.
	n.stop()
	if got := addrsOf(t, "m0"); strings.Join(got, ",") != bondPrefix {
		t.Fatalf("m0 after nasd stopped: %v", got)
	}
	if _, err := netlink.LinkByName(BondInterface); err == nil {
		t.Fatalf("%s survives nasd", BondInterface)
	}
	if got := macOf(t, "m1"); got != m1MAC {
		t.Errorf("m1 MAC after nasd stopped = %s, want its own %s", got, m1MAC)
	}

	// As after a crash: m0 has lost the address. The bond comes back from
	// the store with the recorded address, mode and probe target.
	sh(t, "ip", "addr", "flush", "dev", "m0")
	sh(t, "ip", "route", "flush", "dev", "m0")
	n = start(t, cfg)
	st, err = n.client.BondStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Bonded || st.Mode != "failover" || st.ProbeTarget != peerIP || strings.Join(st.Addresses, ",") != bondPrefix ||
		member(st, "m0").State != "up" || member(st, "m1").State != "up" || len(st.Members) != 2 || st.Members[0].Name != "m0" {
		t.Fatalf("after restart: %+v", st)
	}
	if err := ping(peer, bondIP, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := routeDev(t, bondRoute); got != BondInterface {
		t.Errorf("after a crash, route %s goes through %q, want the bond", bondRoute, got)
	}

	// A change of cluster membership restarts the services in process,
	// but not the bond: the same bond device carries on, untouched.
	before, err := netlink.LinkByName(BondInterface)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.InitCluster(ctx, api.ClusterInitRequest{VIP: "10.91.0.100/24", Public: bondIP, PeerPublic: "10.91.0.9", Witness: peerIP}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the services to restart as a cluster member", 20*time.Second, func() bool {
		cs, err := n.client.ClusterStatus(ctx)
		return err == nil && cs.Protection != api.ProtectionStandalone
	})
	// The lease fence is pinned, so it would outlive a killed nasd.
	if pins, _ := filepath.Glob(filepath.Join(cfg.BPFDir, "fence-*", "*")); len(pins) != 3 {
		t.Errorf("pinned fence files %q, want lease, ingress and egress", pins)
	}
	if err := n.client.LeaveCluster(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the services to restart stand-alone", 20*time.Second, func() bool {
		cs, err := n.client.ClusterStatus(ctx)
		return err == nil && cs.Protection == api.ProtectionStandalone
	})
	if pins, _ := filepath.Glob(filepath.Join(cfg.BPFDir, "fence-*", "*")); len(pins) != 0 {
		t.Errorf("pinned fence files %q after leaving the pair", pins)
	}
	after, err := netlink.LinkByName(BondInterface)
	if err != nil || after.Attrs().Index != before.Attrs().Index {
		t.Fatalf("%s after two membership restarts: %v, %v; want the same device (index %d)", BondInterface, after, err, before.Attrs().Index)
	}
	if st, err := n.client.BondStatus(ctx); err != nil || !st.Bonded || st.Failovers != 0 || member(st, "m0").Failures != 0 || member(st, "m1").Failures != 0 {
		t.Fatalf("bond after membership restarts: %+v, %v", st, err)
	}
	if err := ping(peer, bondIP, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	// A member without carrier at boot waits, and joins when it can.
	n.stop()
	sh(t, "ip", "-n", peer, "link", "set", "p1", "down")
	n = start(t, cfg)
	st, err = n.client.BondStatus(ctx)
	if m := member(st, "m1"); err != nil || m.State != "missing" || !strings.Contains(m.Reason, "no carrier") || member(st, "m0").State != "up" {
		t.Fatalf("restart with m1 cut: %+v, %v", st, err)
	}
	_, err = n.client.AddBondMember(ctx, api.BondAddRequest{NIC: "m1"})
	if !errors.Is(err, store.ErrExists) || !strings.Contains(err.Error(), "waiting to join") {
		t.Errorf("add a waiting member = %v", err)
	}
	sh(t, "ip", "-n", peer, "link", "set", "p1", "up")
	n.waitMember("m1", "up", 3*bondRetryInterval+5*time.Second)

	// Remove both: the address is back on m0, plain.
	if err := n.client.RemoveBondMember(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	if err := n.client.RemoveBondMember(ctx, "m1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("remove m1 twice = %v", err)
	}
	if err := n.client.RemoveBondMember(ctx, "m0"); err != nil {
		t.Fatal(err)
	}
	st, err = n.client.BondStatus(ctx)
	if err != nil || st.Bonded || len(st.Members) != 0 {
		t.Fatalf("after removing both: %+v, %v", st, err)
	}
	if got := addrsOf(t, "m0"); strings.Join(got, ",") != bondPrefix {
		t.Fatalf("m0 after removing both: %v", got)
	}
	if _, err := netlink.LinkByName(BondInterface); err == nil {
		t.Fatalf("%s survives its last member", BondInterface)
	}
	if err := ping(peer, bondIP, 5*time.Second); err != nil {
		t.Fatalf("m0 as a plain interface: %v", err)
	}
	// And stays so across a restart.
	n.stop()
	n = start(t, cfg)
	if st, err := n.client.BondStatus(ctx); err != nil || len(st.Members) != 0 || st.Bonded {
		t.Errorf("after restart with no bond: %+v, %v", st, err)
	}
	if slices.Contains(addrsOf(t, BondInterface), bondPrefix) {
		t.Error("the bond came back")
	}
}
