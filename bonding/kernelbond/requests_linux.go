package kernelbond

import (
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"ftnas/bonding"
)

// Linux bonding modes (IFLA_BOND_MODE).
const (
	modeBalanceRR    = 0
	modeActiveBackup = 1
)

// driverMode maps a bond mode to the driver's.
func driverMode(m bonding.Mode) (uint8, error) {
	switch m {
	case bonding.LoadBalance:
		return modeBalanceRR, nil
	case bonding.Failover:
		return modeActiveBackup, nil
	}
	return 0, fmt.Errorf("kernelbond: no driver mode for %v", m)
}

func ifinfo(index int32) *nl.IfInfomsg {
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = index
	return msg
}

// bondData adds IFLA_LINKINFO{kind bond, data{...}} to req and returns the
// data attribute to fill.
func bondData(req *nl.NetlinkRequest) *nl.RtAttr {
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bond"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	req.AddData(info)
	return data
}

// createRequest creates bond device name in mode m with the MII monitor
// polling every miimon, the given MAC (nil: the driver's choice, which is
// the first slave's) and MTU (0: default).
func createRequest(name string, m bonding.Mode, miimon time.Duration, mac net.HardwareAddr, mtu int) (*nl.NetlinkRequest, error) {
	mode, err := driverMode(m)
	if err != nil {
		return nil, err
	}
	if name == "" || len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("kernelbond: bad bond name %q", name)
	}
	if miimon < time.Millisecond {
		return nil, fmt.Errorf("kernelbond: miimon %v below the driver's 1ms resolution", miimon)
	}
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(ifinfo(0))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	if mtu > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu))))
	}
	if len(mac) > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_ADDRESS, []byte(mac)))
	}
	data := bondData(req)
	data.AddRtAttr(nl.IFLA_BOND_MODE, nl.Uint8Attr(mode))
	data.AddRtAttr(nl.IFLA_BOND_MIIMON, nl.Uint32Attr(uint32(miimon/time.Millisecond)))
	return req, nil
}

// setModeRequest changes an existing bond's mode (the driver wants the
// bond down for it).
func setModeRequest(bond int32, m bonding.Mode) (*nl.NetlinkRequest, error) {
	mode, err := driverMode(m)
	if err != nil {
		return nil, err
	}
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	req.AddData(ifinfo(bond))
	bondData(req).AddRtAttr(nl.IFLA_BOND_MODE, nl.Uint8Attr(mode))
	return req, nil
}

// setMasterRequest enslaves link slave to bond master; master 0 releases
// it.
func setMasterRequest(slave, master int32) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK)
	req.AddData(ifinfo(slave))
	req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(master))))
	return req
}

// activeSlaveRequest makes slave the active member of an active-backup
// bond.
func activeSlaveRequest(bond, slave int32) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	req.AddData(ifinfo(bond))
	bondData(req).AddRtAttr(nl.IFLA_BOND_ACTIVE_SLAVE, nl.Uint32Attr(uint32(slave)))
	return req
}

// deleteRequest deletes the bond device.
func deleteRequest(bond int32) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
	req.AddData(ifinfo(bond))
	return req
}
