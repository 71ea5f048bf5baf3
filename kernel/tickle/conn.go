package tickle

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
)

// Conn is one client TCP connection to the VIP.
type Conn struct {
	// VIP is the service side: virtual IP and service port (445, 2049).
	VIP netip.AddrPort `json:"vip"`
	// Client is the remote side.
	Client netip.AddrPort `json:"client"`
}

func (c Conn) String() string { return c.Client.String() + "->" + c.VIP.String() }

// stateEstablished is TCP_ESTABLISHED as /proc/net/tcp prints it.
const stateEstablished = "01"

// ParseProcNet returns the established connections whose local address is
// vip and whose local port is in ports (any port if ports is empty), read
// from the text of /proc/net/tcp or /proc/net/tcp6. Addresses are
// unmapped, so IPv4 clients of a dual-stack listener match an IPv4 vip.
// Malformed lines are an error naming the line.
func ParseProcNet(data []byte, vip netip.Addr, ports []uint16) ([]Conn, error) {
	vip = vip.Unmap()
	var out []Conn
	lines := bytes.Split(data, []byte("\n"))
	for i, line := range lines {
		if i == 0 {
			// Header: "  sl  local_address rem_address   st ..."
			if len(bytes.TrimSpace(line)) > 0 && !bytes.Contains(line, []byte("local_address")) {
				return nil, fmt.Errorf("tickle: parse proc net: line 1: not a /proc/net/tcp header: %.60q", line)
			}
			continue
		}
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 4 || !bytes.HasSuffix(f[0], []byte(":")) {
			return nil, fmt.Errorf("tickle: parse proc net: line %d: want \"sl: local remote state ...\", got %.80q", i+1, line)
		}
		local, err := parseHexAddrPort(f[1])
		if err != nil {
			return nil, fmt.Errorf("tickle: parse proc net: line %d: local address: %w", i+1, err)
		}
		remote, err := parseHexAddrPort(f[2])
		if err != nil {
			return nil, fmt.Errorf("tickle: parse proc net: line %d: remote address: %w", i+1, err)
		}
		if len(f[3]) != 2 {
			return nil, fmt.Errorf("tickle: parse proc net: line %d: state %.10q is not two hex digits", i+1, f[3])
		}
		if string(f[3]) != stateEstablished || local.Addr() != vip {
			continue
		}
		if len(ports) > 0 && !slices.Contains(ports, local.Port()) {
			continue
		}
		out = append(out, Conn{VIP: local, Client: remote})
	}
	return out, nil
}

// parseHexAddrPort decodes "0100007F:0277" (IPv4) or 32 hex digits plus a
// port (IPv6): the kernel prints each 32-bit address word and the port as
// host-order numbers.
func parseHexAddrPort(b []byte) (netip.AddrPort, error) {
	a, p, ok := bytes.Cut(b, []byte(":"))
	if !ok || len(p) != 4 {
		return netip.AddrPort{}, fmt.Errorf("%.50q is not ADDR:PORT in hex", b)
	}
	var pb [2]byte
	if _, err := hex.Decode(pb[:], p); err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %.10q: %w", p, err)
	}
	port := binary.BigEndian.Uint16(pb[:])
	var raw [16]byte
	var n int
	switch len(a) {
	case 8, 32:
		n = len(a) / 2
	default:
		return netip.AddrPort{}, fmt.Errorf("address %.40q has %d hex digits, want 8 or 32", a, len(a))
	}
	if _, err := hex.Decode(raw[:n], a); err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %.40q: %w", a, err)
	}
	// Each word was printed as a host-order number: turn the big-endian
	// reading of its digits back into the in-memory (network) bytes.
	for w := 0; w < n; w += 4 {
		binary.NativeEndian.PutUint32(raw[w:w+4], binary.BigEndian.Uint32(raw[w:w+4]))
	}
	var addr netip.Addr
	if n == 4 {
		addr = netip.AddrFrom4([4]byte(raw[:4]))
	} else {
		addr = netip.AddrFrom16(raw).Unmap()
	}
	return netip.AddrPortFrom(addr, port), nil
}
