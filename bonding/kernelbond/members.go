package kernelbond

import (
	"slices"

	"ftnas/bonding"
)

// member is one of the controller's members as the driver has it: a slave
// of the bond, or forced out of it.
type member struct {
	Name string
	// Out: the datapath released it from the bond because the controller
	// took it out of the rotation (its detector failed it, or its carrier
	// is gone); it is still the controller's member and still probed.
	Out bool
}

// move is one change to the driver's slave list.
type move struct {
	NIC     string
	Enslave bool // false: release
}

// plan returns the moves that make the driver's slaves follow a SetActive
// of the controller, in order.
//
// Load-balance: the driver's rotation is its slaves with carrier, so the
// members the controller lists are enslaved and the others released: the
// driver stops sending through a member whose carrier is up but whose path
// is dead. Members are enslaved before others are released, and when the
// controller lists none nothing moves: a bond that lost its last slave
// takes a random MAC and then the next slave's, and the bond's identity
// must not change.
//
// Failover: the driver sends through its active slave only, which the
// datapath sets to the controller's choice; every member is a slave, so
// the driver can fail over by itself on a carrier loss.
func plan(ms []member, mode bonding.Mode, active []string) []move {
	var out []move
	switch mode {
	case bonding.Failover:
		for _, m := range ms {
			if m.Out {
				out = append(out, move{NIC: m.Name, Enslave: true})
			}
		}
	case bonding.LoadBalance:
		if !slices.ContainsFunc(ms, func(m member) bool { return slices.Contains(active, m.Name) }) {
			return nil
		}
		for _, m := range ms {
			if m.Out && slices.Contains(active, m.Name) {
				out = append(out, move{NIC: m.Name, Enslave: true})
			}
		}
		for _, m := range ms {
			if !m.Out && !slices.Contains(active, m.Name) {
				out = append(out, move{NIC: m.Name})
			}
		}
	}
	return out
}
