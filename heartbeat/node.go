package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// VIPController adds, removes and announces the virtual IP. VIP
// implements it on Linux.
type VIPController interface {
	Add(ctx context.Context) error
	Remove(ctx context.Context) error
	// Announce sends the gratuitous ARPs (at once, then repeated); Node
	// runs it in the background and cancels it on release.
	Announce(ctx context.Context) error
}

// Services starts and stops (or enables and disables) the file services.
type Services interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// NodeConfig configures a Node.
type NodeConfig struct {
	Machine   Config
	Key       []byte // HMAC key shared by the pair, at least MinKeyLen bytes
	Transport Transport
	VIP       VIPController
	Services  Services
	// Witness probes the witness (gateway or configured address). It runs
	// in its own goroutine; its context ends at Timing.WitnessTimeout.
	Witness func(ctx context.Context) bool
	// SaveEpoch persists a new epoch. It runs before the actions that
	// follow it; if it fails the node reports itself unhealthy, so it
	// never serves in an epoch it could forget.
	SaveEpoch func(epoch uint64) error
	// OnAction, if set, sees every action after it was executed (metrics,
	// the journal layer switching between shipping and applying).
	OnAction func(Action)
	// Ticks, if set, replaces the real ticker (tests). Every value is a
	// Tick's Now.
	Ticks <-chan time.Time
	Log   *slog.Logger
}

// Node runs a Machine: it ticks it, feeds it authenticated heartbeats from
// the Transport and events from Submit, and executes its actions. VIP
// changes and epoch persistence run inline, in order; service start/stop
// runs in order on a worker, so a slow service never delays heartbeats;
// gratuitous ARPs and witness probes run in the background.
type Node struct {
	cfg    NodeConfig
	m      *Machine
	rx     *Receiver
	log    *slog.Logger
	events chan Event

	mu      sync.Mutex
	status  Status
	rstats  ReceiverStats
	changed chan struct{} // closed and replaced at every status update

	// Owned by Run.
	ctx       context.Context
	svc       chan func(context.Context)
	announce  context.CancelFunc
	bg        sync.WaitGroup
	probeSeq  uint64
	persistOK bool
}

// witnessAnswer is a WitnessResult tagged with the probe it answers.
type witnessAnswer struct {
	seq       uint64
	reachable bool
}

func (witnessAnswer) isEvent() {}

// NewNode checks cfg and builds the Machine and Receiver.
func NewNode(cfg NodeConfig) (*Node, error) {
	if cfg.Transport == nil || cfg.VIP == nil || cfg.Services == nil || cfg.Witness == nil || cfg.SaveEpoch == nil {
		return nil, errors.New("heartbeat: node: Transport, VIP, Services, Witness and SaveEpoch are required")
	}
	m, err := New(cfg.Machine)
	if err != nil {
		return nil, err
	}
	var peers []uint32
	if p := m.Config().PeerID; p != 0 {
		peers = append(peers, p)
	}
	rx, err := NewReceiver(cfg.Key, m.Config().ClusterID, peers...)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: node: %w", err)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Node{cfg: cfg, m: m, rx: rx, log: log, events: make(chan Event, 64), status: m.Status(), changed: make(chan struct{})}, nil
}

// Submit queues an event (ServiceHealth, JournalPosition, Promote, Demote,
// Failback) for the machine. It blocks only while the queue is full.
func (n *Node) Submit(ctx context.Context, ev Event) error {
	select {
	case n.events <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status returns the machine's status as of the last event.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status
}

// StatusChanged returns a channel closed at the next update of Status
// (every event the machine handles: ticks and heartbeats included), for
// callers waiting for a condition on it.
func (n *Node) StatusChanged() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changed
}

// ReceiverStats returns the heartbeat receiver's counters.
func (n *Node) ReceiverStats() ReceiverStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rstats
}

// Run runs the node until ctx ends. First it removes a VIP left behind by
// an earlier process; on return the VIP is removed and the services are
// stopped if this node was serving. It does not close the Transport.
// Call it once.
func (n *Node) Run(ctx context.Context) error {
	if err := n.cfg.VIP.Remove(ctx); err != nil {
		return fmt.Errorf("heartbeat: node: remove stale vip: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n.ctx = ctx
	n.svc = make(chan func(context.Context), 16)
	n.bg.Add(1)
	go n.serviceWorker(ctx)

	ticks := n.cfg.Ticks
	if ticks == nil {
		t := time.NewTicker(TickPeriod(n.m.Config().Timing))
		defer t.Stop()
		ticks = t.C
		n.step(Tick{Now: time.Now()})
	}
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-ticks:
			n.step(Tick{Now: now})
		case p, ok := <-n.cfg.Transport.Packets():
			if !ok {
				err = errors.New("heartbeat: node: transport closed")
				break loop
			}
			msg, aerr := n.rx.Accept(p.Path, p.Data)
			if aerr != nil {
				n.log.Debug("heartbeat: dropped datagram", "path", p.Path, "err", aerr)
				n.mu.Lock()
				n.rstats = n.rx.Stats()
				n.mu.Unlock()
				continue
			}
			n.step(Heartbeat{Path: p.Path, Msg: msg})
		case ev := <-n.events:
			n.step(ev)
		}
	}
	cancel()
	n.bg.Wait() // service worker, announcements, probes
	n.shutdown(context.WithoutCancel(ctx))
	return err
}

// shutdown removes the VIP and, if this node was serving, stops the
// services, with the background goroutines already gone.
func (n *Node) shutdown(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := n.cfg.VIP.Remove(ctx); err != nil {
		n.log.Error("heartbeat: remove vip at shutdown", "err", err)
	}
	if n.m.Serving() {
		if err := n.cfg.Services.Stop(ctx); err != nil {
			n.log.Error("heartbeat: stop services at shutdown", "err", err)
		}
	}
}

func (n *Node) serviceWorker(ctx context.Context) {
	defer n.bg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-n.svc:
			f(ctx)
		}
	}
}

func (n *Node) step(ev Event) {
	if w, ok := ev.(witnessAnswer); ok {
		if w.seq != n.probeSeq {
			return // answer to an older probe
		}
		ev = WitnessResult{Reachable: w.reachable}
	}
	acts := n.m.Step(ev)
	n.persistOK = true
	for _, a := range acts {
		n.execute(a)
		if n.cfg.OnAction != nil {
			n.cfg.OnAction(a)
		}
	}
	n.mu.Lock()
	n.status = n.m.Status()
	n.rstats = n.rx.Stats()
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
	if !n.persistOK {
		n.step(ServiceHealth{OK: false, Reason: "cannot persist the epoch"})
	}
}

func (n *Node) execute(a Action) {
	ctx := n.ctx
	switch a := a.(type) {
	case Send:
		for p := 0; p < n.m.Config().Paths; p++ {
			msg := a.Msg
			msg.Path = uint8(p)
			if err := n.cfg.Transport.Send(p, Encode(n.cfg.Key, msg)); err != nil {
				n.log.Debug("heartbeat: send", "path", p, "err", err)
			}
		}
	case EpochChanged:
		if err := n.cfg.SaveEpoch(a.Epoch); err != nil {
			n.log.Error("heartbeat: persist epoch", "epoch", a.Epoch, "err", err)
			n.persistOK = false
		}
	case AddVIP:
		if !n.persistOK {
			return
		}
		if err := n.cfg.VIP.Add(ctx); err != nil {
			n.log.Error("heartbeat: add vip", "err", err)
		}
	case GratuitousARP:
		if !n.persistOK {
			return
		}
		n.stopAnnounce()
		actx, cancel := context.WithCancel(ctx)
		n.announce = cancel
		n.bg.Add(1)
		go func() {
			defer n.bg.Done()
			if err := n.cfg.VIP.Announce(actx); err != nil && actx.Err() == nil {
				n.log.Error("heartbeat: gratuitous arp", "err", err)
			}
		}()
	case RemoveVIP:
		n.stopAnnounce()
		if err := n.cfg.VIP.Remove(ctx); err != nil {
			n.log.Error("heartbeat: remove vip", "err", err)
		}
	case StartServices:
		if !n.persistOK {
			return
		}
		n.queueService(func(ctx context.Context) error { return n.cfg.Services.Start(ctx) }, "start")
	case StopServices:
		n.queueService(func(ctx context.Context) error { return n.cfg.Services.Stop(ctx) }, "stop")
	case ProbeWitness:
		n.probeSeq++
		seq, timeout := n.probeSeq, n.m.Config().Timing.WitnessTimeout
		n.bg.Add(1)
		go func() {
			defer n.bg.Done()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			ok := n.cfg.Witness(pctx)
			cancel()
			select {
			case n.events <- witnessAnswer{seq: seq, reachable: ok}:
			case <-ctx.Done():
			}
		}()
	case StateChanged:
		n.log.Info("heartbeat: state", "from", a.From, "to", a.To, "reason", a.Reason, "epoch", n.m.Epoch())
	case Alarm:
		n.log.Warn("heartbeat: alarm", "alarm", a.String())
	case ClearAlarm:
		n.log.Info("heartbeat: alarm cleared", "alarm", a.Alarm.String())
	case RenewLease:
		// No lease enforcement here; OnAction sees it.
	}
}

func (n *Node) stopAnnounce() {
	if n.announce != nil {
		n.announce()
		n.announce = nil
	}
}

func (n *Node) queueService(f func(context.Context) error, what string) {
	job := func(ctx context.Context) {
		if err := f(ctx); err != nil {
			n.log.Error("heartbeat: services "+what, "err", err)
		}
	}
	select {
	case n.svc <- job:
	case <-n.ctx.Done():
	}
}
