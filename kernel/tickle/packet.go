package tickle

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// TCP flags.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagPSH = 0x08
	flagACK = 0x10
)

const (
	ipv4HeaderLen = 20
	tcpHeaderLen  = 20
	protoTCP      = 6
	// markWindow is the window of every packet Tickle sends (CTDB uses the
	// same), so our own packets are recognisable in captures and firewalls.
	markWindow = 1234
	ttl        = 64
)

// segment is the part of a TCP/IPv4 packet Tickle cares about.
type segment struct {
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    uint8
	Window   uint16
}

// checksum is the Internet checksum (RFC 1071) of b, continuing from the
// partial sum sum.
func checksum(sum uint32, b []byte) uint16 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// pseudoSum is the partial sum of the IPv4 pseudo-header for a TCP
// segment of length n.
func pseudoSum(src, dst [4]byte, n int) uint32 {
	var sum uint32
	for _, a := range [][4]byte{src, dst} {
		sum += uint32(a[0])<<8 + uint32(a[1])
		sum += uint32(a[2])<<8 + uint32(a[3])
	}
	return sum + protoTCP + uint32(n)
}

// buildPacket returns a 40-byte IPv4+TCP packet without options or data,
// both checksums filled in. Src and Dst must be IPv4.
func buildPacket(s segment) ([]byte, error) {
	if !s.Src.Addr().Unmap().Is4() || !s.Dst.Addr().Unmap().Is4() {
		return nil, fmt.Errorf("tickle: build packet %v->%v: only IPv4 is supported", s.Src, s.Dst)
	}
	src, dst := s.Src.Addr().Unmap().As4(), s.Dst.Addr().Unmap().As4()
	p := make([]byte, ipv4HeaderLen+tcpHeaderLen)
	ip := p[:ipv4HeaderLen]
	ip[0] = 0x45 // version 4, 5 words
	binary.BigEndian.PutUint16(ip[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8] = ttl
	ip[9] = protoTCP
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(0, ip))

	tcp := p[ipv4HeaderLen:]
	binary.BigEndian.PutUint16(tcp[0:], s.Src.Port())
	binary.BigEndian.PutUint16(tcp[2:], s.Dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], s.Seq)
	binary.BigEndian.PutUint32(tcp[8:], s.Ack)
	tcp[12] = (tcpHeaderLen / 4) << 4
	tcp[13] = s.Flags
	binary.BigEndian.PutUint16(tcp[14:], s.Window)
	binary.BigEndian.PutUint16(tcp[16:], checksum(pseudoSum(src, dst, len(tcp)), tcp))
	return p, nil
}

// parsePacket decodes the IPv4 and TCP headers of p, as a raw socket
// delivers it. It checks lengths but not checksums (the kernel has).
func parsePacket(p []byte) (segment, error) {
	if len(p) < ipv4HeaderLen || p[0]>>4 != 4 {
		return segment{}, fmt.Errorf("tickle: parse packet: not an IPv4 packet (len %d)", len(p))
	}
	ihl := int(p[0]&0x0f) * 4
	if ihl < ipv4HeaderLen || len(p) < ihl+tcpHeaderLen {
		return segment{}, fmt.Errorf("tickle: parse packet: header length %d with %d bytes", ihl, len(p))
	}
	if p[9] != protoTCP {
		return segment{}, fmt.Errorf("tickle: parse packet: protocol %d is not TCP", p[9])
	}
	if binary.BigEndian.Uint16(p[6:])&0x1fff != 0 {
		return segment{}, fmt.Errorf("tickle: parse packet: non-first fragment")
	}
	src, dst := netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
	tcp := p[ihl:]
	if off := int(tcp[12]>>4) * 4; off < tcpHeaderLen {
		return segment{}, fmt.Errorf("tickle: parse packet: TCP data offset %d", off)
	}
	return segment{
		Src:    netip.AddrPortFrom(src, binary.BigEndian.Uint16(tcp[0:])),
		Dst:    netip.AddrPortFrom(dst, binary.BigEndian.Uint16(tcp[2:])),
		Seq:    binary.BigEndian.Uint32(tcp[4:]),
		Ack:    binary.BigEndian.Uint32(tcp[8:]),
		Flags:  tcp[13],
		Window: binary.BigEndian.Uint16(tcp[14:]),
	}, nil
}

// tickleSegment is the bogus ACK that makes the client show its numbers.
func tickleSegment(c Conn) segment {
	return segment{Src: c.VIP, Dst: c.Client, Flags: flagACK, Window: markWindow}
}

// resetFor returns the RST that kills c given the client's answer to a
// tickle, and whether answer is such an answer: an ACK (no SYN/RST) from
// c.Client to c.VIP that is not one of our own packets. The RST's
// sequence number is the client's acknowledgement number (its RCV.NXT).
func resetFor(c Conn, answer segment) (segment, bool) {
	if answer.Src != c.Client || answer.Dst != c.VIP {
		return segment{}, false
	}
	if answer.Flags&flagACK == 0 || answer.Flags&(flagSYN|flagRST) != 0 {
		return segment{}, false
	}
	return segment{
		Src:    c.VIP,
		Dst:    c.Client,
		Seq:    answer.Ack,
		Ack:    answer.Seq,
		Flags:  flagRST | flagACK,
		Window: markWindow,
	}, true
}
