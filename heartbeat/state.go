package heartbeat

import "fmt"

// State is a node's failover state. The zero value is StateAlone.
type State uint8

// The four states of the seed design. The numeric values are on the wire.
const (
	// StateAlone: no peer configured (the node serves on its own), or a
	// peer is configured but has not been heard since start (the node
	// does not serve until it hears the peer or times out waiting).
	StateAlone State = iota
	// StateMaster: the configured primary, serving.
	StateMaster
	// StateSlave: not serving; applies the journal and watches the peer.
	StateSlave
	// StatePrimarySlave: the configured standby serving after a takeover.
	// It keeps its own journal so the repaired primary can resynchronise
	// and take its role back (failback).
	StatePrimarySlave
	numStates
)

func (s State) String() string {
	switch s {
	case StateAlone:
		return "alone"
	case StateMaster:
		return "master"
	case StateSlave:
		return "slave"
	case StatePrimarySlave:
		return "primaryslave"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Valid reports whether s is one of the four states.
func (s State) Valid() bool { return s < numStates }

// Serving reports whether a peer in state s holds the service. A node in
// StateAlone with no peer configured serves too, but such a node never
// sends heartbeats, so on the wire Alone means "not serving".
func (s State) Serving() bool { return s == StateMaster || s == StatePrimarySlave }

// Role is a node's configured role in the pair.
type Role uint8

// Roles. The zero value is invalid when a peer is configured.
const (
	RolePrimary Role = iota + 1
	RoleStandby
)

func (r Role) String() string {
	switch r {
	case RolePrimary:
		return "primary"
	case RoleStandby:
		return "standby"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// ParseRole parses "primary" or "standby".
func ParseRole(s string) (Role, error) {
	switch s {
	case "primary":
		return RolePrimary, nil
	case "standby":
		return RoleStandby, nil
	}
	return 0, fmt.Errorf("heartbeat: parse role %q: want primary or standby", s)
}

// FailbackPolicy says whether a PrimarySlave hands the service back to the
// repaired primary by itself.
type FailbackPolicy uint8

// Failback policies. The zero value is FailbackManual.
const (
	// FailbackManual: only a Failback event (nasctl cluster failback)
	// starts the handover.
	FailbackManual FailbackPolicy = iota
	// FailbackAuto: the PrimarySlave hands over once the primary has been
	// an alive, caught-up Slave for Timing.FailbackDelay.
	FailbackAuto
)

func (p FailbackPolicy) String() string {
	switch p {
	case FailbackManual:
		return "manual"
	case FailbackAuto:
		return "auto"
	}
	return fmt.Sprintf("failback(%d)", uint8(p))
}

// ParseFailbackPolicy parses "manual" or "auto".
func ParseFailbackPolicy(s string) (FailbackPolicy, error) {
	switch s {
	case "manual":
		return FailbackManual, nil
	case "auto":
		return FailbackAuto, nil
	}
	return 0, fmt.Errorf("heartbeat: parse failback policy %q: want manual or auto", s)
}
