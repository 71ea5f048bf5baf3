package heartbeat

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

const testCluster = 7

// tick is the test driver's tick period.
const tick = 25 * time.Millisecond

// tm drives one Machine by hand; the peer is simulated by messages built
// from the peer template.
type tm struct {
	t    *testing.T
	m    *Machine
	now  time.Time
	peer Msg // template for the peer's heartbeats
	sent []Msg
	// witness, when set, answers every ProbeWitness at once.
	witness *bool
	// staleAcks: the peer hears nothing new from the machine (its acks
	// stay as they are).
	staleAcks bool
}

func ptr[T any](v T) *T { return &v }

func baseConfig() Config {
	return Config{ClusterID: testCluster, NodeID: 1, PeerID: 2, Role: RolePrimary, Seed: 1}
}

func newTM(t *testing.T, mod func(*Config)) *tm {
	t.Helper()
	cfg := baseConfig()
	if mod != nil {
		mod(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h := &tm{t: t, m: m, now: t0}
	h.peer = Msg{ClusterID: testCluster, NodeID: cfg.PeerID, State: StateSlave, Seq: 1000}
	if cfg.Role == RoleStandby {
		h.peer.Flags = FlagPrimary
	}
	return h
}

func (h *tm) step(ev Event) []Action {
	acts := h.m.Step(ev)
	for _, a := range acts {
		if s, ok := a.(Send); ok {
			h.sent = append(h.sent, s.Msg)
		}
	}
	if h.witness != nil && has(acts, "ProbeWitness") {
		acts = append(acts, h.step(WitnessResult{Reachable: *h.witness})...)
	}
	return acts
}

// tick advances the clock by d in one Tick.
func (h *tm) tick(d time.Duration) []Action {
	h.now = h.now.Add(d)
	return h.step(Tick{Now: h.now})
}

// hear delivers one peer heartbeat (the template, next sequence, acking
// the newest heartbeat the machine sent unless the template is Legacy) on
// each given path, or on paths 0 and 1 when none are given.
func (h *tm) hear(paths ...int) []Action {
	if len(paths) == 0 {
		paths = []int{0, 1}
	}
	h.peer.Seq++
	if len(h.sent) > 0 && !h.peer.Legacy && !h.staleAcks {
		h.peer.Ack = h.sent[len(h.sent)-1].Seq
	}
	var acts []Action
	for _, p := range paths {
		msg := h.peer
		msg.Path = uint8(p)
		acts = append(acts, h.step(Heartbeat{Path: p, Msg: msg})...)
	}
	return acts
}

// run advances the clock by d in test ticks. If paths is not nil, the peer
// sends a heartbeat on those paths every 150 ms.
func (h *tm) run(d time.Duration, paths []int) []Action {
	var acts []Action
	end := h.now.Add(d)
	nextHB := h.now
	for h.now.Before(end) {
		acts = append(acts, h.tick(tick)...)
		if paths != nil && !h.now.Before(nextHB) {
			if len(paths) > 0 {
				acts = append(acts, h.hear(paths...)...)
			}
			nextHB = h.now.Add(150 * time.Millisecond)
		}
	}
	return acts
}

// runUntil ticks (peer heartbeats as in run) until cond holds, at most d.
func (h *tm) runUntil(d time.Duration, paths []int, cond func([]Action) bool) ([]Action, bool) {
	var all []Action
	end := h.now.Add(d)
	for h.now.Before(end) {
		acts := h.run(tick, paths)
		all = append(all, acts...)
		if cond(acts) {
			return all, true
		}
	}
	return all, false
}

func (h *tm) lastSent() Msg {
	h.t.Helper()
	if len(h.sent) == 0 {
		h.t.Fatal("nothing sent")
	}
	return h.sent[len(h.sent)-1]
}

func desc(a Action) string {
	switch a := a.(type) {
	case Send:
		return fmt.Sprintf("Send(%v e%d %v)", a.Msg.State, a.Msg.Epoch, a.Msg.Flags)
	case EpochChanged:
		return fmt.Sprintf("Epoch(%d)", a.Epoch)
	case StateChanged:
		return fmt.Sprintf("State(%v->%v)", a.From, a.To)
	case Alarm:
		return "Alarm(" + a.String() + ")"
	case ClearAlarm:
		return "Clear(" + a.Alarm.String() + ")"
	case RenewLease:
		return "Lease"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", a), "heartbeat.")
}

func descs(acts []Action) []string {
	out := make([]string, len(acts))
	for i, a := range acts {
		out[i] = desc(a)
	}
	return out
}

// wantActs checks the exact action list.
func wantActs(t *testing.T, acts []Action, want ...string) {
	t.Helper()
	if got := descs(acts); !slices.Equal(got, want) {
		t.Fatalf("actions:\n got  %q\n want %q", got, want)
	}
}

// has reports whether acts contains an action described as d.
func has(acts []Action, d string) bool {
	return slices.Contains(descs(acts), d)
}

func wantHas(t *testing.T, acts []Action, ds ...string) {
	t.Helper()
	for _, d := range ds {
		if !has(acts, d) {
			t.Fatalf("actions %q lack %s", descs(acts), d)
		}
	}
}

func wantNot(t *testing.T, acts []Action, ds ...string) {
	t.Helper()
	for _, d := range ds {
		if has(acts, d) {
			t.Fatalf("actions %q contain %s", descs(acts), d)
		}
	}
}

func countOf[T Action](acts []Action) int {
	n := 0
	for _, a := range acts {
		if _, ok := a.(T); ok {
			n++
		}
	}
	return n
}

func (h *tm) wantState(st State, serving bool, epoch uint64) {
	h.t.Helper()
	s := h.m.Status()
	if s.State != st || s.Serving != serving || s.Epoch != epoch {
		h.t.Fatalf("state %v serving %v epoch %d, want %v serving %v epoch %d", s.State, s.Serving, s.Epoch, st, serving, epoch)
	}
}
