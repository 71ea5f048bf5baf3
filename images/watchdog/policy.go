package watchdog

import (
	"fmt"
	"time"
)

// Defaults.
const (
	// DefaultDevice is the first watchdog the kernel registered.
	DefaultDevice = "/dev/watchdog"
	// DefaultTimeout is the hardware timeout asked for.
	DefaultTimeout = 30 * time.Second
	// DefaultGrace is how long nasd may fail its health probes before
	// the watchdog is no longer fed: time for the init to restart a
	// crashed nasd and for nasd to start its services.
	DefaultGrace = 60 * time.Second
)

// Config says how the watchdog runs.
type Config struct {
	// Device is the watchdog device; "" means DefaultDevice.
	Device string
	// Timeout is the hardware timeout; 0 means DefaultTimeout. The
	// driver may round it (Open returns the one it took).
	Timeout time.Duration
	// Grace is how long unhealthy probes are tolerated once nasd has
	// served; 0 means DefaultGrace.
	Grace time.Duration
}

// WithDefaults fills in the zero fields.
func (c Config) WithDefaults() Config {
	if c.Device == "" {
		c.Device = DefaultDevice
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	return c
}

// Check validates c (after WithDefaults).
func (c Config) Check() error {
	if c.Timeout < 2*time.Second || c.Timeout > time.Hour || c.Timeout%time.Second != 0 {
		return fmt.Errorf("watchdog: timeout %v: want whole seconds, 2s to 1h", c.Timeout)
	}
	if c.Grace < 0 || c.Grace > time.Hour {
		return fmt.Errorf("watchdog: grace %v: want 0 to 1h", c.Grace)
	}
	return nil
}

// Interval is how often to probe and pet for a hardware timeout:
// a third of it, so a pet is late only after two missed ticks.
func Interval(timeout time.Duration) time.Duration {
	return max(timeout/3, 500*time.Millisecond)
}

// Phase is where the Policy is.
type Phase int

// Phases.
const (
	// Booting: nasd has not served yet; the watchdog is fed while the
	// init lives.
	Booting Phase = iota
	// Healthy: the last passing probe is at most Grace old.
	Healthy
	// Unhealthy: no passing probe for longer than Grace; the watchdog
	// is no longer fed and resets the box.
	Unhealthy
	// Stopping: a clean shutdown began; fed until closed.
	Stopping
)

func (p Phase) String() string {
	switch p {
	case Booting:
		return "booting"
	case Healthy:
		return "healthy"
	case Unhealthy:
		return "unhealthy"
	case Stopping:
		return "stopping"
	}
	return fmt.Sprintf("Phase(%d)", int(p))
}

// Policy decides when to pet. It is not safe for concurrent use.
type Policy struct {
	grace       time.Duration
	served      bool
	stopping    bool
	lastHealthy time.Time
	failures    int
}

// NewPolicy returns a Policy tolerating grace of failed probes.
func NewPolicy(grace time.Duration) *Policy { return &Policy{grace: grace} }

// Probed records a health probe's outcome at now.
func (p *Policy) Probed(now time.Time, healthy bool) {
	if healthy {
		p.served, p.lastHealthy, p.failures = true, now, 0
		return
	}
	p.failures++
}

// Failures is the number of failed probes since the last passing one.
func (p *Policy) Failures() int { return p.failures }

// Stop records that a clean shutdown began: nasd stops (and fails its
// probes) on purpose, so the watchdog is fed until it is closed.
func (p *Policy) Stop() { p.stopping = true }

// Phase returns the phase at now.
func (p *Policy) Phase(now time.Time) Phase {
	switch {
	case p.stopping:
		return Stopping
	case !p.served:
		return Booting
	case now.Sub(p.lastHealthy) <= p.grace:
		return Healthy
	}
	return Unhealthy
}

// Pet reports whether to feed the watchdog at now.
func (p *Policy) Pet(now time.Time) bool { return p.Phase(now) != Unhealthy }

// LastHealthy is when the last probe passed (zero before any).
func (p *Policy) LastHealthy() time.Time { return p.lastHealthy }
