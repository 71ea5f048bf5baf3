package bonding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Datapath carries out a controller's actions: it is the bond as the
// operating system sees it. Agent calls it from one goroutine only.
type Datapath interface {
	// Link reports a NIC's facts for the add checks. A NIC that does not
	// exist is LinkInfo{Exists: false}, not an error.
	Link(name string) (LinkInfo, error)
	// Apply executes one action; Agent never passes Done or Changed.
	Apply(a Action) error
	// Activity returns the NICs (prepared or members) that received frames
	// since the previous call.
	Activity() []string
	// ProbeAnswers returns the NICs (prepared or members) through which an
	// ARP reply to one of their SendProbe actions arrived since the
	// previous call: sender IP the probe's Target, target IP its SrcIP.
	// A datapath that cannot send probes returns nil.
	ProbeAnswers() []string
	// Carrier delivers carrier changes; NICs the controller does not know
	// are ignored.
	Carrier() <-chan Carrier
}

// AgentOptions tune an Agent; the zero value is fine.
type AgentOptions struct {
	Logger *slog.Logger
	// Ticks drives the controller's clock; nil means a ticker at a quarter
	// of the detection interval. Tests pass their own channel.
	Ticks <-chan time.Time
	// Now is the clock for the first tick; nil means time.Now.
	Now func() time.Time
	// OnChange, if set, is called (from Run's goroutine) for every NIC
	// state change.
	OnChange func(Changed)
}

// Agent drives a Controller: it feeds it ticks, carrier changes and receive
// activity from the Datapath, executes its actions and serves requests.
type Agent struct {
	c       *Controller
	dp      Datapath
	opts    AgentOptions
	log     *slog.Logger
	reqs    chan func()
	stopped chan struct{}
	waiters map[string][]chan error
}

// ErrStopped is returned by requests made after Run has returned.
var ErrStopped = errors.New("bonding: agent stopped")

// NewAgent returns an agent for c over dp; call Run.
func NewAgent(c *Controller, dp Datapath, opts AgentOptions) *Agent {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Agent{c: c, dp: dp, opts: opts, log: log, reqs: make(chan func()), stopped: make(chan struct{}), waiters: map[string][]chan error{}}
}

// Run drives the controller until ctx ends. It leaves the bond as it is;
// call Remove for every NIC first to dissolve it.
func (a *Agent) Run(ctx context.Context) error {
	defer close(a.stopped)
	ticks := a.opts.Ticks
	if ticks == nil {
		t := time.NewTicker(a.c.Config().Interval / 4)
		defer t.Stop()
		ticks = t.C
	}
	a.exec(a.c.Step(Tick{Now: a.opts.Now()}))
	for {
		select {
		case <-ctx.Done():
			for k, ws := range a.waiters {
				for _, w := range ws {
					w <- ErrStopped
				}
				delete(a.waiters, k)
			}
			return nil
		case now := <-ticks:
			for _, n := range a.dp.Activity() {
				a.exec(a.c.Step(Received{NIC: n}))
			}
			for _, n := range a.dp.ProbeAnswers() {
				a.exec(a.c.Step(ProbeAnswered{NIC: n}))
			}
			a.exec(a.c.Step(Tick{Now: now}))
		case ev := <-a.dp.Carrier():
			a.log.Debug("bonding: carrier", "nic", ev.NIC, "up", ev.Up)
			a.exec(a.c.Step(ev))
		case f := <-a.reqs:
			f()
		}
	}
}

func key(op, nic string) string { return op + "/" + nic }

// exec carries out actions in order (see Action for failures).
func (a *Agent) exec(acts []Action) {
	for _, act := range acts {
		switch act := act.(type) {
		case Done:
			k := key(act.Op, act.NIC)
			ws := a.waiters[k]
			delete(a.waiters, k)
			for _, w := range ws {
				w <- act.Err
			}
			if act.Err != nil {
				a.log.Warn("bonding: request failed", "op", act.Op, "nic", act.NIC, "err", act.Err)
			}
			continue
		case Changed:
			a.log.Info("bonding: nic state", "nic", act.NIC, "from", act.From.String(), "to", act.To.String(), "reason", act.Reason)
			if a.opts.OnChange != nil {
				a.opts.OnChange(act)
			}
			continue
		}
		err := a.dp.Apply(act)
		if err == nil {
			continue
		}
		level := slog.LevelWarn
		switch act.(type) {
		case SendProbe, Announce:
			level = slog.LevelDebug // expected while a path is dead; the state change says it
		}
		a.log.Log(context.Background(), level, "bonding: datapath action failed", "action", fmt.Sprintf("%T", act), "err", err)
		a.exec(a.c.Step(Failed{Action: act, Err: err}))
		switch act.(type) {
		case Prepare, CreateBond, Enslave:
			return
		}
	}
}

// do runs f on Run's goroutine and waits for the answer f (or a later Done
// action) sends on done.
func (a *Agent) do(ctx context.Context, f func(done chan error)) error {
	done := make(chan error, 1)
	select {
	case a.reqs <- func() { f(done) }:
	case <-a.stopped:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-a.stopped:
		select {
		case err := <-done:
			return err
		default:
			return ErrStopped
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Agent) wait(op, nic string, done chan error) {
	k := key(op, nic)
	a.waiters[k] = append(a.waiters[k], done)
}

// Add adds a NIC to the bond and waits until it is admitted or refused.
func (a *Agent) Add(ctx context.Context, nic string) error {
	return a.do(ctx, func(done chan error) {
		l, err := a.dp.Link(nic)
		if err != nil {
			done <- fmt.Errorf("bonding: add %s: %w", nic, err)
			return
		}
		l.Name = nic
		a.wait("add", nic, done)
		a.exec(a.c.Step(AddNIC{Link: l}))
	})
}

// Remove removes a NIC from the bond; removing the last one dissolves it.
func (a *Agent) Remove(ctx context.Context, nic string) error {
	return a.do(ctx, func(done chan error) {
		a.wait("remove", nic, done)
		a.exec(a.c.Step(RemoveNIC{NIC: nic}))
	})
}

// SetMode switches between load-balance and failover.
func (a *Agent) SetMode(ctx context.Context, m Mode) error {
	return a.do(ctx, func(done chan error) {
		a.wait("mode", "", done)
		a.exec(a.c.Step(SetMode{Mode: m}))
	})
}

// Status returns a snapshot of the bond.
func (a *Agent) Status(ctx context.Context) (Status, error) {
	var s Status
	err := a.do(ctx, func(done chan error) {
		s = a.c.Status()
		done <- nil
	})
	return s, err
}
