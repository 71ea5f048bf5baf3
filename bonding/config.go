package bonding

import (
	"fmt"
	"net/netip"
	"time"
)

// Mode is how a bond spreads traffic over its healthy members.
type Mode uint8

// The bond modes.
const (
	// LoadBalance sends frames round-robin over every healthy member.
	LoadBalance Mode = iota + 1
	// Failover sends over one member (active-backup) and moves to the next
	// healthy one when it fails.
	Failover
)

// String returns the mode's name as nasctl spells it.
func (m Mode) String() string {
	switch m {
	case LoadBalance:
		return "load-balance"
	case Failover:
		return "failover"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ParseMode reads a mode name: load-balance or failover.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "load-balance":
		return LoadBalance, nil
	case "failover":
		return Failover, nil
	}
	return 0, fmt.Errorf("bonding: unknown mode %q (want load-balance or failover)", s)
}

// Defaults for Config fields left zero.
const (
	DefaultInterval   = 100 * time.Millisecond
	DefaultMisses     = 3
	DefaultUpDelay    = 500 * time.Millisecond
	DefaultAddTimeout = time.Second
)

// Config is the controller's configuration; it is what the appliance
// persists, together with the list of NICs in the order they were added.
type Config struct {
	// Mode is the initial mode; zero means LoadBalance.
	Mode Mode
	// Interval is the detection interval: how often a probe goes out
	// through every member and the health of every member is judged.
	Interval time.Duration
	// Misses is how many intervals a member may stay silent (no frame
	// received through it) before it is taken out of rotation. Only used
	// with a ProbeTarget.
	Misses int
	// UpDelay is how long a failed member must stay healthy without a break
	// before it rejoins the rotation.
	UpDelay time.Duration
	// AddTimeout is how long a NIC being added has to answer the
	// reachability probe.
	AddTimeout time.Duration
	// ProbeTarget is the address ARP probes ask for (the gateway or a
	// configured neighbour). The zero Addr turns ARP probing off: a member
	// is then judged by its carrier alone, and adding a NIC does not check
	// that it reaches the switch.
	ProbeTarget netip.Addr
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Mode == 0 {
		c.Mode = LoadBalance
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Misses == 0 {
		c.Misses = DefaultMisses
	}
	if c.UpDelay == 0 {
		c.UpDelay = DefaultUpDelay
	}
	if c.AddTimeout == 0 {
		c.AddTimeout = DefaultAddTimeout
	}
	return c
}

// Validate reports the first field that is out of range.
func (c Config) Validate() error {
	switch {
	case c.Mode != LoadBalance && c.Mode != Failover:
		return fmt.Errorf("bonding: config: bad mode %d", c.Mode)
	case c.Interval <= 0:
		return fmt.Errorf("bonding: config: interval %v must be positive", c.Interval)
	case c.Misses < 1:
		return fmt.Errorf("bonding: config: misses %d must be at least 1", c.Misses)
	case c.UpDelay < 0:
		return fmt.Errorf("bonding: config: up delay %v must not be negative", c.UpDelay)
	case c.AddTimeout <= 0:
		return fmt.Errorf("bonding: config: add timeout %v must be positive", c.AddTimeout)
	case c.ProbeTarget.IsValid() && !c.ProbeTarget.Is4():
		return fmt.Errorf("bonding: config: probe target %v is not an IPv4 address (ARP probes are IPv4)", c.ProbeTarget)
	}
	return nil
}

// Silent reports whether a member whose last frame arrived at lastRx has
// been silent too long at now: more than misses intervals.
func Silent(lastRx, now time.Time, interval time.Duration, misses int) bool {
	return now.Sub(lastRx) > time.Duration(misses)*interval
}

// Settled reports whether a member healthy since healthySince has been
// healthy long enough at now to rejoin the rotation. A zero healthySince
// means it is not healthy.
func Settled(healthySince, now time.Time, upDelay time.Duration) bool {
	return !healthySince.IsZero() && now.Sub(healthySince) >= upDelay
}

// Expired reports whether a deadline has passed at now.
func Expired(deadline, now time.Time) bool {
	return !now.Before(deadline)
}
