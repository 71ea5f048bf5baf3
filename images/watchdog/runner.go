package watchdog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Device is an open watchdog.
type Device interface {
	// Keepalive restarts the timer.
	Keepalive() error
	// Close writes the magic 'V' (stopping the timer) and closes.
	Close() error
}

// Runner feeds a watchdog while probes pass (Policy).
type Runner struct {
	Dev    Device
	Policy *Policy
	// Probe checks nasd's health; it gets a context that ends after
	// ProbeTimeout.
	Probe        func(ctx context.Context) error
	ProbeTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger

	// afterEvent, in tests, is called after each event the loop handled
	// ("tick", "probed", "stop").
	afterEvent func(string)
}

// Run probes and pets on every tick until ctx ends or stop is closed.
// After stop it keeps petting (the Policy's Stopping phase) until done
// is closed, then closes the device with the magic 'V'. After ctx ends
// it returns without closing (the caller decides). A tick while a probe
// is still running starts no other probe.
func (r *Runner) Run(ctx context.Context, ticks <-chan time.Time, stop, done <-chan struct{}) error {
	now := r.Now
	if now == nil {
		now = time.Now
	}
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	results := make(chan error, 1)
	probing, stopping := false, false
	last := Booting
	var petErr error
	pet := func() {
		t := now()
		ph := r.Policy.Phase(t)
		if ph != last {
			switch ph {
			case Unhealthy:
				log.Error("watchdog: nasd unhealthy for longer than the grace: no longer feeding the watchdog; the box resets", "last_healthy", r.Policy.LastHealthy(), "failures", r.Policy.Failures())
			default:
				log.Info("watchdog: "+ph.String(), "from", last.String())
			}
			last = ph
		}
		if !r.Policy.Pet(t) {
			return
		}
		if err := r.Dev.Keepalive(); err != nil {
			if petErr == nil {
				log.Error("watchdog: keepalive", "err", err)
			}
			petErr = err
			return
		}
		petErr = nil
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			stopping, stop = true, nil
			r.Policy.Stop()
			pet()
			r.after("stop")
		case <-done:
			if err := r.Dev.Close(); err != nil {
				return fmt.Errorf("watchdog: magic close: %w", err)
			}
			log.Info("watchdog: stopped (magic close)")
			return nil
		case err := <-results:
			probing = false
			r.Policy.Probed(now(), err == nil)
			if err != nil && r.Policy.Phase(now()) != Booting {
				log.Warn("watchdog: health probe failed", "err", err, "failures", r.Policy.Failures())
			}
			r.after("probed")
		case <-ticks:
			if !probing && !stopping {
				probing = true
				go func() {
					pctx, cancel := context.WithTimeout(ctx, r.ProbeTimeout)
					defer cancel()
					err := r.Probe(pctx)
					if err == nil && pctx.Err() != nil {
						err = errors.New("probe took too long")
					}
					results <- err
				}()
			}
			pet()
			r.after("tick")
		}
	}
}

func (r *Runner) after(event string) {
	if r.afterEvent != nil {
		r.afterEvent(event)
	}
}
