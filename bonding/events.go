package bonding

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// LinkInfo is what the datapath knows about a NIC when it is added.
type LinkInfo struct {
	Name    string
	Exists  bool
	Up      bool // administratively up
	Carrier bool // lower layer up
	MAC     net.HardwareAddr
	MTU     int
	Addrs   []netip.Prefix // IPv4 addresses with their netmasks
}

// Identity is what the bond carries: taken from the primary NIC.
type Identity struct {
	From  string // the NIC it was taken from
	MAC   net.HardwareAddr
	MTU   int
	Addrs []netip.Prefix
}

// IPv4 returns the first IPv4 address, or the zero Addr.
func (id Identity) IPv4() netip.Addr {
	for _, p := range id.Addrs {
		if p.Addr().Is4() {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

func (id Identity) clone() Identity {
	id.MAC = slices.Clone(id.MAC)
	id.Addrs = slices.Clone(id.Addrs)
	return id
}

// Event is an input to Controller.Step.
type Event interface{ isEvent() }

// Tick advances the controller's clock to Now and runs the detector, the
// switcher and the probe schedule. Every other event happens at the time of
// the last Tick.
type Tick struct{ Now time.Time }

// AddNIC asks to add a NIC (nasctl bond add), with the datapath's facts
// about it.
type AddNIC struct{ Link LinkInfo }

// RemoveNIC asks to remove a NIC (nasctl bond rm).
type RemoveNIC struct{ NIC string }

// SetMode asks to change the mode (nasctl bond mode).
type SetMode struct{ Mode Mode }

// Carrier reports a NIC's carrier (and administrative state) changing:
// Up is true when the NIC is up and has carrier.
type Carrier struct {
	NIC string
	Up  bool
}

// Received reports that frames arrived through NIC since the last report
// (probe replies or any other traffic). It keeps a member alive (the MII
// detector) but does not admit a NIC being checked: see ProbeAnswered.
type Received struct{ NIC string }

// ProbeAnswered reports that an ARP reply from the probe target to the
// bond's address (the answer to a SendProbe) arrived through NIC since the
// last report. Only this admits a NIC being checked; for a member it counts
// as Received.
type ProbeAnswered struct{ NIC string }

// Failed reports that the datapath could not execute Action.
type Failed struct {
	Action Action
	Err    error
}

func (Tick) isEvent()          {}
func (AddNIC) isEvent()        {}
func (RemoveNIC) isEvent()     {}
func (SetMode) isEvent()       {}
func (Carrier) isEvent()       {}
func (Received) isEvent()      {}
func (ProbeAnswered) isEvent() {}
func (Failed) isEvent()        {}

// Action is an output of Controller.Step, for the datapath (or, for Done
// and Changed, for the caller) to carry out in order. When one fails the
// driver feeds back a Failed event at once; after a failed Prepare,
// CreateBond or Enslave it drops the rest of the batch (the controller's
// answer to Failed replaces it), after any other failure it goes on.
type Action interface{ isAction() }

// Prepare makes NIC match the bond (MAC and MTU) and opens it for probing;
// it is not yet a member.
type Prepare struct {
	NIC string
	MAC net.HardwareAddr
	MTU int
}

// Release undoes Prepare: the NIC gets its own MAC and MTU back.
type Release struct {
	NIC string
	MAC net.HardwareAddr
	MTU int
}

// CreateBond creates the bond interface with the identity, moving the
// addresses from Identity.From to it.
type CreateBond struct {
	Identity Identity
	Mode     Mode
}

// DestroyBond removes the bond interface and gives its addresses to To,
// which becomes a plain interface again.
type DestroyBond struct {
	Identity Identity
	To       string
}

// Enslave makes a prepared NIC a member: frames arriving through it now
// belong to the bond.
type Enslave struct{ NIC string }

// Unenslave returns a member to a prepared, non-member NIC.
type Unenslave struct{ NIC string }

// SetActive sets the members that carry outgoing traffic, in rotation
// order, and the mode they are used in (one NIC in Failover mode). Empty
// means none is healthy: outgoing frames are dropped.
type SetActive struct {
	NICs []string
	Mode Mode
}

// SendProbe sends one ARP request for Target through NIC, from the bond's
// MAC and address.
type SendProbe struct {
	NIC    string
	Target netip.Addr
	SrcMAC net.HardwareAddr
	SrcIP  netip.Addr
}

// Announce sends gratuitous ARP for the bond's addresses through NIC, so
// neighbours and switches learn the new path.
type Announce struct {
	NIC      string
	Identity Identity
}

// Done answers a request: Op is "add", "remove" or "mode"; Err is nil on
// success.
type Done struct {
	Op  string
	NIC string
	Err error
}

// Changed reports a NIC's state changing, for logs and status watchers.
type Changed struct {
	NIC      string
	From, To State
	Reason   string
}

func (Prepare) isAction()     {}
func (Release) isAction()     {}
func (CreateBond) isAction()  {}
func (DestroyBond) isAction() {}
func (Enslave) isAction()     {}
func (Unenslave) isAction()   {}
func (SetActive) isAction()   {}
func (SendProbe) isAction()   {}
func (Announce) isAction()    {}
func (Done) isAction()        {}
func (Changed) isAction()     {}

// State is a NIC's state in the bond.
type State uint8

// NIC states.
const (
	// Gone: not (or no longer) part of the bond.
	Gone State = iota
	// Checking: added, waiting for its reachability probe to be answered.
	Checking
	// Up: a healthy member, eligible for traffic.
	Up
	// Down: a failed member (no carrier, or silent), out of rotation.
	Down
	// Recovering: a failed member that is healthy again, waiting out
	// Config.UpDelay before it rejoins.
	Recovering
)

func (s State) String() string {
	switch s {
	case Gone:
		return "gone"
	case Checking:
		return "checking"
	case Up:
		return "up"
	case Down:
		return "down"
	case Recovering:
		return "recovering"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}
