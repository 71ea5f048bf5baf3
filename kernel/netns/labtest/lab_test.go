package labtest_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ftnas/kernel/netns"
	"ftnas/kernel/netns/labtest"
)

// echo serves a line echo (prefixed with the caller's address) in ns on
// ip:0 and returns the address.
func echo(t *testing.T, ns, ip string) string {
	t.Helper()
	ln, err := netns.Listen(ns, "tcp", net.JoinHostPort(ip, "0"))
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
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				io.WriteString(c, host+" "+line)
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip connects from ns to addr and exchanges a line within timeout;
// it returns the source address the server saw.
func roundTrip(ns, addr string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := netns.DialContext(ctx, ns, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	from, rest, _ := strings.Cut(line, " ")
	if rest != "hello\n" {
		return "", errors.New("bad echo " + line)
	}
	return from, nil
}

// eventually polls cond until it holds or 10 s pass (waiting on the
// kernel: a port coming back, an ARP entry).
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond) // polling a real condition
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 10s: %v", what, err)
		}
		<-tick.C
	}
}

// udpDelivered sends n datagrams from ns to a fresh UDP socket in dstNS on
// dstIP and counts those that arrive.
func udpDelivered(t *testing.T, ns, dstNS, dstIP string, n int) int {
	t.Helper()
	pc, err := netns.ListenPacket(dstNS, "udp", net.JoinHostPort(dstIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := netns.Dial(ns, "udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		// A dropped ARP exchange shows up as an error on a later send.
		c.Write([]byte{byte(i), byte(i >> 8)})
	}
	got := 0
	buf := make([]byte, 16)
	for {
		pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, _, err := pc.ReadFrom(buf); err != nil {
			return got
		}
		got++
	}
}

// transfer sends size bytes over TCP from ns to a sink in dstNS on dstIP
// and returns how long it took until the sink had them all.
func transfer(t *testing.T, ns, dstNS, dstIP string, size int) time.Duration {
	t.Helper()
	ln, err := netns.Listen(dstNS, "tcp", net.JoinHostPort(dstIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.CopyN(io.Discard, c, int64(size))
		if err == nil {
			_, err = c.Write([]byte{1})
		}
		done <- err
	}()
	c, err := netns.Dial(ns, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

func linkFlags(t *testing.T, ns, dev string) string {
	t.Helper()
	out, err := netns.Exec(t.Context(), ns, "ip", "-o", "link", "show", "dev", dev)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestLab(t *testing.T) {
	l := labtest.Up(t, labtest.Options{Nodes: 2, Clients: 1})
	n1, n2, c1 := l.Node("n1"), l.Node("n2"), l.Client("c1")
	ded1, ded2 := n1.Dedicated[0], n2.Dedicated[0]
	if ded1.PeerIP != ded2.IP || ded1.Peer != "n2" {
		t.Fatalf("dedicated link ends disagree: %+v / %+v", ded1, ded2)
	}
	for _, ns := range []string{n1.NS, n2.NS, c1.NS, l.Witness.NS, l.SwitchNS} {
		if !strings.HasPrefix(ns, l.Prefix) {
			t.Errorf("namespace %s lacks prefix %s", ns, l.Prefix)
		}
	}
	for _, n := range []labtest.Node{n1, n2} {
		if fi, err := os.Stat(n.State); err != nil || !fi.IsDir() {
			t.Errorf("%s state folder: %v", n.Name, err)
		}
		if l.FS == "btrfs" {
			var st syscall.Statfs_t
			if err := syscall.Statfs(n.Volume, &st); err != nil || st.Type != 0x9123683e {
				t.Errorf("%s volume %s: statfs type %#x, %v; want its own btrfs", n.Name, n.Volume, st.Type, err)
			}
		}
	}

	pub1 := echo(t, n1.NS, n1.PublicIP)
	pub2 := echo(t, n2.NS, n2.PublicIP)
	dedAt2 := echo(t, n2.NS, ded2.IP)
	wit := echo(t, l.Witness.NS, l.Witness.IP)
	must := func(what, ns, addr, wantFrom string) {
		t.Helper()
		from, err := roundTrip(ns, addr, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if from != wantFrom {
			t.Errorf("%s: server saw %s; want %s", what, from, wantFrom)
		}
	}
	cannot := func(what, ns, addr string) {
		t.Helper()
		if _, err := roundTrip(ns, addr, 400*time.Millisecond); err == nil {
			t.Fatalf("%s: connected; want it cut", what)
		}
	}
	must("client -> n1 public", c1.NS, pub1, c1.IP)
	must("n1 -> n2 dedicated", n1.NS, dedAt2, ded1.IP)
	must("n1 -> witness", n1.NS, wit, n1.PublicIP)

	t.Run("cut dedicated", func(t *testing.T) {
		l.Cut(t, "n1", "dedicated")
		if f := linkFlags(t, n1.NS, ded1.If); !strings.Contains(f, "NO-CARRIER") {
			t.Errorf("n1's %s after cut: %s; want NO-CARRIER", ded1.If, f)
		}
		cannot("n1 -> n2 dedicated, cut", n1.NS, dedAt2)
		must("n1 -> n2 public, dedicated cut", n1.NS, pub2, n1.PublicIP)
		if in, err := l.Status(); err != nil || !in.Nodes[0].Paths.Dedicated.Cut || in.Nodes[0].Paths.Public.Cut {
			t.Errorf("status after cut: %+v, %v; want dedicated cut, public not", in.Nodes[0].Paths, err)
		}
		l.Restore(t, "n1", "dedicated")
		eventually(t, "n1 -> n2 dedicated, restored", func() error { _, err := roundTrip(n1.NS, dedAt2, time.Second); return err })
	})

	t.Run("partition and heal", func(t *testing.T) {
		l.Partition(t, "n1")
		cannot("client -> n1, partitioned", c1.NS, pub1)
		cannot("n1 -> n2 dedicated, partitioned", n1.NS, dedAt2)
		must("client -> n2 while n1 is partitioned", c1.NS, pub2, c1.IP)
		l.Heal(t, "")
		eventually(t, "client -> n1 healed", func() error { _, err := roundTrip(c1.NS, pub1, time.Second); return err })
		eventually(t, "n1 -> n2 dedicated healed", func() error { _, err := roundTrip(n1.NS, dedAt2, time.Second); return err })
	})

	t.Run("cut witness", func(t *testing.T) {
		l.Cut(t, "n1", "witness")
		cannot("n1 -> witness, cut", n1.NS, wit)
		must("n2 -> witness", n2.NS, wit, n2.PublicIP)
		must("client -> n1 public, witness cut", c1.NS, pub1, c1.IP)
		l.Restore(t, "n1", "witness")
		eventually(t, "n1 -> witness restored", func() error { _, err := roundTrip(n1.NS, wit, time.Second); return err })
	})

	t.Run("loss", func(t *testing.T) {
		const n = 200
		l.Loss(t, "n1", "public", 100)
		if got := udpDelivered(t, c1.NS, n1.NS, n1.PublicIP, n); got != 0 {
			t.Errorf("100%% loss: %d of %d datagrams arrived", got, n)
		}
		cannot("client -> n1 at 100% loss", c1.NS, pub1)
		must("n1 -> n2 dedicated at 100% public loss", n1.NS, dedAt2, ded1.IP)
		l.Loss(t, "n1", "public", 50)
		if in, err := l.Status(); err != nil || in.Nodes[0].Paths.Public.Loss != 50 {
			t.Errorf("status at 50%% loss: %+v, %v", in.Nodes[0].Paths.Public, err)
		}
		// Binomial(200, 0.5): 60..140 is over 5 standard deviations wide.
		if got := udpDelivered(t, c1.NS, n1.NS, n1.PublicIP, n); got < 60 || got > 140 {
			t.Errorf("50%% loss: %d of %d datagrams arrived; want about half", got, n)
		}
		l.Loss(t, "n1", "public", 0)
		eventually(t, "client -> n1 at 0% loss", func() error { _, err := roundTrip(c1.NS, pub1, time.Second); return err })
		if got := udpDelivered(t, c1.NS, n1.NS, n1.PublicIP, n); got != n {
			t.Errorf("0%% loss: %d of %d datagrams arrived", got, n)
		}
	})

	t.Run("rate", func(t *testing.T) {
		const size = 512 << 10
		l.Rate(t, "n1", "public", "8mbit") // 1 MB/s: 0.52 s for 512 KiB
		if d := transfer(t, c1.NS, n1.NS, n1.PublicIP, size); d < 350*time.Millisecond {
			t.Errorf("to n1 at 8mbit: %d bytes in %v; want >= 0.35 s", size, d)
		}
		if d := transfer(t, n1.NS, c1.NS, c1.IP, size); d < 350*time.Millisecond {
			t.Errorf("from n1 at 8mbit: %d bytes in %v; want >= 0.35 s", size, d)
		}
		l.Rate(t, "n1", "public", "off")
		if d := transfer(t, c1.NS, n1.NS, n1.PublicIP, size); d > 300*time.Millisecond {
			t.Errorf("to n1 without a limit: %d bytes in %v; want well under 0.3 s", size, d)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, args := range [][]string{
			{"loss", "n1", "public", "150"},
			{"loss", "n1", "sideways", "10"},
			{"cut", "n3", "public"},
			{"cut", "c1", "dedicated"},
			{"rate", "n1", "public", "fast"},
			{"up"},
		} {
			if out, err := l.Run(args...); err == nil {
				t.Errorf("scripts/lab %s: succeeded (%s); want an error", strings.Join(args, " "), out)
			}
		}
	})

	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	if left := l.Leftovers(); len(left) > 0 {
		t.Fatalf("after down: %v", left)
	}
}

// A lab whose `up` or record was lost half way still comes down.
func TestDownAfterCrash(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func(run string) error
	}{
		{"record partly lost", func(run string) error {
			for _, f := range []string{"lab.env", "faults"} {
				if err := os.RemoveAll(filepath.Join(run, f)); err != nil {
					return err
				}
			}
			return nil
		}},
		{"record lost", os.RemoveAll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := labtest.Up(t, labtest.Options{Nodes: 2, Clients: 1})
			n1 := l.Node("n1")
			// A process in a node, started from the lab dir, as nasd is.
			if err := os.WriteFile(filepath.Join(n1.State, "hold"), []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(filepath.Join(n1.State, "hold"))
			if err := netns.Start(n1.NS, cmd); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			l.Loss(t, "n1", "public", 30)
			if err := tc.lose(filepath.Join(labtest.RunDir, l.Name)); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Run("status"); err == nil && tc.name == "record lost" {
				t.Error("status of a lab without a record succeeded")
			}
			if err := l.Down(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				t.Error("the process in n1 survived down")
			}
			if left := l.Leftovers(); len(left) > 0 {
				t.Fatalf("after down: %v", left)
			}
		})
	}
}

func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "gone"
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

func TestNasd(t *testing.T) {
	l := labtest.Up(t, labtest.Options{Nodes: 1, Clients: 1})
	n1, c1 := l.Node("n1"), l.Client("c1")
	nfs := net.JoinHostPort(n1.PublicIP, "2049")
	var nasdArgs []string
	if _, err := exec.LookPath("smbd"); err != nil {
		nasdArgs = []string{"--", "--no-smb"}
	}
	status := func() labtest.Nasd {
		t.Helper()
		in, err := l.Status()
		if err != nil {
			t.Fatal(err)
		}
		return in.Nodes[0].Nasd
	}
	dial := func() error {
		c, err := netns.Dial(c1.NS, "tcp", nfs)
		if err == nil {
			c.Close()
		}
		return err
	}

	l.Nasd(t, "start", "n1", nasdArgs...) // builds nasd into the lab dir
	st := status()
	if st.State != "running" || st.PID == 0 {
		t.Fatalf("nasd after start: %+v; want running", st)
	}
	if err := dial(); err != nil {
		t.Fatalf("client -> nasd's NFS port on n1: %v", err)
	}
	if _, err := l.Run("nasd", "start", "n1"); err == nil {
		t.Error("a second nasd start on n1 succeeded")
	}

	l.Nasd(t, "freeze", "n1")
	if s := status(); s.State != "frozen" || procState(t, st.PID) != "T" {
		t.Errorf("after freeze: status %+v, process state %s; want frozen, T", s, procState(t, st.PID))
	}
	l.Nasd(t, "thaw", "n1")
	if s := status(); s.State != "running" || procState(t, st.PID) == "T" {
		t.Errorf("after thaw: status %+v, process state %s; want running", s, procState(t, st.PID))
	}

	l.Nasd(t, "kill", "n1")
	if s := status(); s.State != "stopped" || procState(t, st.PID) != "gone" {
		t.Errorf("after kill: status %+v, process %d state %s; want stopped and gone", s, st.PID, procState(t, st.PID))
	}
	if err := dial(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("client -> n1 NFS after kill: %v; want connection refused", err)
	}

	l.Nasd(t, "start", "n1", nasdArgs...) // after a kill -9: stale socket, stale smbd
	st2 := status()
	if st2.State != "running" || st2.PID == st.PID {
		t.Fatalf("nasd after restart: %+v (first pid %d)", st2, st.PID)
	}
	l.Nasd(t, "freeze", "n1") // down must stop a frozen nasd too
	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	if s := procState(t, st2.PID); s != "gone" {
		t.Errorf("frozen nasd %d after down: state %s", st2.PID, s)
	}
}
