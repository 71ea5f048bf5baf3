package heartbeat

// Packet is one datagram received on a path.
type Packet struct {
	Path int
	Data []byte
}

// Transport carries heartbeat datagrams over the pair's paths. UDP
// implements it for real (NewUDP, Linux), MemNetwork in tests.
type Transport interface {
	// Send sends b on path. A failing path returns an error and is
	// otherwise just silent; the other paths are unaffected.
	Send(path int, b []byte) error
	// Packets delivers received datagrams. It is closed by Close.
	Packets() <-chan Packet
	// Close stops receiving and releases the transport.
	Close() error
}
