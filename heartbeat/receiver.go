package heartbeat

import (
	"errors"
	"fmt"
)

// Receiver drop reasons (besides Decode's errors).
var (
	ErrWrongCluster = errors.New("wrong cluster")
	ErrUnknownNode  = errors.New("unknown node")
	ErrWrongPath    = errors.New("wrong path")
	ErrReplay       = errors.New("replayed or stale")
)

// ReceiverStats counts what a Receiver accepted and dropped.
type ReceiverStats struct {
	Accepted     uint64
	Malformed    uint64 // bad length, magic, version or field
	BadMAC       uint64
	WrongCluster uint64
	UnknownNode  uint64
	WrongPath    uint64 // sent on another path than it arrived on
	Replayed     uint64 // not newer than the last accepted on its path
}

// Dropped is the total of all drop counters.
func (s ReceiverStats) Dropped() uint64 {
	return s.Malformed + s.BadMAC + s.WrongCluster + s.UnknownNode + s.WrongPath + s.Replayed
}

type recvKey struct {
	node uint32
	path int
}

type stamp struct{ epoch, seq uint64 }

// Receiver authenticates and filters incoming heartbeats. It is pure and
// not safe for concurrent use: run it in the goroutine that steps the
// machine.
//
// Per sender and path it remembers the highest (epoch, sequence) accepted
// and drops anything not strictly newer. A sender's epoch never goes back
// and its sequence grows within an epoch, also across restarts (Config.Seq).
// A sender that lost its persisted epoch is dropped until it adopts the
// current epoch, which it does on hearing this node.
type Receiver struct {
	key     []byte
	cluster uint64
	peers   map[uint32]bool
	last    map[recvKey]stamp
	stats   ReceiverStats
}

// NewReceiver returns a Receiver for the given cluster that accepts
// heartbeats from the listed peers only.
func NewReceiver(key []byte, clusterID uint64, peers ...uint32) (*Receiver, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("heartbeat: receiver: key is %d bytes, want at least %d", len(key), MinKeyLen)
	}
	r := &Receiver{
		key:     append([]byte(nil), key...),
		cluster: clusterID,
		peers:   make(map[uint32]bool, len(peers)),
		last:    make(map[recvKey]stamp),
	}
	for _, p := range peers {
		if p == 0 {
			return nil, fmt.Errorf("heartbeat: receiver: peer id 0 is reserved")
		}
		r.peers[p] = true
	}
	return r, nil
}

// Accept decodes a datagram that arrived on path. It returns the message,
// or an error saying why it was dropped (the drop is counted).
func (r *Receiver) Accept(path int, b []byte) (Msg, error) {
	m, err := Decode(r.key, b)
	if err != nil {
		if errors.Is(err, ErrMAC) {
			r.stats.BadMAC++
		} else {
			r.stats.Malformed++
		}
		return Msg{}, err
	}
	if m.ClusterID != r.cluster {
		r.stats.WrongCluster++
		return Msg{}, fmt.Errorf("heartbeat: receive: %w %d (want %d)", ErrWrongCluster, m.ClusterID, r.cluster)
	}
	if !r.peers[m.NodeID] {
		r.stats.UnknownNode++
		return Msg{}, fmt.Errorf("heartbeat: receive: %w %d", ErrUnknownNode, m.NodeID)
	}
	if int(m.Path) != path {
		r.stats.WrongPath++
		return Msg{}, fmt.Errorf("heartbeat: receive: %w: sent on %d, arrived on %d", ErrWrongPath, m.Path, path)
	}
	k := recvKey{m.NodeID, path}
	if last, ok := r.last[k]; ok && (m.Epoch < last.epoch || m.Epoch == last.epoch && m.Seq <= last.seq) {
		r.stats.Replayed++
		return Msg{}, fmt.Errorf("heartbeat: receive: %w: node %d path %d epoch %d seq %d, have epoch %d seq %d",
			ErrReplay, m.NodeID, path, m.Epoch, m.Seq, last.epoch, last.seq)
	}
	r.last[k] = stamp{m.Epoch, m.Seq}
	r.stats.Accepted++
	return m, nil
}

// Stats returns the counters.
func (r *Receiver) Stats() ReceiverStats { return r.stats }
