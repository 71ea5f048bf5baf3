// Command guesttest runs inside a qemu guest for kernelbond's qemu test.
//
// The guest has three virtio NICs on one qemu hub, with ascending MACs: the
// two lowest are bond members (the first is the primary), the third is an
// observer that sees every frame the bond puts on the wire. For
// balance-rr and then active-backup it builds the bond with bonding.Agent
// over kernelbond.Datapath, checks sysfs (slaves, mode, miimon,
// active_slave) against what the controller asked for, sends frames
// through the bond and counts them per member (tx_packets) and on the
// observer, then asks the host to cut a member ("bondtest: cut <nic>
// mac=<mac>", answered with QMP set_link off), checks the driver and the
// controller took it out, asks for it back ("bondtest: restore ...") and
// checks it rejoined. Last, with the observer in a network namespace of
// its own answering ARP for 10.99.0.2, a balance-rr bond whose controller
// probes it: the second member's path dies while its carrier stays up (tc
// clsact/matchall drops in both directions), and the controller must find
// it by its probes and the driver stop using it, then take it back once
// the filters are gone. It prints "bondtest: summary {json}" and exits
// non-zero on the first failure.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(); err != nil {
		fmt.Println("bondtest: FAILED:", err)
		os.Exit(1)
	}
}
