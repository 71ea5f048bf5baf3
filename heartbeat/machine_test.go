package heartbeat

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	dflt  = DefaultTiming()
	both  = []int{0, 1}
	path0 = []int{0}
	quiet = []int{} // time passes, the peer sends nothing
)

func noPeer(c *Config) { c.PeerID = 0; c.Role = 0 }

func standby(c *Config) { c.NodeID, c.PeerID, c.Role = 2, 1, RoleStandby }

// asSlaveOf makes h a Slave following a serving peer at epoch e.
func asSlaveOf(h *tm, st State, e uint64) {
	h.tick(0)
	h.peer.State, h.peer.Epoch = st, e
	h.hear()
	h.wantState(StateSlave, false, e)
}

// asMaster makes a primary h the Master at epoch 2: the peer is an alive
// Slave and h is preferred.
func asMaster(h *tm) {
	h.tick(0)
	h.peer.State = StateSlave
	h.hear()
	h.wantState(StateMaster, true, 2)
	h.peer.Epoch = 2
	h.hear()
}

// cutOffMasterHealed makes h a Master, cuts it off from the peer and
// the witness until it released, keeps it cut off 2 s more, then heals
// the witness (the peer stays silent).
func cutOffMasterHealed(h *tm) {
	asMaster(h)
	h.witness = ptr(false)
	h.runUntil(5*time.Second, quiet, func(a []Action) bool { return has(a, "RemoveVIP") })
	h.run(2*time.Second, quiet)
	h.witness = ptr(true)
}

// asPrimarySlave makes a standby h the PrimarySlave at epoch 1 (primary
// never seen), then lets the primary rejoin as a caught-up Slave.
func asPrimarySlave(h *tm) {
	h.witness = ptr(true)
	h.tick(0)
	h.run(dflt.StartupWait, quiet)
	h.wantState(StatePrimarySlave, true, 1)
	h.peer.State, h.peer.Epoch = StateSlave, 1
	h.peer.Flags |= FlagSynced // the primary follows this node's log
	h.hear()
}

// TestTransitions covers every transition of the machine, one row each.
func TestTransitions(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*Config)
		// do drives the machine and returns the actions to check.
		do func(h *tm) []Action
		// want, if not nil, is the exact action list.
		want []string
		// state, serving, epoch after do.
		state   State
		serving bool
		epoch   uint64
		check   func(t *testing.T, h *tm, acts []Action)
	}{{
		name:    "no peer: alone serves at first tick, no epoch change",
		cfg:     noPeer,
		do:      func(h *tm) []Action { return h.tick(0) },
		want:    []string{"AddVIP", "GratuitousARP", "StartServices", "Lease"},
		state:   StateAlone,
		serving: true,
		check: func(t *testing.T, h *tm, _ []Action) {
			acts := h.run(2*time.Second, nil)
			if n := countOf[Send](acts); n != 0 {
				t.Fatalf("alone without peer sent %d heartbeats", n)
			}
			if n := countOf[RenewLease](acts); n < 8 {
				t.Fatalf("%d lease renewals in 2s, want >= 8", n)
			}
		},
	}, {
		name: "no peer: service failure releases, recovery serves again",
		cfg:  noPeer,
		do: func(h *tm) []Action {
			h.tick(0)
			return h.step(ServiceHealth{OK: false, Reason: "smbd down"})
		},
		want:  []string{"RemoveVIP", "StopServices", "Alarm(service-failed)"},
		state: StateAlone,
		check: func(t *testing.T, h *tm, _ []Action) {
			wantActs(t, h.run(time.Second, nil))
			wantActs(t, h.step(ServiceHealth{OK: true}), "AddVIP", "GratuitousARP", "StartServices", "Lease", "Clear(service-failed)")
		},
	}, {
		name: "no peer: demote releases and holds, promote serves",
		cfg:  noPeer,
		do: func(h *tm) []Action {
			h.tick(0)
			return h.step(Demote{})
		},
		want:  []string{"RemoveVIP", "StopServices"},
		state: StateAlone,
		check: func(t *testing.T, h *tm, _ []Action) {
			wantActs(t, h.run(time.Second, nil))
			wantActs(t, h.step(Promote{}), "AddVIP", "GratuitousARP", "StartServices", "Lease")
		},
	}, {
		name:  "peer configured: alone at start, probes the witness, announces itself",
		do:    func(h *tm) []Action { return h.tick(0) },
		want:  []string{"ProbeWitness", "Send(alone e0 primary)"},
		state: StateAlone,
	}, {
		name: "alone -> slave on hearing a serving peer, adopting its epoch",
		do: func(h *tm) []Action {
			h.tick(0)
			h.peer.State, h.peer.Epoch = StateMaster, 4
			return h.hear(0)
		},
		want:  []string{"State(alone->slave)", "Epoch(4)", "Send(slave e4 primary|synced)"},
		state: StateSlave,
		epoch: 4,
	}, {
		name: "alone -> master: primary, peer never seen, startup wait over, witness reachable",
		do: func(h *tm) []Action {
			h.witness = ptr(true)
			h.tick(0)
			acts, ok := h.runUntil(5*time.Second, quiet, func(a []Action) bool { return has(a, "AddVIP") })
			if !ok {
				h.t.Fatal("never promoted")
			}
			if at := h.now.Sub(t0); at < dflt.StartupWait || at >= dflt.StartupWait+tick {
				h.t.Fatalf("promoted after %v, want %v", at, dflt.StartupWait)
			}
			return acts[len(acts)-7:]
		},
		want:    []string{"Epoch(2)", "State(alone->master)", "AddVIP", "GratuitousARP", "StartServices", "Lease", "Send(master e2 primary)"},
		state:   StateMaster,
		serving: true,
		epoch:   2,
	}, {
		name: "alone -> primaryslave: standby, peer never seen, takes an odd epoch",
		cfg:  standby,
		do: func(h *tm) []Action {
			h.witness = ptr(true)
			h.tick(0)
			return h.run(dflt.StartupWait, quiet)
		},
		state:   StatePrimarySlave,
		serving: true,
		epoch:   1,
		check: func(t *testing.T, _ *tm, acts []Action) {
			wantHas(t, acts, "Epoch(1)", "State(alone->primaryslave)", "AddVIP")
		},
	}, {
		name: "alone stays alone while the witness is unreachable",
		do: func(h *tm) []Action {
			h.witness = ptr(false)
			acts := h.tick(0)
			return append(acts, h.run(10*time.Second, quiet)...)
		},
		state: StateAlone,
		check: func(t *testing.T, h *tm, acts []Action) {
			wantHas(t, acts, "Alarm(witness-unreachable)")
			wantNot(t, acts, "AddVIP")
			if n := countOf[ProbeWitness](acts); n < 8 {
				t.Fatalf("%d witness probes in 10s, want one per second", n)
			}
			// Back: it listens for the peer for Dead first (it may have
			// been the one cut off).
			*h.witness = true
			acts, ok := h.runUntil(dflt.WitnessInterval+tick, quiet, func(a []Action) bool { return has(a, "ProbeWitness") })
			back := h.now
			more, promoted := h.runUntil(dflt.Dead+tick, quiet, func(a []Action) bool { return has(a, "AddVIP") })
			acts = append(acts, more...)
			if !ok || !promoted || h.now.Before(back.Add(dflt.Dead)) {
				t.Fatalf("promoted %v (%v after the witness came back, want Dead %v)", promoted, h.now.Sub(back), dflt.Dead)
			}
			wantHas(t, acts, "Clear(witness-unreachable)")
		},
		// (state after check is master; the row's state is checked before check)
	}, {
		name: "slave -> master: both alive, neither serves, primary preferred on a tie",
		do: func(h *tm) []Action {
			h.tick(0)
			return h.hear(0)
		},
		want:    []string{"State(alone->slave)", "Epoch(2)", "State(slave->master)", "AddVIP", "GratuitousARP", "StartServices", "Lease", "Send(master e2 primary)"},
		state:   StateMaster,
		serving: true,
		epoch:   2,
	}, {
		name: "standby stays slave on a tie with the primary",
		cfg:  standby,
		do: func(h *tm) []Action {
			h.tick(0)
			return h.hear(0)
		},
		want:  []string{"State(alone->slave)", "Send(slave e0 0)"},
		state: StateSlave,
	}, {
		name: "standby with the higher epoch is preferred (it served last)",
		cfg:  func(c *Config) { standby(c); c.Epoch = 5 },
		do: func(h *tm) []Action {
			h.tick(0)
			h.peer.Epoch = 4
			return h.hear(0)
		},
		state:   StatePrimarySlave,
		serving: true,
		epoch:   7,
	}, {
		name: "standby with more journal is preferred on equal epochs",
		cfg:  standby,
		do: func(h *tm) []Action {
			h.step(JournalPosition{Pos: 10})
			h.tick(0)
			h.peer.Journal = 5
			return h.hear(0)
		},
		state:   StatePrimarySlave,
		serving: true,
		epoch:   1,
	}, {
		name: "slave with an alive master does nothing",
		cfg:  standby,
		do: func(h *tm) []Action {
			asSlaveOf(h, StateMaster, 2)
			return h.run(10*time.Second, both)
		},
		state: StateSlave,
		epoch: 2,
		check: func(t *testing.T, _ *tm, acts []Action) {
			for _, a := range acts {
				if _, ok := a.(Send); !ok {
					t.Fatalf("unexpected action %s", desc(a))
				}
			}
			if n := countOf[Send](acts); n < 50 || n > 100 {
				t.Fatalf("%d heartbeats in 10s, want 50..100", n)
			}
		},
	}, {
		name: "one path lost: alarm, no failover; path back: cleared",
		cfg:  standby,
		do: func(h *tm) []Action {
			asSlaveOf(h, StateMaster, 2)
			return h.run(5*time.Second, path0)
		},
		state: StateSlave,
		epoch: 2,
		check: func(t *testing.T, h *tm, acts []Action) {
			wantHas(t, acts, "Alarm(path-down(1))")
			wantNot(t, acts, "ProbeWitness", "Alarm(peer-down)", "AddVIP")
			wantHas(t, h.run(time.Second, both), "Clear(path-down(1))")
		},
	}, {
		name: "slave -> primaryslave: both paths silent, lease waited out, witness reachable",
		cfg:  standby,
		do: func(h *tm) []Action {
			asSlaveOf(h, StateMaster, 2)
			h.witness = ptr(true)
			h.run(time.Second, both)
			last := h.m.Status().PeerAt
			acts, ok := h.runUntil(5*time.Second, quiet, func(a []Action) bool { return has(a, "AddVIP") })
			if !ok {
				h.t.Fatal("never promoted")
			}
			// The peer is dead on the first tick after Dead; its lease,
			// anchored at an acked heartbeat, ended Lease+Stall after it.
			want := AckedPromoteAt(last, dflt).Sub(last)
			if d := h.now.Sub(last); d <= want || d > want+tick {
				h.t.Fatalf("promoted %v after the last heartbeat, want %v", d, want)
			}
			return acts
		},
		state:   StatePrimarySlave,
		serving: true,
		epoch:   3,
		check: func(t *testing.T, _ *tm, acts []Action) {
			d := descs(acts)
			probe, down, vip := slices.Index(d, "ProbeWitness"), slices.Index(d, "Alarm(peer-down)"), slices.Index(d, "AddVIP")
			if probe < 0 || down < 0 || vip < 0 || probe > vip {
				t.Fatalf("want a witness probe before AddVIP, and peer-down: %q", d)
			}
			if e := slices.Index(d, "Epoch(3)"); e < 0 || e > vip {
				t.Fatalf("want Epoch(3) before AddVIP: %q", d)
			}
		},
	}, {
		name: "slave never promotes while the witness is unreachable",
		cfg:  standby,
		do: func(h *tm) []Action {
			asSlaveOf(h, StateMaster, 2)
			h.witness = ptr(false)
			return h.run(10*time.Second, quiet)
		},
		state: StateSlave,
		epoch: 2,
		check: func(t *testing.T, h *tm, acts []Action) {
			wantHas(t, acts, "Alarm(peer-down)", "Alarm(witness-unreachable)")
			wantNot(t, acts, "AddVIP")
			*h.witness = true
			_, ok := h.runUntil(dflt.WitnessInterval+tick, quiet, func(a []Action) bool { return has(a, "ProbeWitness") })
			back := h.now
			_, promoted := h.runUntil(dflt.Dead+tick, quiet, func(a []Action) bool { return has(a, "AddVIP") })
			if !ok || !promoted || h.now.Before(back.Add(dflt.Dead)) {
				t.Fatalf("promoted %v (%v after the witness came back, want Dead %v)", promoted, h.now.Sub(back), dflt.Dead)
			}
		},
	}, {
		name: "an unanswered witness probe counts as unreachable after the timeout",
		cfg:  standby,
		do: func(h *tm) []Action {
			asSlaveOf(h, StateMaster, 2)
			if _, ok := h.runUntil(5*time.Second, quiet, func(a []Action) bool { return has(a, "ProbeWitness") }); !ok {
				h.t.Fatal("no probe")
			}
			asked := h.now
			if _, ok := h.runUntil(5*time.Second, quiet, func([]Action) bool { return h.m.Status().WitnessAt.After(asked) }); !ok {
				h.t.Fatal("the probe never timed out")
			}
			if d := h.now.Sub(asked); d < dflt.WitnessTimeout || d >= dflt.WitnessTimeout+tick {
				h.t.Fatalf("timed out after %v, want %v", d, dflt.WitnessTimeout)
			}
			if s := h.m.Status(); s.WitnessReachable {
				h.t.Fatal("an unanswered probe counted as reachable")
			}
			// The probe went out before the peer was dead; the alarm is
			// raised when it is.
			acts, ok := h.runUntil(dflt.Dead, quiet, func(a []Action) bool { return has(a, "Alarm(witness-unreachable)") })
			if !ok {
				h.t.Fatal("no alarm")
			}
			return acts
		},
		state: StateSlave,
		epoch: 2,
	}, {
		name: "master keeps serving without the peer while the witness answers",
		do: func(h *tm) []Action {
			h.witness = ptr(true)
			asMaster(h)
			return h.run(10*time.Second, quiet)
		},
		state:   StateMaster,
		serving: true,
		epoch:   2,
		check: func(t *testing.T, h *tm, acts []Action) {
			wantHas(t, acts, "Alarm(peer-down)", "ProbeWitness")
			wantNot(t, acts, "RemoveVIP")
			if s := h.m.Status(); s.LeaseUntil.Before(h.now) {
				t.Fatalf("lease %v lapsed at %v", s.LeaseUntil, h.now)
			}
		},
	}, {
		name: "master -> slave: lost the peer and the witness",
		do: func(h *tm) []Action {
			asMaster(h)
			h.witness = ptr(false)
			acts, _ := h.runUntil(5*time.Second, quiet, func(a []Action) bool { return has(a, "RemoveVIP") })
			return acts
		},
		state: StateSlave,
		epoch: 2,
		check: func(t *testing.T, h *tm, acts []Action) {
			d := descs(acts)
			if i, j := slices.Index(d, "RemoveVIP"), slices.Index(d, "StopServices"); i < 0 || j != i+1 || d[j+1] != "State(master->slave)" {
				t.Fatalf("want RemoveVIP, StopServices, State(master->slave): %q", d)
			}
			wantNot(t, h.run(10*time.Second, quiet), "AddVIP")
		},
	}, {
		// Chaos seed 51: cut off from everything, the master released;
		// the peer took over. When the cut healed, the witness answered
		// before the peer's next heartbeat came: the peer's silence while
		// this node was cut off is no sign that it is dead.
		name: "released master cut off: the witness back first, then the serving peer",
		do: func(h *tm) []Action {
			cutOffMasterHealed(h)
			acts, ok := h.runUntil(2*time.Second, quiet, func(a []Action) bool { return has(a, "ProbeWitness") })
			if !ok || !h.m.witnessBackAt.Equal(h.now) {
				h.t.Fatalf("witness back at %v, now %v: %q", h.m.witnessBackAt, h.now, descs(acts))
			}
			// The peer's next heartbeat comes a heartbeat interval later.
			acts = append(acts, h.run(150*time.Millisecond, quiet)...)
			h.peer.State, h.peer.Epoch = StatePrimarySlave, 3
			return append(acts, h.hear()...)
		},
		state: StateSlave,
		epoch: 3,
		check: func(t *testing.T, h *tm, acts []Action) {
			wantNot(t, acts, "AddVIP")
		},
	}, {
		name: "released master cut off: the witness back and the peer silent for Dead: takes the service back",
		do: func(h *tm) []Action {
			cutOffMasterHealed(h)
			back := h.now
			acts, ok := h.runUntil(5*time.Second, quiet, func(a []Action) bool { return has(a, "AddVIP") })
			if !ok {
				h.t.Fatalf("no takeover with the peer silent: %q", descs(acts))
			}
			if h.now.Before(back.Add(dflt.Dead)) {
				h.t.Fatalf("took over %v after the witness came back, before Dead (%v)", h.now.Sub(back), dflt.Dead)
			}
			return acts
		},
		state:   StateMaster,
		serving: true,
		epoch:   4,
	}, {
		name: "master -> slave: witness probe unanswered",
		do: func(h *tm) []Action {
			asMaster(h)
			h.run(time.Second, both)
			last := h.m.Status().PeerAt
			lease := h.m.Status().LeaseUntil
			acts, _ := h.runUntil(5*time.Second, quiet, func(a []Action) bool { return has(a, "RemoveVIP") })
			// Acks stopped with the peer's heartbeats; the witness probe
			// asked for then is unanswered when the acked lease runs out.
			if h.now.Before(lease) || h.now.Sub(lease) > tick || lease.After(last.Add(dflt.Lease)) {
				h.t.Fatalf("released %v after the last heartbeat, lease ended %v after it (want at most %v)",
					h.now.Sub(last), lease.Sub(last), dflt.Lease)
			}
			wantHas(h.t, acts, "ProbeWitness")
			return acts
		},
		state: StateSlave,
		epoch: 2,
	}, {
		name: "master -> slave: service failure releases the VIP and silences heartbeats",
		do: func(h *tm) []Action {
			asMaster(h)
			h.run(time.Second, both)
			return h.step(ServiceHealth{OK: false, Reason: "nfs probe failed"})
		},
		want:  []string{"RemoveVIP", "StopServices", "State(master->slave)", "Alarm(service-failed)"},
		state: StateSlave,
		epoch: 2,
		check: func(t *testing.T, h *tm, _ []Action) {
			h.witness = ptr(true)
			acts := h.run(5*time.Second, both)
			if n := countOf[Send](acts); n != 0 {
				t.Fatalf("unhealthy node sent %d heartbeats", n)
			}
			wantNot(t, acts, "AddVIP")
			acts = h.step(ServiceHealth{OK: true})
			wantHas(t, acts, "Clear(service-failed)")
			if countOf[Send](acts) != 1 {
				t.Fatalf("no heartbeat on recovery: %q", descs(acts))
			}
		},
	}, {
		name: "master -> slave: the peer serves at a higher epoch",
		do: func(h *tm) []Action {
			asMaster(h)
			h.peer.State, h.peer.Epoch = StatePrimarySlave, 3
			return h.hear(0)
		},
		want:  []string{"RemoveVIP", "StopServices", "State(master->slave)", "Epoch(3)", "Send(slave e3 primary)"},
		state: StateSlave,
		epoch: 3,
	}, {
		name: "master stays: the peer serves at a lower epoch (it will release)",
		do: func(h *tm) []Action {
			asMaster(h)
			h.peer.State, h.peer.Epoch = StatePrimarySlave, 1
			return h.hear(0)
		},
		want:    []string{"Send(master e2 primary)", "Alarm(split-brain)"}, // tells the peer at once
		state:   StateMaster,
		serving: true,
		epoch:   2,
		check: func(t *testing.T, h *tm, _ []Action) {
			h.peer.State, h.peer.Epoch = StateSlave, 2
			wantActs(t, h.hear(0), "Clear(split-brain)")
		},
	}, {
		name: "equal epochs (lost state): the configured primary keeps serving",
		do: func(h *tm) []Action {
			asMaster(h)
			h.peer.State, h.peer.Epoch = StatePrimarySlave, 2
			return h.hear(0)
		},
		want:    []string{"Send(master e2 primary)", "Alarm(split-brain)"},
		state:   StateMaster,
		serving: true,
		epoch:   2,
	}, {
		name: "equal epochs (lost state): the standby releases to the primary",
		cfg:  standby,
		do: func(h *tm) []Action {
			asPrimarySlave(h)
			h.peer.State, h.peer.Epoch = StateMaster, 1
			return h.hear(0)
		},
		want:  []string{"RemoveVIP", "StopServices", "State(primaryslave->slave)", "Send(slave e1 0)"},
		state: StateSlave,
		epoch: 1,
	}, {
		name: "equal epochs, both configured primary: the lower node id wins",
		cfg:  func(c *Config) { c.NodeID, c.PeerID = 3, 2 },
		do: func(h *tm) []Action {
			h.tick(0)
			h.peer.Flags = FlagPrimary
			h.peer.Journal = 1 // the peer is preferred: no promotion here
			h.hear(0)
			h.step(Promote{Force: true}) // peer alive: force ignored, request set
			h.peer.Journal = 0
			h.peer.Flags |= FlagYield
			h.hear(0) // the peer yields: this node promotes, epoch 1
			h.wantState(StateMaster, true, 1)
			h.peer.State, h.peer.Epoch, h.peer.Flags = StateMaster, 1, FlagPrimary
			return h.hear(0)
		},
		want:  []string{"RemoveVIP", "StopServices", "State(master->slave)", "Send(slave e1 primary)"},
		state: StateSlave,
		epoch: 1,
	}, {
		name: "master whose slave peer has a higher epoch moves above it",
		do: func(h *tm) []Action {
			asMaster(h)
			h.peer.Epoch = 5
			return h.hear(0)
		},
		want:    []string{"Epoch(6)", "Send(master e6 primary)"},
		state:   StateMaster,
		serving: true,
		epoch:   6,
	}, {
		name: "master -> slave: lease expired while this process stalled; re-promotes on a fresh view",
		do: func(h *tm) []Action {
			asMaster(h)
			h.run(time.Second, both)
			return h.tick(2 * time.Second)
		},
		want:  []string{"RemoveVIP", "StopServices", "State(master->slave)", "Send(slave e2 primary)"},
		state: StateSlave,
		epoch: 2,
		check: func(t *testing.T, h *tm, _ []Action) {
			wantHas(t, h.hear(0), "Epoch(4)", "AddVIP")
		},
	}, {
		name: "slave that stalled does not count the stall as the peer's silence",
		cfg:  standby,
		do: func(h *tm) []Action {
			asSlaveOf(h, StateMaster, 2)
			h.witness = ptr(true)
			h.run(time.Second, both)
			acts := h.tick(3 * time.Second)
			return append(acts, h.hear()...)
		},
		state: StateSlave,
		epoch: 2,
		check: func(t *testing.T, _ *tm, acts []Action) {
			for _, a := range acts {
				if _, ok := a.(Send); !ok {
					t.Fatalf("unexpected action %s", desc(a))
				}
			}
		},
	}, {
		name: "primaryslave -> slave: manual failback hands over to a caught-up primary",
		cfg:  standby,
		do: func(h *tm) []Action {
			asPrimarySlave(h)
			wantNot(h.t, h.run(20*time.Second, both), "RemoveVIP")
			return h.step(Failback{})
		},
		want:  []string{"RemoveVIP", "StopServices", "State(primaryslave->slave)", "Send(slave e1 yield|synced)"},
		state: StateSlave,
		epoch: 1,
		check: func(t *testing.T, h *tm, _ []Action) {
			// Yielding: no promotion while the primary takes over.
			wantNot(t, h.run(time.Second, both), "AddVIP")
			h.peer.State, h.peer.Epoch = StateMaster, 2
			wantHas(t, h.hear(), "Epoch(2)")
			if h.m.Status().Yielding {
				t.Fatal("still yielding after the primary took over")
			}
		},
	}, {
		name: "slave -> master: the peer handed over (yield), at once, no witness",
		do: func(h *tm) []Action {
			asSlaveOf(h, StatePrimarySlave, 1)
			h.peer.State, h.peer.Flags = StateSlave, FlagYield
			return h.hear(1)
		},
		want:    []string{"Epoch(2)", "State(slave->master)", "AddVIP", "GratuitousARP", "StartServices", "Lease", "Send(master e2 primary)"},
		state:   StateMaster,
		serving: true,
		epoch:   2,
	}, {
		name: "a yielded role is taken only once this node applied the peer's journal",
		do: func(h *tm) []Action {
			asSlaveOf(h, StatePrimarySlave, 1)
			h.step(JournalPosition{Pos: 90, Epoch: 1})
			h.peer.State, h.peer.Flags, h.peer.Journal = StateSlave, FlagYield, 100
			wantNot(h.t, h.hear(), "AddVIP")
			wantNot(h.t, h.step(JournalPosition{Pos: 99, Epoch: 1}), "AddVIP")
			return h.step(JournalPosition{Pos: 100, Epoch: 1})
		},
		state:   StateMaster,
		serving: true,
		epoch:   2,
		check:   func(t *testing.T, _ *tm, acts []Action) { wantHas(t, acts, "AddVIP") },
	}, {
		name: "promote takes a yielded role even when behind",
		do: func(h *tm) []Action {
			asSlaveOf(h, StatePrimarySlave, 1)
			h.peer.State, h.peer.Flags, h.peer.Journal = StateSlave, FlagYield, 100
			wantNot(h.t, h.hear(), "AddVIP")
			return h.step(Promote{})
		},
		state:   StateMaster,
		serving: true,
		epoch:   2,
	}, {
		name: "failback waits until the primary has caught up",
		cfg:  standby,
		do: func(h *tm) []Action {
			asPrimarySlave(h)
			h.step(JournalPosition{Pos: 10})
			h.peer.Journal = 5
			h.step(Failback{})
			wantNot(h.t, h.run(5*time.Second, both), "RemoveVIP")
			h.peer.Journal = 10
			return h.hear(0)
		},
		state: StateSlave,
		epoch: 1,
		check: func(t *testing.T, _ *tm, acts []Action) { wantHas(t, acts, "RemoveVIP") },
	}, {
		name: "automatic failback after the primary stayed caught up for FailbackDelay",
		cfg:  func(c *Config) { standby(c); c.Failback = FailbackAuto },
		do: func(h *tm) []Action {
			asPrimarySlave(h)
			start := h.now
			acts, ok := h.runUntil(30*time.Second, both, func(a []Action) bool { return has(a, "RemoveVIP") })
			if !ok {
				h.t.Fatal("no automatic failback")
			}
			if d := h.now.Sub(start); d < dflt.FailbackDelay || d > dflt.FailbackDelay+200*time.Millisecond {
				h.t.Fatalf("failback after %v, want %v", d, dflt.FailbackDelay)
			}
			return acts
		},
		state: StateSlave,
		epoch: 1,
	}, {
		name: "failback given to the primary requests the service",
		do: func(h *tm) []Action {
			asSlaveOf(h, StatePrimarySlave, 1)
			return h.step(Failback{})
		},
		want:  []string{"Send(slave e1 primary|request|synced)"},
		state: StateSlave,
		epoch: 1,
	}, {
		name: "serving node hands over to a requesting, caught-up peer (manual policy)",
		cfg:  standby,
		do: func(h *tm) []Action {
			asPrimarySlave(h)
			h.peer.Flags |= FlagRequest
			return h.hear(0)
		},
		want:  []string{"RemoveVIP", "StopServices", "State(primaryslave->slave)", "Send(slave e1 yield|synced)"},
		state: StateSlave,
		epoch: 1,
	}, {
		name: "promote on a slave requests the service from the master",
		cfg:  standby,
		do: func(h *tm) []Action {
			asSlaveOf(h, StateMaster, 2)
			return h.step(Promote{})
		},
		want:  []string{"Send(slave e2 request|synced)"},
		state: StateSlave,
		epoch: 2,
	}, {
		name: "master -> slave: demote yields until promoted again",
		do: func(h *tm) []Action {
			h.witness = ptr(true)
			asMaster(h)
			return h.step(Demote{})
		},
		want:  []string{"RemoveVIP", "StopServices", "State(master->slave)", "Send(slave e2 primary|yield)"},
		state: StateSlave,
		epoch: 2,
		check: func(t *testing.T, h *tm, _ []Action) {
			h.witness = ptr(true)
			wantNot(t, h.run(10*time.Second, quiet), "AddVIP", "ProbeWitness")
			acts := h.step(Promote{})
			wantHas(t, acts, "ProbeWitness", "Epoch(4)", "AddVIP")
		},
	}, {
		name: "forced promotion with the peer dead skips lease wait and witness",
		cfg:  standby,
		do: func(h *tm) []Action {
			asSlaveOf(h, StateMaster, 2)
			h.witness = ptr(false)
			h.run(dflt.Dead+tick, quiet) // dead, lease not waited out
			return h.step(Promote{Force: true})
		},
		state:   StatePrimarySlave,
		serving: true,
		epoch:   3,
		check: func(t *testing.T, h *tm, acts []Action) {
			wantHas(t, acts, "AddVIP")
			wantNot(t, h.run(5*time.Second, quiet), "RemoveVIP")
		},
	}, {
		name: "unhealthy slave is silent and does not promote",
		cfg:  standby,
		do: func(h *tm) []Action {
			asSlaveOf(h, StateMaster, 2)
			h.witness = ptr(true)
			h.step(ServiceHealth{OK: false})
			return h.run(10*time.Second, quiet)
		},
		state: StateSlave,
		epoch: 2,
		check: func(t *testing.T, _ *tm, acts []Action) {
			wantNot(t, acts, "AddVIP")
			if n := countOf[Send](acts); n != 0 {
				t.Fatalf("sent %d heartbeats", n)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newTM(t, tc.cfg)
			acts := tc.do(h)
			if tc.want != nil {
				wantActs(t, acts, tc.want...)
			}
			h.wantState(tc.state, tc.serving, tc.epoch)
			if tc.check != nil {
				tc.check(t, h, acts)
			}
		})
	}
}

func TestPeerViewNotRegressedByReorder(t *testing.T) {
	h := newTM(t, standby)
	h.tick(0)
	h.peer.State, h.peer.Epoch, h.peer.Seq = StateMaster, 2, 1005
	h.step(Heartbeat{Path: 0, Msg: h.peer})
	old := h.peer
	old.State, old.Seq, old.Path = StateSlave, 1003, 1
	h.step(Heartbeat{Path: 1, Msg: old})
	s := h.m.Status()
	if s.Peer.State != StateMaster || s.Peer.Seq != 1005 {
		t.Fatalf("peer view %v seq %d, want master seq 1005", s.Peer.State, s.Peer.Seq)
	}
	if !s.PathAlive[1] {
		t.Fatal("the late copy still proves path 1 alive")
	}
}

func TestForeignHeartbeatsIgnored(t *testing.T) {
	for _, tc := range []struct {
		name string
		path int
		mod  func(*Msg)
	}{
		{"other node", 0, func(m *Msg) { m.NodeID = 9 }},
		{"other cluster", 0, func(m *Msg) { m.ClusterID = 8 }},
		{"path out of range", 2, func(*Msg) {}},
		{"bad state", 0, func(m *Msg) { m.State = 9 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTM(t, nil)
			h.tick(0)
			msg := h.peer
			msg.State = StateMaster
			tc.mod(&msg)
			if acts := h.step(Heartbeat{Path: tc.path, Msg: msg}); len(acts) != 0 {
				t.Fatalf("actions %q", descs(acts))
			}
			if s := h.m.Status(); s.PeerSeen || s.State != StateAlone {
				t.Fatalf("status %+v", s)
			}
		})
	}
}

func TestHeartbeatBeforeFirstTickIgnored(t *testing.T) {
	h := newTM(t, nil)
	if acts := h.hear(); len(acts) != 0 {
		t.Fatalf("actions before the first tick: %q", descs(acts))
	}
	if h.m.Status().PeerSeen {
		t.Fatal("peer seen before the first tick")
	}
}

func TestHeartbeatContents(t *testing.T) {
	h := newTM(t, func(c *Config) { c.Seq = 500 })
	h.step(JournalPosition{Pos: 77})
	h.tick(0)
	m := h.lastSent()
	want := Msg{ClusterID: testCluster, NodeID: 1, State: StateAlone, Flags: FlagPrimary, Seq: 501, Journal: 77, Time: t0.UnixNano()}
	if m != want {
		t.Fatalf("heartbeat %+v, want %+v", m, want)
	}
	h.run(time.Second, quiet)
	if n := h.lastSent().Seq; n <= 501 {
		t.Fatalf("sequence did not grow: %d", n)
	}
}

func TestHeartbeatSpacing(t *testing.T) {
	h := newTM(t, nil)
	h.tick(0)
	var times []time.Time
	for range 4000 { // 100 s
		acts := h.tick(5 * time.Millisecond)
		if countOf[Send](acts) > 0 {
			times = append(times, h.now)
		}
	}
	lo, hi := time.Hour, time.Duration(0)
	for i := 1; i < len(times); i++ {
		d := times[i].Sub(times[i-1])
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 100*time.Millisecond || hi > 205*time.Millisecond || hi-lo < 80*time.Millisecond {
		t.Fatalf("heartbeat gaps in [%v, %v], want spread over 100ms..200ms", lo, hi)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		err  string // substring, "" for valid
	}{
		{"default pair", nil, ""},
		{"no peer, role defaults", noPeer, ""},
		{"node id 0", func(c *Config) { c.NodeID = 0 }, "node id must not be 0"},
		{"peer is self", func(c *Config) { c.PeerID = 1 }, "is this node's id"},
		{"no role with peer", func(c *Config) { c.Role = 0 }, "role"},
		{"too many paths", func(c *Config) { c.Paths = 5 }, "5 paths"},
		{"bad policy", func(c *Config) { c.Failback = 7 }, "failback policy"},
		{"dead too short", func(c *Config) { c.Timing.Dead = 300 * time.Millisecond }, "dead interval 300ms is below"},
		{"jitter too big", func(c *Config) { c.Timing.Interval, c.Timing.Jitter = 100*time.Millisecond, 100*time.Millisecond }, "jitter"},
		{"witness timeout past lease", func(c *Config) { c.Timing.Lease, c.Timing.WitnessTimeout = time.Second, time.Second }, "witness timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			if tc.mod != nil {
				tc.mod(&cfg)
			}
			_, err := New(cfg)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("New: %v, want error containing %q", err, tc.err)
			}
		})
	}
}
