package tickle

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

const procHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

// Lines as a little-endian kernel prints them. 10.77.0.100 = 64004D0A,
// 10.77.0.1 = 01004D0A, port 445 = 01BD, 51234 = C822, 2049 = 0801.
const procTCP = procHeader +
	"   0: 64004D0A:01BD 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0\n" +
	"   1: 64004D0A:01BD 01004D0A:C822 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1\n" +
	"   2: 64004D0A:0801 02004D0A:0320 01 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 20 4 30 10 -1\n" +
	"   3: 64004D0A:0016 01004D0A:C823 01 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 20 4 30 10 -1\n" +
	"   4: 64004D0A:01BD 03004D0A:C824 06 00000000:00000000 00:00000000 00000000     0        0 0 3 0000000000000000\n" +
	"   5: 0100007F:01BD 0100007F:C825 01 00000000:00000000 00:00000000 00000000     0        0 1005 1 0000000000000000 20 4 30 10 -1\n"

const procTCP6 = procHeader +
	"   0: 0000000000000000FFFF000064004D0A:01BD 0000000000000000FFFF000001004D0A:C830 01 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 20 4 30 10 -1\n" +
	"   1: B80D0120000000000000000001000000:01BD B80D0120000000000000000002000000:C831 01 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 20 4 30 10 -1\n"

func littleEndian() bool {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	return b[0] == 1
}

func TestParseProcNet(t *testing.T) {
	if !littleEndian() {
		t.Skip("sample lines are as a little-endian kernel prints them")
	}
	vip := netip.MustParseAddr("10.77.0.100")
	conn := func(v, c string) Conn {
		return Conn{VIP: netip.MustParseAddrPort(v), Client: netip.MustParseAddrPort(c)}
	}
	for _, tc := range []struct {
		name  string
		data  string
		vip   netip.Addr
		ports []uint16
		want  []Conn
	}{
		{"smb+nfs", procTCP, vip, []uint16{445, 2049}, []Conn{
			conn("10.77.0.100:445", "10.77.0.1:51234"),
			conn("10.77.0.100:2049", "10.77.0.2:800"),
		}},
		{"smb only", procTCP, vip, []uint16{445}, []Conn{conn("10.77.0.100:445", "10.77.0.1:51234")}},
		{"all ports", procTCP, vip, nil, []Conn{
			conn("10.77.0.100:445", "10.77.0.1:51234"),
			conn("10.77.0.100:2049", "10.77.0.2:800"),
			conn("10.77.0.100:22", "10.77.0.1:51235"),
		}},
		{"other vip", procTCP, netip.MustParseAddr("10.77.0.101"), nil, nil},
		{"tcp6 mapped", procTCP6, vip, []uint16{445}, []Conn{conn("10.77.0.100:445", "10.77.0.1:51248")}},
		{"tcp6 mapped vip", procTCP6, netip.MustParseAddr("::ffff:10.77.0.100"), []uint16{445}, []Conn{conn("10.77.0.100:445", "10.77.0.1:51248")}},
		{"tcp6 native", procTCP6, netip.MustParseAddr("2001:db8::1"), nil, []Conn{conn("[2001:db8::1]:445", "[2001:db8::2]:51249")}},
		{"header only", procHeader, vip, nil, nil},
		{"empty", "", vip, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProcNet([]byte(tc.data), tc.vip, tc.ports)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestParseProcNetErrors(t *testing.T) {
	vip := netip.MustParseAddr("10.77.0.100")
	for _, tc := range []struct{ name, data, wantErr string }{
		{"no header", "   0: 64004D0A:01BD 01004D0A:C822 01 0\n", "line 1"},
		{"short line", procHeader + "   0: 64004D0A:01BD\n", "line 2"},
		{"no colon", procHeader + "   0 64004D0A:01BD 01004D0A:C822 01\n", "line 2"},
		{"bad hex", procHeader + "   0: 64004D0X:01BD 01004D0A:C822 01\n", "local address"},
		{"bad remote", procHeader + "   0: 64004D0A:01BD 01004D0A:C8 01\n", "remote address"},
		{"bad length", procHeader + "   0: 64004D0A00:01BD 01004D0A:C822 01\n", "hex digits"},
		{"bad state", procHeader + "   0: 64004D0A:01BD 01004D0A:C822 1\n", "state"},
		{"bad port", procHeader + "   0: 64004D0A:01ZZ 01004D0A:C822 01\n", "port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseProcNet([]byte(tc.data), vip, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want mention of %q", err, tc.wantErr)
			}
		})
	}
}

func FuzzParseProcNet(f *testing.F) {
	f.Add([]byte(procTCP), []byte{10, 77, 0, 100}, uint16(445))
	f.Add([]byte(procTCP6), []byte{10, 77, 0, 100}, uint16(0))
	f.Add([]byte(procHeader+"   0: 64004D0A:01BD 01004D0A:C822 01\n"), []byte{10, 77, 0, 100}, uint16(445))
	f.Add([]byte("x"), []byte{}, uint16(1))
	f.Fuzz(func(t *testing.T, data, ip []byte, port uint16) {
		vip, _ := netip.AddrFromSlice(ip)
		var ports []uint16
		if port != 0 {
			ports = []uint16{port}
		}
		conns, err := ParseProcNet(data, vip, ports)
		if err != nil {
			if conns != nil {
				t.Fatal("conns with error")
			}
			return
		}
		for _, c := range conns {
			if c.VIP.Addr() != vip.Unmap() || (port != 0 && c.VIP.Port() != port) {
				t.Fatalf("%v does not match vip %v port %d", c, vip, port)
			}
			if c.Client.Addr().Is4In6() {
				t.Fatalf("%v: client not unmapped", c)
			}
		}
	})
}
