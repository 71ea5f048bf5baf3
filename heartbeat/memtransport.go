package heartbeat

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
)

// MemNetwork is an in-memory network for tests: nodes attach transports,
// and the test cuts paths per direction, or drops a share of datagrams.
// Delivery is synchronous (Send puts the datagram in the receiver's
// buffered channel before returning) and deterministic for a given seed.
type MemNetwork struct {
	mu    sync.Mutex
	eps   map[uint32]*MemTransport
	cut   map[memLink]bool
	loss  float64
	rng   *rand.Rand
	stats MemStats
}

type memLink struct {
	from, to uint32
	path     int
}

// MemStats counts datagrams on a MemNetwork.
type MemStats struct {
	Sent, Delivered, Cut, Lost, Overflow uint64
}

// MemQueue is how many datagrams a MemTransport buffers.
const MemQueue = 1024

// NewMemNetwork returns an empty network; seed drives the random loss.
func NewMemNetwork(seed uint64) *MemNetwork {
	return &MemNetwork{
		eps: make(map[uint32]*MemTransport),
		cut: make(map[memLink]bool),
		rng: rand.New(rand.NewPCG(seed, 0x6d656d6e6574)),
	}
}

// Attach returns node's transport towards peer, with paths paths.
// Attaching a node again replaces (and closes) its old transport.
func (n *MemNetwork) Attach(node, peer uint32, paths int) *MemTransport {
	t := &MemTransport{net: n, node: node, peer: peer, paths: paths, ch: make(chan Packet, MemQueue)}
	n.mu.Lock()
	old := n.eps[node]
	n.eps[node] = t
	n.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return t
}

// Cut cuts (or restores) the path from one node to another, one direction.
func (n *MemNetwork) Cut(from, to uint32, path int, cut bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cut {
		n.cut[memLink{from, to, path}] = true
	} else {
		delete(n.cut, memLink{from, to, path})
	}
}

// CutPath cuts (or restores) path in both directions between a and b.
func (n *MemNetwork) CutPath(a, b uint32, path int, cut bool) {
	n.Cut(a, b, path, cut)
	n.Cut(b, a, path, cut)
}

// IsCut reports whether the path from one node to another is cut.
func (n *MemNetwork) IsCut(from, to uint32, path int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cut[memLink{from, to, path}]
}

// Heal restores every path and stops random loss.
func (n *MemNetwork) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cut)
	n.loss = 0
}

// SetLoss drops each datagram with probability p.
func (n *MemNetwork) SetLoss(p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.loss = p
}

// Loss is the current loss probability.
func (n *MemNetwork) Loss() float64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.loss
}

// Stats returns the counters.
func (n *MemNetwork) Stats() MemStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

func (n *MemNetwork) deliver(from, to uint32, path int, b []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stats.Sent++
	dst := n.eps[to]
	switch {
	case n.cut[memLink{from, to, path}]:
		n.stats.Cut++
		return
	case n.loss > 0 && n.rng.Float64() < n.loss:
		n.stats.Lost++
		return
	case dst == nil || dst.closed || path >= dst.paths:
		n.stats.Cut++
		return
	}
	select {
	case dst.ch <- Packet{Path: path, Data: append([]byte(nil), b...)}:
		n.stats.Delivered++
	default:
		n.stats.Overflow++
	}
}

// MemTransport is one node's Transport on a MemNetwork.
type MemTransport struct {
	net        *MemNetwork
	node, peer uint32
	paths      int
	ch         chan Packet
	closed     bool // guarded by net.mu
}

var errMemClosed = errors.New("heartbeat: mem transport: closed")

// Send implements Transport.
func (t *MemTransport) Send(path int, b []byte) error {
	if path < 0 || path >= t.paths {
		return fmt.Errorf("heartbeat: mem transport: send on path %d: have %d paths", path, t.paths)
	}
	t.net.mu.Lock()
	closed := t.closed
	t.net.mu.Unlock()
	if closed {
		return errMemClosed
	}
	t.net.deliver(t.node, t.peer, path, b)
	return nil
}

// Packets implements Transport.
func (t *MemTransport) Packets() <-chan Packet { return t.ch }

// Drain discards every queued datagram and returns how many there were.
func (t *MemTransport) Drain() int {
	n := 0
	for {
		select {
		case _, ok := <-t.ch:
			if !ok {
				return n
			}
			n++
		default:
			return n
		}
	}
}

// Close implements Transport.
func (t *MemTransport) Close() error {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	close(t.ch)
	if t.net.eps[t.node] == t {
		delete(t.net.eps, t.node)
	}
	return nil
}
