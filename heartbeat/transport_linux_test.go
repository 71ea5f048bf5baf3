//go:build linux

package heartbeat

import (
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// countingTransport counts the datagrams a node sent.
type countingTransport struct {
	Transport
	sent atomic.Uint64
}

func (c *countingTransport) Send(path int, b []byte) error {
	err := c.Transport.Send(path, b)
	if err == nil {
		c.sent.Add(1)
	}
	return err
}

// freePorts reserves n UDP ports on 127.0.0.1 by binding and releasing
// them.
func freePorts(t *testing.T, n int) []uint16 {
	t.Helper()
	var ports []uint16
	var conns []*net.UDPConn
	for range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		ports = append(ports, uint16(c.LocalAddr().(*net.UDPAddr).Port))
	}
	for _, c := range conns {
		c.Close()
	}
	return ports
}

// udpPair returns two UDP transports on loopback, two paths each.
func udpPair(t *testing.T) (a, b *UDP) {
	t.Helper()
	p := freePorts(t, 4)
	lo := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port) }
	a, err := NewUDP([]UDPPath{{lo(p[0]), lo(p[2])}, {lo(p[1]), lo(p[3])}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err = NewUDP([]UDPPath{{lo(p[2]), lo(p[0])}, {lo(p[3]), lo(p[1])}}, nil)
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func recvPacket(t *testing.T, tr Transport) Packet {
	t.Helper()
	select {
	case p, ok := <-tr.Packets():
		if !ok {
			t.Fatal("packets channel closed")
		}
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no datagram within 5s")
	}
	return Packet{}
}

func TestUDPTransport(t *testing.T) {
	a, b := udpPair(t)
	rx, err := NewReceiver(testKey, testCluster, 1)
	if err != nil {
		t.Fatal(err)
	}
	for path := range 2 {
		msg := Msg{ClusterID: testCluster, NodeID: 1, Path: uint8(path), State: StateMaster, Epoch: 2, Seq: 10}
		if err := a.Send(path, Encode(testKey, msg)); err != nil {
			t.Fatal(err)
		}
		p := recvPacket(t, b)
		if p.Path != path {
			t.Fatalf("sent on path %d, arrived on %d", path, p.Path)
		}
		got, err := rx.Accept(p.Path, p.Data)
		if err != nil || got != msg {
			t.Fatalf("Accept: %+v, %v; want %+v", got, err, msg)
		}
	}

	// A datagram from a stranger is dropped before the receiver.
	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	if _, err := stranger.WriteToUDPAddrPort([]byte("hello"), b.LocalAddr(0)); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(0, []byte("after the stranger")); err != nil {
		t.Fatal(err)
	}
	if p := recvPacket(t, b); string(p.Data) != "after the stranger" {
		t.Fatalf("got %q", p.Data)
	}
	if s := b.Stats(); s.Foreign != 1 || s.Received != 3 {
		t.Fatalf("stats %+v, want 1 foreign and 3 received", s)
	}

	if err := a.Send(2, nil); err == nil {
		t.Fatal("send on path 2 of 2 accepted")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-b.Packets(); ok {
		t.Fatal("packets channel open after Close")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNewUDPErrors(t *testing.T) {
	used, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer used.Close()
	good := UDPPath{netip.MustParseAddrPort("127.0.0.1:0"), netip.MustParseAddrPort("127.0.0.1:9")}
	for name, paths := range map[string][]UDPPath{
		"no paths":     nil,
		"no peer":      {{Local: good.Local}},
		"peer port 0":  {{good.Local, netip.MustParseAddrPort("127.0.0.1:0")}},
		"too many":     {good, good, good, good, good},
		"address used": {good, {used.LocalAddr().(*net.UDPAddr).AddrPort(), good.Peer}},
	} {
		if u, err := NewUDP(paths, nil); err == nil {
			u.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestNodePairOverUDP runs the two-node scenario's first step over real
// sockets: the primary becomes master, the standby its slave.
func TestNodePairOverUDP(t *testing.T) {
	a, b := udpPair(t)
	ca, cb := &countingTransport{Transport: a}, &countingTransport{Transport: b}
	np := newNodePairOn(t, [2]Transport{ca, cb})
	// Fake time runs far faster than loopback delivers: before each next
	// tick, wait until every datagram sent so far has reached the peer's
	// socket and the peer's node has taken it off the queue.
	np.settle = func() {
		deadline := time.Now().Add(5 * time.Second)
		for b.Stats().Received < ca.sent.Load() || a.Stats().Received < cb.sent.Load() ||
			len(a.Packets()) > 0 || len(b.Packets()) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("datagrams not delivered within 5s: a %+v sent %d, b %+v sent %d",
					a.Stats(), ca.sent.Load(), b.Stats(), cb.sent.Load())
			}
			runtime.Gosched()
		}
	}
	np.waitFor("n1 master, n2 slave over UDP", 400, func() bool {
		return np.st(0).State == StateMaster && np.st(1).State == StateSlave && np.st(1).Epoch == 2
	})
	if rs := np.nodes[1].node.ReceiverStats(); rs.Accepted == 0 || rs.Dropped() != 0 {
		t.Fatalf("receiver %+v", rs)
	}
}
