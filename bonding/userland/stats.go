package userland

// PortStats counts one member's traffic.
type PortStats struct {
	RxFrames, RxBytes, RxDropped, ARPAnswered uint64
	TxFrames, TxBytes, TxDropped              uint64
	TapWriteErrors                            uint64
	Member                                    bool
}

// Stats are the datapath's counters.
type Stats struct {
	Ports    map[string]PortStats
	NoMember uint64 // frames from the TAP dropped because no member was healthy
}
