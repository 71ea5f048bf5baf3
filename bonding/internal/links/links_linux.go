package links

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"ftnas/bonding"
)

// Handle does link chores through a netlink handle (usually one opened in
// the bond's namespace).
type Handle struct {
	NL  *netlink.Handle
	Log *slog.Logger
}

// Link reports a NIC's facts.
func (h *Handle) Link(name string) (bonding.LinkInfo, error) {
	l, err := h.NL.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return bonding.LinkInfo{Name: name}, nil
		}
		return bonding.LinkInfo{}, fmt.Errorf("look up %s: %w", name, err)
	}
	a := l.Attrs()
	info := bonding.LinkInfo{
		Name: name, Exists: true,
		Up:      a.Flags&net.FlagUp != 0,
		Carrier: a.RawFlags&unix.IFF_LOWER_UP != 0,
		MAC:     a.HardwareAddr, MTU: a.MTU,
	}
	addrs, err := h.addrs(l)
	if err != nil {
		return bonding.LinkInfo{}, err
	}
	info.Addrs = addrs
	return info, nil
}

func (h *Handle) addrs(l netlink.Link) ([]netip.Prefix, error) {
	var list []netlink.Addr
	var err error
	for range 5 {
		if list, err = h.NL.AddrList(l, netlink.FAMILY_V4); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", l.Attrs().Name, err)
	}
	var out []netip.Prefix
	for _, a := range list {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		ones, _ := a.Mask.Size()
		if ok {
			out = append(out, netip.PrefixFrom(ip, ones))
		}
	}
	return out, nil
}

// Match sets a link's MTU and MAC (taking it down for the MAC if the driver
// needs that).
func (h *Handle) Match(l netlink.Link, mac net.HardwareAddr, mtu int) error {
	a := l.Attrs()
	if mtu > 0 && a.MTU != mtu {
		if err := h.NL.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("set MTU %d: %w", mtu, err)
		}
	}
	if len(mac) == 0 || bytes.Equal(a.HardwareAddr, mac) {
		return nil
	}
	err := h.NL.LinkSetHardwareAddr(l, mac)
	if errors.Is(err, unix.EBUSY) && a.Flags&net.FlagUp != 0 {
		if err = h.NL.LinkSetDown(l); err == nil {
			err = h.NL.LinkSetHardwareAddr(l, mac)
			if uerr := h.NL.LinkSetUp(l); err == nil {
				err = uerr
			}
		}
	}
	if err != nil {
		return fmt.Errorf("set MAC %v: %w", mac, err)
	}
	return nil
}

// RoutesVia lists the routes through a link other than those the kernel
// makes for its addresses, to move them with the addresses.
func (h *Handle) RoutesVia(l netlink.Link) []netlink.Route {
	rs, err := h.NL.RouteList(l, netlink.FAMILY_V4)
	if err != nil {
		h.Log.Warn("bonding: list routes", "link", l.Attrs().Name, "err", err)
	}
	var out []netlink.Route
	for _, r := range rs {
		if r.Protocol != unix.RTPROT_KERNEL && r.Table == unix.RT_TABLE_MAIN {
			out = append(out, r)
		}
	}
	return out
}

func (h *Handle) MoveAddrs(from, to netlink.Link, addrs []netip.Prefix, routes []netlink.Route) error {
	for _, p := range addrs {
		a := &netlink.Addr{IPNet: PrefixNet(p)}
		if from != nil {
			if err := h.NL.AddrDel(from, a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return fmt.Errorf("remove %v from %s: %w", p, from.Attrs().Name, err)
			}
		}
		if err := h.NL.AddrAdd(to, &netlink.Addr{IPNet: PrefixNet(p)}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add %v to %s: %w", p, to.Attrs().Name, err)
		}
	}
	for _, r := range routes {
		r.LinkIndex = to.Attrs().Index
		r.ILinkIndex = 0
		if err := h.NL.RouteReplace(&r); err != nil {
			h.Log.Warn("bonding: move route", "route", r.String(), "to", to.Attrs().Name, "err", err)
		}
	}
	return nil
}

// PrefixNet converts a prefix to the net.IPNet netlink takes.
func PrefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
