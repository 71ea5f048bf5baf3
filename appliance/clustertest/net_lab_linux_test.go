package clustertest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"ftnas/kernel/netns"
	"ftnas/kernel/netns/labtest"

	"golang.org/x/sys/unix"
)

// netInterface returns the MAC of ifname in ns.
func netInterface(ns, ifname string) (string, error) {
	out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", ifname).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip link show %s in %s: %v: %s", ifname, ns, err, out)
	}
	f := strings.Fields(string(out))
	for i, w := range f {
		if w == "link/ether" && i+1 < len(f) {
			return f[i+1], nil
		}
	}
	return "", fmt.Errorf("no MAC for %s in %s: %s", ifname, ns, out)
}

func mustIP(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}

// spoofUDP sends payload from ns as a UDP datagram with a forged source
// address (from:port to to:port), through a raw socket.
func spoofUDP(t *testing.T, ns, from, to string, port uint16, payload []byte) {
	t.Helper()
	src, dst := netip.MustParseAddr(from).As4(), netip.MustParseAddr(to).As4()
	pkt := make([]byte, 28, 28+len(payload))
	pkt[0], pkt[8], pkt[9] = 0x45, 64, unix.IPPROTO_UDP // version/IHL, TTL, protocol
	copy(pkt[12:16], src[:])
	copy(pkt[16:20], dst[:])
	binary.BigEndian.PutUint16(pkt[20:], port)
	binary.BigEndian.PutUint16(pkt[22:], port)
	binary.BigEndian.PutUint16(pkt[24:], uint16(8+len(payload))) // UDP checksum 0: none (IPv4)
	pkt = append(pkt, payload...)
	err := netns.Do(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		// IPPROTO_RAW implies IP_HDRINCL; the kernel fills in the total
		// length, the ID and the header checksum.
		return unix.Sendto(fd, pkt, 0, &unix.SockaddrInet4{Addr: dst})
	})
	if err != nil {
		t.Fatalf("send a forged datagram from %s: %v", ns, err)
	}
}

// fenced aims the client at n's MAC for the VIP on purpose: n's lease
// fence must drop the SYN (a timeout; n's kernel would otherwise accept
// it or, with no listener, refuse it).
func fenced(t *testing.T, lab *labtest.Lab, n labtest.Node, what string) {
	t.Helper()
	c1 := lab.Client("c1")
	mac, err := netInterface(n.NS, n.PublicIf)
	if err != nil {
		t.Fatal(err)
	}
	mustIP(t, "-n", c1.NS, "neigh", "replace", lab.VIP, "lladdr", mac, "dev", "pub", "nud", "permanent")
	defer mustIP(t, "-n", c1.NS, "neigh", "del", lab.VIP, "dev", "pub")
	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
	conn, err := netns.DialContext(dctx, c1.NS, "tcp", lab.VIP+":2049")
	dcancel()
	switch {
	case err == nil:
		conn.Close()
		t.Fatalf("%s still accepts TCP on the VIP", what)
	case !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "timeout"):
		t.Fatalf("%s: a SYN to the VIP got %v, want no answer at all (the fence drops it)", what, err)
	}
}

// removeVIP does what the box's service manager does when nasd dies: it
// removes the VIP nasd could not remove itself.
func removeVIP(t *testing.T, n labtest.Node, vip string) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", n.NS, "ip", "addr", "del", vip+"/24", "dev", n.PublicIf).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Cannot assign") {
		t.Fatalf("remove the VIP from %s: %v: %s", n.Name, err, out)
	}
}
