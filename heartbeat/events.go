package heartbeat

import (
	"fmt"
	"time"
)

// Event is an input to Machine.Step.
type Event interface{ isEvent() }

// Tick advances the machine's clock. Now must come from a monotonic clock
// and never go backwards (a Tick that does is ignored). The first Step
// should be a Tick: before it, heartbeats are ignored.
type Tick struct{ Now time.Time }

// Heartbeat delivers a message accepted by a Receiver on the given path.
type Heartbeat struct {
	Path int
	Msg  Msg
}

// WitnessResult answers a ProbeWitness action.
type WitnessResult struct{ Reachable bool }

// ServiceHealth reports the file services' health probe. A serving node
// that turns unhealthy releases the VIP and stops sending heartbeats; any
// node stays silent until healthy again.
type ServiceHealth struct {
	OK     bool
	Reason string // why not OK, for the log
}

// JournalPosition updates this node's journal position, sent in every
// heartbeat: on a serving node the last record written, on a Slave the
// last record applied in the log the serving peer ships now (0 until it
// follows that log). A Slave's position going back means a resync: the
// node is not a copy of the master's data until it has caught up with
// the position the master announces. Epoch is the epoch of the log the
// position is in (every promotion starts a new log, in the new epoch; a
// log whose master is promoted again takes the new epoch), 0 when
// unknown. A Slave catches up only with a master of that epoch: a
// position in an older log says nothing about the master's current one.
// A serving node whose new log does not describe its volume yet sends
// JournalUnknown, which no Slave's position reaches.
//
// Continues: the position is in the log this node had whole when it
// handed the service over, or in the new master's continuation of it,
// which does not describe the volume anew (the new master's volume was
// this one's): this node stays a copy, lagging at worst, through the
// switch of epochs.
type JournalPosition struct {
	Pos       uint64
	Epoch     uint64
	Continues bool
}

// JournalUnknown is the position of a serving node whose log does not yet
// describe its data: no Slave is a copy of it.
const JournalUnknown = ^uint64(0)

// Outdate is the journal layer of a serving node: On, its standby is
// alive but its journal is not connected, and a change must be
// acknowledged without it; the machine then sends FlagOutdate, and
// Status.PeerOutdated says when the peer has stopped counting itself a
// copy. Off: the standby follows the log again.
type Outdate struct{ On bool }

// VIPHeld: a host answers for the VIP while this node hears no peer on any
// path (split heartbeat paths: the peer serves, unheard). The peer may
// acknowledge changes without this node meanwhile, so this node is no
// copy of its data until it hears the peer again and catches up: it does
// not take over by itself when the peer then dies (only Promote{Force}).
type VIPHeld struct{}

// Renew is the journal layer of a serving node that started a new log
// within its term (the old one was full with no standby to drain it): the
// node takes a new epoch, so no position in the old log is compared with
// the new log's (JournalPosition carries the log's epoch). Ignored when
// not serving.
type Renew struct{}

// Promote is the operator's "serve here". It clears a yield from Demote.
// On a Slave whose peer serves, it asks the peer to hand over (FlagRequest)
// once this node has caught up. With Force and the peer dead, the node
// promotes at once, skipping the lease wait and the witness check.
type Promote struct{ Force bool }

// Demote is the operator's "do not serve here": a serving node releases
// the VIP, and the node yields (does not promote) until the peer serves or
// Promote is given.
type Demote struct{}

// Failback hands the service back to the configured primary. It may be
// given to either node: on the PrimarySlave it hands over as soon as the
// primary is an alive, caught-up Slave (the request stays pending until
// then, or until this node stops serving); on the primary it requests the
// service (FlagRequest) from the serving peer.
type Failback struct{}

func (Tick) isEvent()            {}
func (Heartbeat) isEvent()       {}
func (WitnessResult) isEvent()   {}
func (ServiceHealth) isEvent()   {}
func (JournalPosition) isEvent() {}
func (Outdate) isEvent()         {}
func (Renew) isEvent()           {}
func (VIPHeld) isEvent()         {}
func (Promote) isEvent()         {}
func (Demote) isEvent()          {}
func (Failback) isEvent()        {}

// Action is an output of Machine.Step. The caller executes the actions of
// one Step in order.
type Action interface{ isAction() }

// Send: send Msg on every path, with Msg.Path set to the path.
type Send struct{ Msg Msg }

// AddVIP: add the virtual IP (idempotent).
type AddVIP struct{}

// RemoveVIP: remove the virtual IP (idempotent). It always comes before
// StopServices.
type RemoveVIP struct{}

// GratuitousARP: announce the VIP (at once, then repeated).
type GratuitousARP struct{}

// StartServices: start or enable the file services on the VIP.
type StartServices struct{}

// StopServices: stop or disable the file services.
type StopServices struct{}

// RenewLease: this node may serve until Until (e.g. a deadline in a BPF
// map that a tcx program checks before passing traffic to the VIP).
type RenewLease struct{ Until time.Time }

// ProbeWitness: check whether the witness is reachable and answer with a
// WitnessResult event. An answer later than Timing.WitnessTimeout counts
// as unreachable.
type ProbeWitness struct{}

// EpochChanged: persist Epoch before executing the following actions, and
// pass it as Config.Epoch after a restart. Shipper and applier fence on it.
type EpochChanged struct{ Epoch uint64 }

// StateChanged reports a state transition, with the reason, for logs,
// metrics and the journal layer (ship when serving, apply when Slave).
type StateChanged struct {
	From, To State
	Reason   string
}

// ReasonHandedOver is the Reason of a promotion because the alive peer
// handed the service over (it yields: a handover, a failback, a Demote):
// nothing was lost on the way, if the journal says so too (the appliance
// keeps the NFS write verifier then). Every other promotion follows a
// peer declared dead, an operator's force, or a start where neither node
// served.
const ReasonHandedOver = "peer handed over"

// AlarmKind is what an Alarm is about.
type AlarmKind uint8

// Alarm kinds.
const (
	// AlarmPathDown: one heartbeat path is silent past Dead while another
	// still works. Not a failover.
	AlarmPathDown AlarmKind = iota + 1
	// AlarmPeerDown: all paths silent past Dead.
	AlarmPeerDown
	// AlarmWitnessUnreachable: the last witness probe failed while the
	// peer is dead.
	AlarmWitnessUnreachable
	// AlarmServiceFailed: the file services failed their health probe.
	AlarmServiceFailed
	// AlarmSplitBrain: this node and the peer both serve (until the loser
	// releases).
	AlarmSplitBrain
)

func (k AlarmKind) String() string {
	switch k {
	case AlarmPathDown:
		return "path-down"
	case AlarmPeerDown:
		return "peer-down"
	case AlarmWitnessUnreachable:
		return "witness-unreachable"
	case AlarmServiceFailed:
		return "service-failed"
	case AlarmSplitBrain:
		return "split-brain"
	}
	return fmt.Sprintf("alarm(%d)", uint8(k))
}

// Alarm raises an alarm. Path is set for AlarmPathDown only.
type Alarm struct {
	Kind AlarmKind
	Path int
}

func (a Alarm) String() string {
	if a.Kind == AlarmPathDown {
		return fmt.Sprintf("%s(%d)", a.Kind, a.Path)
	}
	return a.Kind.String()
}

// ClearAlarm clears a raised alarm.
type ClearAlarm struct{ Alarm Alarm }

func (Send) isAction()          {}
func (AddVIP) isAction()        {}
func (RemoveVIP) isAction()     {}
func (GratuitousARP) isAction() {}
func (StartServices) isAction() {}
func (StopServices) isAction()  {}
func (RenewLease) isAction()    {}
func (ProbeWitness) isAction()  {}
func (EpochChanged) isAction()  {}
func (StateChanged) isAction()  {}
func (Alarm) isAction()         {}
func (ClearAlarm) isAction()    {}
