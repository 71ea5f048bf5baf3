//go:build linux

package main

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// neighbourMAC returns the MAC in this network namespace's neighbour
// (ARP) entry for ip: the node the client sends to, i.e. the one that
// answered the last read through the VIP.
func neighbourMAC(ip string) (string, error) {
	want, err := netip.ParseAddr(ip)
	if err != nil {
		return "", fmt.Errorf("neighbour entry: %q is not an IP address", ip)
	}
	neighs, err := netlink.NeighList(0, netlink.FAMILY_V4)
	if err != nil {
		return "", fmt.Errorf("neighbour entry for %s: list: %w", ip, err)
	}
	for _, n := range neighs {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == want && len(n.HardwareAddr) == 6 {
			return n.HardwareAddr.String(), nil
		}
	}
	return "", fmt.Errorf("no neighbour entry with a MAC for %s", ip)
}
