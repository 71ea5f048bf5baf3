//go:build linux

package heartbeat

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

func TestVIPInNetns(t *testing.T) {
	ns := newTestNetns(t)
	vip := netip.MustParsePrefix("10.77.0.10/24")
	showAddr := func() string { return runCmd(t, "ip", "-n", ns, "-o", "addr", "show", "dev", "hbv0") }

	// Add, twice: idempotent.
	if err := inNetns(ns, func() error {
		if err := AddAddress("hbv0", vip); err != nil {
			return err
		}
		return AddAddress("hbv0", vip)
	}); err != nil {
		t.Fatal(err)
	}
	if out := showAddr(); !strings.Contains(out, "inet 10.77.0.10/24") {
		t.Fatalf("VIP not on hbv0:\n%s", out)
	}
	var has bool
	if err := inNetns(ns, func() (err error) { has, err = HasAddress("hbv0", vip); return err }); err != nil || !has {
		t.Fatalf("HasAddress = %v, %v", has, err)
	}

	// Gratuitous ARP, captured on the other end of the veth.
	var capConn *packet.Conn
	var mac net.HardwareAddr
	if err := inNetns(ns, func() error {
		peer, err := net.InterfaceByName("hbv1")
		if err != nil {
			return err
		}
		if capConn, err = packet.Listen(peer, packet.Raw, unix.ETH_P_ARP, nil); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("hbv0")
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		return VIP{Interface: "hbv0", Prefix: vip, ARPCount: 3, ARPInterval: 10 * time.Millisecond}.Announce(context.Background())
	}); err != nil {
		t.Fatal(err)
	}
	defer capConn.Close()
	if err := capConn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for got := 0; got < 3; {
		n, _, err := capConn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("capture after %d gratuitous ARPs: %v", got, err)
		}
		var f ethernet.Frame
		if err := f.UnmarshalBinary(buf[:n]); err != nil || !bytes.Equal(f.Source, mac) {
			continue
		}
		a, err := parseARP(f.Payload)
		if err != nil {
			t.Fatalf("frame from hbv0: %v", err)
		}
		if !bytes.Equal(f.Destination, ethernet.Broadcast) || a.Op != arpRequest || a.SenderIP != vip.Addr() ||
			a.TargetIP != vip.Addr() || !bytes.Equal(a.SenderMAC, mac) {
			t.Fatalf("gratuitous ARP %v -> %v: %+v; want sender %v at %v", f.Source, f.Destination, a, vip.Addr(), mac)
		}
		got++
	}

	// Remove, twice: idempotent.
	if err := inNetns(ns, func() error {
		if err := RemoveAddress("hbv0", vip); err != nil {
			return err
		}
		return RemoveAddress("hbv0", vip)
	}); err != nil {
		t.Fatal(err)
	}
	if out := showAddr(); strings.Contains(out, "10.77.0.10") {
		t.Fatalf("VIP still on hbv0:\n%s", out)
	}

	// Errors name the interface; ARP is IPv4 only.
	err := inNetns(ns, func() error { return AddAddress("nosuchif0", vip) })
	if err == nil || !strings.Contains(err.Error(), "nosuchif0") {
		t.Fatalf("AddAddress on a missing interface: %v", err)
	}
	err = inNetns(ns, func() error {
		return SendGratuitousARP(context.Background(), "hbv0", netip.MustParseAddr("fd00::1"), 1, 0)
	})
	if err == nil || !strings.Contains(err.Error(), "IPv4 only") {
		t.Fatalf("IPv6 gratuitous ARP: %v", err)
	}
}

func TestUDPFreebindInNetns(t *testing.T) {
	ns := newTestNetns(t)
	local := netip.MustParseAddrPort("10.77.0.99:7999") // not configured anywhere
	if err := inNetns(ns, func() error {
		u, err := NewUDP([]UDPPath{{Local: local, Peer: netip.MustParseAddrPort("10.77.0.1:7999")}}, nil)
		if err != nil {
			return err
		}
		if got := u.LocalAddr(0); got != local {
			return errors.New("bound to " + got.String())
		}
		return u.Close()
	}); err != nil {
		t.Fatalf("bind to an address that is not up yet: %v", err)
	}
}
