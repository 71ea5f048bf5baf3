package heartbeat

import (
	"errors"
	"fmt"
	"time"
)

// Defaults. Heartbeats go out every 100–200 ms (150 ms ± 50 ms); the dead
// interval tolerates four missed heartbeats at the longest spacing plus a
// scheduling stall, 900 ms, under the 1 s budget. Heartbeats were measured
// up to ~40 ms late on a loaded VM; DefaultStall allows 2.5 times that.
const (
	DefaultInterval        = 150 * time.Millisecond
	DefaultJitter          = 50 * time.Millisecond
	DefaultStall           = 100 * time.Millisecond
	DefaultMisses          = 4
	DefaultWitnessInterval = time.Second
	DefaultWitnessTimeout  = 300 * time.Millisecond
	DefaultFailbackDelay   = 10 * time.Second
)

// Timing holds the machine's intervals. Zero fields take defaults
// (WithDefaults); derived defaults are computed from the other fields.
type Timing struct {
	// Interval is the mean heartbeat interval; each gap is drawn
	// uniformly from [Interval-Jitter, Interval+Jitter].
	Interval time.Duration
	Jitter   time.Duration
	// Stall is the scheduling-stall tolerance: how late a tick or a
	// heartbeat may be on a loaded machine without meaning anything. A
	// gap between ticks longer than Stall is treated as this process
	// having stalled (StallCredit), not as the peer going silent.
	Stall time.Duration
	// Misses is how many heartbeats at the longest spacing may be lost
	// before the peer is dead; it is only used to derive Dead.
	Misses int
	// Dead: the peer is dead when no path delivered a heartbeat for this
	// long. Default DeadInterval(Interval, Jitter, Stall, Misses).
	Dead time.Duration
	// Lease is how long a serving node may serve past the send time of
	// its newest heartbeat the peer acknowledged (or past a witness probe
	// when acks stop). Default MinDead: two heartbeats at the longest
	// spacing plus the stall tolerance. Any value is safe for the standby
	// (it promotes no earlier than last heard + Lease + Stall); a shorter
	// one makes a master give up sooner when acks stop and the witness
	// does not answer, a longer one delays takeover once it exceeds Dead.
	Lease time.Duration
	// StartupWait is how long a node that has never heard its peer waits
	// before it may promote on its own. Default Dead + Lease.
	StartupWait time.Duration
	// WitnessInterval is how long a witness result stays fresh; a node
	// that needs the witness re-probes this often.
	WitnessInterval time.Duration
	// WitnessTimeout: a probe unanswered for this long counts as
	// "unreachable". Must be shorter than Lease.
	WitnessTimeout time.Duration
	// FailbackDelay: with FailbackAuto, how long the primary must have
	// been an alive, caught-up Slave before the PrimarySlave hands over.
	FailbackDelay time.Duration
}

// DefaultTiming returns the default timing, all fields filled in.
func DefaultTiming() Timing { return Timing{}.WithDefaults() }

// WithDefaults fills zero fields with defaults.
func (t Timing) WithDefaults() Timing {
	if t.Interval == 0 {
		t.Interval = DefaultInterval
		if t.Jitter == 0 {
			t.Jitter = DefaultJitter
		}
	}
	if t.Stall == 0 {
		t.Stall = DefaultStall
	}
	if t.Misses == 0 {
		t.Misses = DefaultMisses
	}
	if t.Dead == 0 {
		t.Dead = DeadInterval(t.Interval, t.Jitter, t.Stall, t.Misses)
	}
	if t.Lease == 0 {
		t.Lease = MinDead(t.Interval, t.Jitter, t.Stall)
	}
	if t.StartupWait == 0 {
		t.StartupWait = t.Dead + t.Lease
	}
	if t.WitnessInterval == 0 {
		t.WitnessInterval = DefaultWitnessInterval
	}
	if t.WitnessTimeout == 0 {
		t.WitnessTimeout = min(DefaultWitnessTimeout, t.Lease/2)
	}
	if t.FailbackDelay == 0 {
		t.FailbackDelay = DefaultFailbackDelay
	}
	return t
}

// Validate checks a filled-in Timing (see WithDefaults).
func (t Timing) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if t.Interval <= 0 {
		bad("interval %v must be positive", t.Interval)
	}
	if t.Jitter < 0 || t.Jitter >= t.Interval {
		bad("jitter %v must be in [0, interval %v)", t.Jitter, t.Interval)
	}
	if t.Stall < 0 {
		bad("stall tolerance %v must not be negative", t.Stall)
	}
	if minDead := MinDead(t.Interval, t.Jitter, t.Stall); t.Dead < minDead {
		bad("dead interval %v is below %v (two heartbeats at the longest spacing plus the stall tolerance)", t.Dead, minDead)
	}
	if t.Lease <= 0 {
		bad("lease %v must be positive", t.Lease)
	}
	if t.StartupWait < t.Dead {
		bad("startup wait %v must be at least the dead interval %v", t.StartupWait, t.Dead)
	}
	if t.WitnessTimeout <= 0 || t.WitnessTimeout >= t.Lease {
		bad("witness timeout %v must be in (0, lease %v)", t.WitnessTimeout, t.Lease)
	}
	if t.WitnessInterval < t.WitnessTimeout {
		bad("witness interval %v must be at least the witness timeout %v", t.WitnessInterval, t.WitnessTimeout)
	}
	if t.FailbackDelay < 0 {
		bad("failback delay %v must not be negative", t.FailbackDelay)
	}
	if len(errs) > 0 {
		return fmt.Errorf("heartbeat: timing: %w", errors.Join(errs...))
	}
	return nil
}

// DeadInterval is the default dead interval: misses heartbeats at the
// longest spacing (interval+jitter), plus the stall tolerance.
func DeadInterval(interval, jitter, stall time.Duration, misses int) time.Duration {
	return time.Duration(misses)*(interval+jitter) + stall
}

// MinDead is the shortest dead interval Validate accepts: a live peer's
// heartbeats must be allowed to miss at least one beat and be a stall late.
func MinDead(interval, jitter, stall time.Duration) time.Duration {
	return 2*(interval+jitter) + stall
}

// Jittered returns the gap before the next heartbeat for a uniform random
// u in [0, 1): interval-jitter + 2·jitter·u. u is clamped to [0, 1].
func Jittered(interval, jitter time.Duration, u float64) time.Duration {
	u = max(0, min(1, u))
	return interval - jitter + time.Duration(u*float64(2*jitter))
}

// StallCredit is how much of a gap between two ticks is this process's own
// stall rather than time the peer had to send in: the part beyond the
// stall tolerance. Timers that measure the peer's silence are pushed back
// by it, so a node that was frozen gives its peer's queued heartbeats a
// chance to arrive before it declares the peer dead.
func StallCredit(gap, stall time.Duration) time.Duration {
	return max(0, gap-stall)
}

// TickPeriod is how often a driver should Tick the machine: fine enough
// that heartbeats leave within a fraction of the jitter and the stall
// tolerance, Interval/6 and Stall/4 at most, clamped to [5 ms, 50 ms].
func TickPeriod(t Timing) time.Duration {
	p := t.Interval / 6
	if t.Stall > 0 {
		p = min(p, t.Stall/4)
	}
	return max(5*time.Millisecond, min(50*time.Millisecond, p))
}

// PromoteAt is the earliest time a standby that last heard a version 1
// master at lastHeard may promote: the master is dead after dead, and its
// lease, renewed at every heartbeat it sent while it heard the standby, so
// at most dead after lastHeard, has run out after lease more.
func PromoteAt(lastHeard time.Time, dead, lease time.Duration) time.Time {
	return lastHeard.Add(dead + lease)
}

// LeaseEnd bounds the lease of a master this node last heard at
// lastHeard: the master renews only to the send time of a heartbeat this
// node acknowledged plus Lease, and this node heard that heartbeat no
// later than lastHeard. Stall covers the tick granularity of lastHeard
// (a heartbeat is stamped with the machine's last tick, a little before
// it arrived) and scheduling.
func LeaseEnd(lastHeard time.Time, t Timing) time.Time {
	return lastHeard.Add(t.Lease + t.Stall)
}

// AckedPromoteAt is the earliest time a standby that last heard the
// master at lastHeard may promote: the master is dead and its lease over.
func AckedPromoteAt(lastHeard time.Time, t Timing) time.Time {
	return later(lastHeard.Add(t.Dead), LeaseEnd(lastHeard, t))
}

// AckStale is how long a serving node goes without an ack before it asks
// the witness to keep its lease: late enough that an unanswered probe
// times out as the lease runs out, but never before a heartbeat at the
// longest spacing could have been acknowledged.
func (t Timing) AckStale() time.Duration {
	return max(t.Interval+t.Jitter, t.Lease-t.WitnessTimeout)
}

// Rank is a node's epoch class in a pair: 0 for the lower node id, 1 for
// the higher. A node without a peer has rank 0.
func Rank(node, peer uint32) int {
	if peer != 0 && node > peer {
		return 1
	}
	return 0
}

// NextEpoch is the epoch a node of the given rank takes when it promotes
// while the highest epoch it knows is cur: the smallest epoch above cur
// with epoch%2 == rank. The two nodes of a pair thus never promote into
// the same epoch.
func NextEpoch(cur uint64, rank int) uint64 {
	e := cur + 1
	if int(e%2) != rank&1 {
		e++
	}
	return e
}
