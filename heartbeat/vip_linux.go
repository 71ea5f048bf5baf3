//go:build linux

package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddAddress adds vip (address and prefix length, e.g. 192.0.2.10/24) to the
// interface ifname with netlink. Adding an address that is already there
// is not an error.
func AddAddress(ifname string, vip netip.Prefix) error {
	link, addr, err := vipAddr(ifname, vip)
	if err != nil {
		return fmt.Errorf("heartbeat: add vip %s on %s: %w", vip, ifname, err)
	}
	if err := netlink.AddrAdd(link, addr); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("heartbeat: add vip %s on %s: %w", vip, ifname, err)
	}
	return nil
}

// RemoveAddress removes vip from ifname. Removing an address that is not there
// is not an error (nasd removes a stale VIP at start).
func RemoveAddress(ifname string, vip netip.Prefix) error {
	link, addr, err := vipAddr(ifname, vip)
	if err != nil {
		return fmt.Errorf("heartbeat: remove vip %s from %s: %w", vip, ifname, err)
	}
	if err := netlink.AddrDel(link, addr); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("heartbeat: remove vip %s from %s: %w", vip, ifname, err)
	}
	return nil
}

// HasAddress reports whether vip's address is configured on ifname.
func HasAddress(ifname string, vip netip.Prefix) (bool, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return false, fmt.Errorf("heartbeat: list addresses of %s: %w", ifname, err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return false, fmt.Errorf("heartbeat: list addresses of %s: %w", ifname, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == vip.Addr() {
			return true, nil
		}
	}
	return false, nil
}

func vipAddr(ifname string, vip netip.Prefix) (netlink.Link, *netlink.Addr, error) {
	if !vip.IsValid() {
		return nil, nil, errors.New("invalid prefix")
	}
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, nil, err
	}
	ip := vip.Addr()
	return link, &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(vip.Bits(), ip.BitLen())}}, nil
}

// SendGratuitousARP announces that ip is at ifname's MAC address: count
// broadcast ARP requests (sender and target IP both ip), the first at
// once, the others interval apart. It returns early with ctx's error.
func SendGratuitousARP(ctx context.Context, ifname string, ip netip.Addr, count int, interval time.Duration) error {
	ip = ip.Unmap()
	if !ip.Is4() {
		return fmt.Errorf("heartbeat: gratuitous arp for %s on %s: ARP is IPv4 only", ip, ifname)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("heartbeat: gratuitous arp for %s on %s: %w", ip, ifname, err)
	}
	frame, err := gratuitousARPFrame(ifi.HardwareAddr, ip)
	if err != nil {
		return fmt.Errorf("heartbeat: gratuitous arp for %s on %s: %w", ip, ifname, err)
	}
	conn, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
	if err != nil {
		return fmt.Errorf("heartbeat: gratuitous arp for %s on %s: open packet socket: %w", ip, ifname, err)
	}
	defer conn.Close()
	dst := &packet.Addr{HardwareAddr: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := range count {
		if i > 0 {
			timer.Reset(interval)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		}
		if _, err := conn.WriteTo(frame, dst); err != nil {
			return fmt.Errorf("heartbeat: gratuitous arp for %s on %s: send %d of %d: %w", ip, ifname, i+1, count, err)
		}
	}
	return nil
}

// VIP is the virtual IP on one interface, with its announcement policy.
// It implements VIPController for Node.
type VIP struct {
	Interface string
	Prefix    netip.Prefix // the VIP and its prefix length
	// ARPCount gratuitous ARPs go out ARPInterval apart after each Add
	// (default 5, 200 ms apart).
	ARPCount    int
	ARPInterval time.Duration
}

func (v VIP) arp() (int, time.Duration) {
	n, d := v.ARPCount, v.ARPInterval
	if n <= 0 {
		n = 5
	}
	if d <= 0 {
		d = 200 * time.Millisecond
	}
	return n, d
}

// Add adds the VIP.
func (v VIP) Add(context.Context) error { return AddAddress(v.Interface, v.Prefix) }

// Remove removes the VIP.
func (v VIP) Remove(context.Context) error { return RemoveAddress(v.Interface, v.Prefix) }

// Announce sends the gratuitous ARPs; it blocks until all are sent.
func (v VIP) Announce(ctx context.Context) error {
	n, d := v.arp()
	return SendGratuitousARP(ctx, v.Interface, v.Prefix.Addr(), n, d)
}
