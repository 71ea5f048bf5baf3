package heartbeat

import "net/netip"

// UDPPath is one heartbeat path: this node's socket address and the
// peer's. Local's IP need not be configured yet (the socket is bound with
// IP_FREEBIND), so a path may use an address that comes up later.
type UDPPath struct {
	Local netip.AddrPort
	Peer  netip.AddrPort
}

// UDPStats counts what a UDP transport dropped before the Receiver.
type UDPStats struct {
	Received   uint64
	Foreign    uint64 // from another address than the path's peer
	SendErrors uint64
	ReadErrors uint64
	QueueDrops uint64 // the consumer was too slow
}
