package kernelbond

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"ftnas/bonding"
)

// decoded is one serialized request taken apart again.
type decoded struct {
	typ, flags uint16
	index      int32
	attrs      map[uint16][]byte // top level
	info       map[uint16][]byte // inside IFLA_LINKINFO
	data       map[uint16][]byte // inside IFLA_LINKINFO/IFLA_INFO_DATA
}

func attrMap(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	as, err := nl.ParseRouteAttr(b)
	if err != nil {
		t.Fatal(err)
	}
	m := map[uint16][]byte{}
	for _, a := range as {
		typ := a.Attr.Type & 0x3fff // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
		if _, dup := m[typ]; dup {
			t.Fatalf("attribute %d twice", typ)
		}
		m[typ] = a.Value
	}
	return m
}

func decode(t *testing.T, req *nl.NetlinkRequest) decoded {
	t.Helper()
	msgs, err := syscall.ParseNetlinkMessage(req.Serialize())
	if err != nil || len(msgs) != 1 {
		t.Fatalf("parse request: %d messages, %v", len(msgs), err)
	}
	m := msgs[0]
	if len(m.Data) < unix.SizeofIfInfomsg {
		t.Fatalf("no ifinfomsg: %d bytes", len(m.Data))
	}
	ifi := nl.DeserializeIfInfomsg(m.Data)
	d := decoded{typ: m.Header.Type, flags: m.Header.Flags, index: ifi.Index, attrs: attrMap(t, m.Data[unix.SizeofIfInfomsg:])}
	if li, ok := d.attrs[unix.IFLA_LINKINFO]; ok {
		d.info = attrMap(t, li)
		if dd, ok := d.info[nl.IFLA_INFO_DATA]; ok {
			d.data = attrMap(t, dd)
		}
	}
	return d
}

func u32(b []byte) uint32 { return binary.NativeEndian.Uint32(b) }

func TestCreateRequest(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 7}
	for _, tc := range []struct {
		mode     bonding.Mode
		wantMode uint8
	}{{bonding.LoadBalance, 0}, {bonding.Failover, 1}} {
		req, err := createRequest("bond0", tc.mode, 100*time.Millisecond, mac, 9000)
		if err != nil {
			t.Fatal(err)
		}
		d := decode(t, req)
		if d.typ != unix.RTM_NEWLINK || d.flags != unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK || d.index != 0 {
			t.Fatalf("%v: header type %d flags %#x index %d", tc.mode, d.typ, d.flags, d.index)
		}
		if got := string(d.attrs[unix.IFLA_IFNAME]); got != "bond0\x00" {
			t.Errorf("IFLA_IFNAME %q", got)
		}
		if got := u32(d.attrs[unix.IFLA_MTU]); got != 9000 {
			t.Errorf("IFLA_MTU %d", got)
		}
		if got := d.attrs[unix.IFLA_ADDRESS]; !bytes.Equal(got, mac) {
			t.Errorf("IFLA_ADDRESS %x", got)
		}
		if got := string(d.info[nl.IFLA_INFO_KIND]); got != "bond" {
			t.Errorf("IFLA_INFO_KIND %q", got)
		}
		if got := d.data[nl.IFLA_BOND_MODE]; len(got) != 1 || got[0] != tc.wantMode {
			t.Errorf("%v: IFLA_BOND_MODE %v, want %d", tc.mode, got, tc.wantMode)
		}
		if got := u32(d.data[nl.IFLA_BOND_MIIMON]); got != 100 {
			t.Errorf("IFLA_BOND_MIIMON %d ms", got)
		}
		if len(d.data) != 2 {
			t.Errorf("bond data has %d attributes, want mode and miimon", len(d.data))
		}
	}
	// Without MAC and MTU those attributes are left out (driver defaults).
	req, _ := createRequest("b1", bonding.LoadBalance, time.Second, nil, 0)
	d := decode(t, req)
	if _, ok := d.attrs[unix.IFLA_ADDRESS]; ok {
		t.Error("IFLA_ADDRESS without a MAC")
	}
	if _, ok := d.attrs[unix.IFLA_MTU]; ok {
		t.Error("IFLA_MTU without an MTU")
	}
	if got := u32(d.data[nl.IFLA_BOND_MIIMON]); got != 1000 {
		t.Errorf("miimon 1s = %d ms", got)
	}
}

func TestCreateRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   bonding.Mode
		miimon time.Duration
		want   string
	}{
		{"", bonding.LoadBalance, time.Second, `bad bond name ""`},
		{"averyveryverylongname", bonding.LoadBalance, time.Second, "bad bond name"},
		{"bond0", 0, time.Second, "no driver mode"},
		{"bond0", bonding.Failover, time.Microsecond, "miimon 1µs below"},
	} {
		if _, err := createRequest(tc.name, tc.mode, tc.miimon, nil, 0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("createRequest(%q, %v, %v) = %v, want %q", tc.name, tc.mode, tc.miimon, err, tc.want)
		}
	}
	if _, err := setModeRequest(3, 9); err == nil {
		t.Error("setModeRequest with a bad mode succeeded")
	}
}

func TestMemberRequests(t *testing.T) {
	d := decode(t, setMasterRequest(5, 9))
	if d.typ != unix.RTM_SETLINK || d.index != 5 || u32(d.attrs[unix.IFLA_MASTER]) != 9 || d.flags&unix.NLM_F_CREATE != 0 {
		t.Fatalf("enslave: %+v", d)
	}
	d = decode(t, setMasterRequest(5, 0))
	if d.index != 5 || u32(d.attrs[unix.IFLA_MASTER]) != 0 {
		t.Fatalf("release: %+v", d)
	}
	d = decode(t, activeSlaveRequest(9, 5))
	if d.typ != unix.RTM_NEWLINK || d.index != 9 || string(d.info[nl.IFLA_INFO_KIND]) != "bond" || u32(d.data[nl.IFLA_BOND_ACTIVE_SLAVE]) != 5 || d.flags&unix.NLM_F_CREATE != 0 {
		t.Fatalf("active slave: %+v", d)
	}
	req, err := setModeRequest(9, bonding.Failover)
	if err != nil {
		t.Fatal(err)
	}
	d = decode(t, req)
	if d.index != 9 || d.data[nl.IFLA_BOND_MODE][0] != 1 {
		t.Fatalf("set mode: %+v", d)
	}
	d = decode(t, deleteRequest(9))
	if d.typ != unix.RTM_DELLINK || d.index != 9 || len(d.attrs) != 0 {
		t.Fatalf("delete: %+v", d)
	}
}
