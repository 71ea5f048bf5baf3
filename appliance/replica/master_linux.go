package replica

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"ftnas/appliance/fileid"
	"ftnas/journal"
	"ftnas/journal/capture"
	"ftnas/kernel/changelog"
)

// handshakeTimeout bounds a TLS handshake with a connecting standby.
const handshakeTimeout = 10 * time.Second

// DefaultRestartAfter is MasterConfig.RestartAfter's default: a standby
// away for half a minute with the log full is resynced rather than waited
// for.
const DefaultRestartAfter = 30 * time.Second

// MasterConfig configures a Master.
type MasterConfig struct {
	// Volume is the mount point of the master's volume; Tree its file
	// identities.
	Volume string
	Tree   *fileid.Tree
	// Shares are the trees replicated.
	Shares []changelog.Share
	// LogPath is the journal's file; every Run starts it anew (the one
	// before is moved to LogPath+".prev").
	LogPath string
	// MaxDepth bounds the records the log holds before writers are held
	// (journal.DefaultMaxDepth if 0); they are released at half of it.
	MaxDepth int
	// NoSync: the log skips fsync (tests and benchmarks only).
	NoSync bool
	// Epoch is the fencing epoch (heartbeat's); SetEpoch raises it.
	Epoch     uint64
	ClusterID string
	NodeID    string
	// Listener accepts the standby's connections (plain TCP; TLS is done
	// here). If nil, Run listens on Addr. Run closes it.
	Listener net.Listener
	Addr     string
	// TLS is the pinned configuration (journal.TLSConfig).
	TLS *tls.Config
	// Gate holds writers while the log is full (back-pressure); without
	// it the capture waits and the kernel queue may overflow (a rescan).
	Gate bool
	// RestartAfter: once the log has been full this long with no standby
	// connected, it is replaced by a new log that describes the volume
	// afresh (the standby resyncs from it when it comes back), so a
	// standby away for long does not hold the master's writers (or stall
	// its capture) until it returns. DefaultRestartAfter if 0; negative:
	// never (writers wait for the standby).
	RestartAfter time.Duration
	// OnNewLog, if set, is called when such a new log has started (the
	// caller takes a new epoch for it: heartbeat.Renew, then SetEpoch).
	OnNewLog func()
	// Ignore drops changes made by these processes (see capture.Config).
	Ignore func(pid int) bool
	// Hints, if set, is told by the master's own file server (this
	// process) what it writes (see capture.Config).
	Hints *capture.WriteHints
	// Continue, if its LogID is set, is the standby position this node
	// reached when the master before it handed off to it (its Standby's
	// Position after a Drain that reported the hand-off): the volume is
	// exactly that log up to that record. The first log then continues
	// that one (journal.Options.Continue) and describes the volume
	// silently (capture.Config.Continue), so the old master, whose
	// volume is the same, reads on as a copy without a resync. The
	// volume must not change until Ready is closed. A volume that turns
	// out not to be that copy, or one with parked entries, gets a log
	// with a description instead.
	Continue journal.Position
	// Tune adjusts the capture's configuration (tests, benchmarks).
	Tune   func(*capture.Config)
	Logger *slog.Logger
	Now    func() time.Time
}

// MasterStats is what a Master reports.
type MasterStats struct {
	Running   bool
	Epoch     uint64
	LogID     uint64
	Depth     int    // records in the log (not yet acknowledged, or queued)
	LastSeq   uint64 // last record appended
	Acked     uint64 // last record the standby applied durably
	Sent      uint64 // last record sent
	Connected bool
	Peer      string
	// Lag is the age of the oldest record the standby has not
	// acknowledged (0 when it has them all).
	Lag      time.Duration
	Sessions uint64 // standby sessions served
	// Continued: the log continues the standby's (MasterConfig.Continue).
	Continued bool
	Capture   capture.Stats
	LastError string // why the last session ended
}

// Master captures and ships the changes of the master's volume.
type Master struct {
	cfg MasterConfig
	log *slog.Logger

	runMu sync.Mutex // one Run at a time

	mu      sync.Mutex
	jlog    *journal.Log
	capt    *capture.Capture
	ship    *journal.Shipper
	termCtx context.Context // the current log's; its sessions end with it
	// termCancel ends the current log's term with a cause.
	termCancel context.CancelCauseFunc
	// applyFails counts sessions in a row that ended with the standby
	// failing to apply the record after applyFailAt.
	applyFails  int
	applyFailAt uint64
	epoch       uint64
	sessions    uint64
	lastErr     string
	// cont is the continuation the next term starts with (taken by the
	// first term); ready is closed once the volume may change (Ready);
	// contFixed is the continuing term's capture's Fixed, nil when the
	// current term does not continue a log.
	cont      journal.Position
	ready     chan struct{}
	readyOnce sync.Once
	contFixed <-chan struct{}
	// handed is the position the standby had when this master handed
	// off, kept once the term ended with nothing logged after it
	// (HandedOff).
	handed     journal.Position
	handedSeen bool
}

// NewMaster checks cfg and returns a Master; Run starts it.
func NewMaster(cfg MasterConfig) (*Master, error) {
	switch {
	case cfg.Volume == "" || cfg.Tree == nil:
		return nil, errors.New("replica: master: volume and tree are required")
	case cfg.LogPath == "":
		return nil, errors.New("replica: master: no log path")
	case cfg.TLS == nil:
		return nil, errors.New("replica: master: no TLS configuration")
	case cfg.Listener == nil && cfg.Addr == "":
		return nil, errors.New("replica: master: no listener or address")
	case cfg.ClusterID == "" || cfg.NodeID == "":
		return nil, errors.New("replica: master: cluster and node IDs are required")
	}
	if cfg.MaxDepth <= 0 {
		cfg.MaxDepth = journal.DefaultMaxDepth
	}
	if cfg.RestartAfter == 0 {
		cfg.RestartAfter = DefaultRestartAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Master{cfg: cfg, log: cfg.Logger, epoch: cfg.Epoch, cont: cfg.Continue, ready: make(chan struct{})}, nil
}

// SetEpoch raises the fencing epoch of the records appended from now on
// (and of the next session's hello).
func (m *Master) SetEpoch(epoch uint64) error {
	m.mu.Lock()
	l := m.jlog
	if epoch < m.epoch {
		m.mu.Unlock()
		return fmt.Errorf("replica: set epoch %d below %d: %w", epoch, m.epoch, journal.ErrEpoch)
	}
	m.epoch = epoch
	m.mu.Unlock()
	if l != nil {
		return l.SetEpoch(epoch)
	}
	return nil
}

// Stats returns the master's state.
func (m *Master) Stats() MasterStats {
	m.mu.Lock()
	l, c, s := m.jlog, m.capt, m.ship
	st := MasterStats{Epoch: m.epoch, Sessions: m.sessions, LastError: m.lastErr, Continued: m.contFixed != nil}
	m.mu.Unlock()
	if l == nil {
		return st
	}
	st.Running = true
	st.LogID, st.Depth, st.LastSeq = l.ID(), l.Depth(), l.Last()
	if s != nil {
		ss := s.Status()
		st.Acked, st.Sent, st.Connected, st.Peer = ss.Acked, ss.Sent, ss.Connected, ss.Peer
	}
	if c != nil {
		st.Capture = c.Stats()
	}
	if st.Acked < st.LastSeq {
		if recs, err := l.Read(max(st.Acked+1, l.First()), 1); err == nil && len(recs) == 1 {
			st.Lag = max(m.cfg.Now().Sub(time.Unix(0, recs[0].Time)), 0)
		}
	}
	return st
}

// Sync waits until every change made on the volume before it was called is
// in the log (see capture.Capture.Sync); WaitAcked then waits for the
// standby.
func (m *Master) Sync(ctx context.Context) (uint64, error) {
	m.mu.Lock()
	c, l := m.capt, m.jlog
	m.mu.Unlock()
	if c == nil {
		return 0, errors.New("replica: master not running")
	}
	if err := c.Sync(ctx); err != nil {
		return 0, err
	}
	return l.Last(), nil
}

// WaitAcked waits until the standby has applied seq.
func (m *Master) WaitAcked(ctx context.Context, seq uint64) error {
	m.mu.Lock()
	s := m.ship
	m.mu.Unlock()
	if s == nil {
		return errors.New("replica: master not running")
	}
	return s.WaitAcked(ctx, seq)
}

// Run captures and ships until ctx ends (nil), the capture fails, or a
// standby fences this master (an error matching journal.ErrFenced: stop
// serving, another node was promoted).
//
// Each log is a term: its capture, its shipper, the standby sessions it
// serves. When the log is full and no standby has been connected for
// RestartAfter, the term ends and a new log starts (see
// MasterConfig.RestartAfter); the listener stays.
func (m *Master) Run(ctx context.Context) (err error) {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	defer m.setReady() // nothing left to keep the volume unchanged for
	cfg := m.cfg
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	ln := cfg.Listener
	if ln == nil {
		if ln, err = liveListenConfig().Listen(ctx, "tcp", cfg.Addr); err != nil {
			return fmt.Errorf("replica: master: listen on %s: %w", cfg.Addr, err)
		}
	}
	defer ln.Close()

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel(nil)
	wg.Go(func() { m.accept(ctx, ln, cancel, &wg) })
	for {
		err := m.term(ctx)
		if errors.Is(err, errNewLog) && ctx.Err() == nil {
			m.setErr(err)
			m.log.Warn("replica master: starting a new log; the standby resyncs from it when it comes back", "why", err)
			if cfg.OnNewLog != nil {
				cfg.OnNewLog()
			}
			continue
		}
		if err == nil {
			err = context.Cause(ctx)
		}
		ln.Close()
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("replica: master: %w", err)
		}
		return nil
	}
}

// errNewLog ends a term whose log must start anew: it is full with no
// standby to drain it, or the standby keeps failing to apply a record.
var errNewLog = errors.New("a new log is needed")

// stuckAfter is how many sessions in a row the standby may fail to apply
// the same record before the master starts a new log for it to resync
// from (its copy differs from what the log expects: only a resync, whose
// description replaces what differs and prunes what is extra, repairs
// it; a retry never will).
const stuckAfter = 3

// term runs one log until ctx ends or the log must start anew (errNewLog).
func (m *Master) term(ctx context.Context) (err error) {
	cfg := m.cfg
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// A new log: the capture's model of the standby starts empty, so the
	// records of an earlier run are of no use (see the package doc). The
	// old file is kept beside it, never deleted blindly.
	if err := os.Rename(cfg.LogPath, cfg.LogPath+".prev"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("move the old log aside: %w", err)
	}
	cont := m.takeContinue()
	if cont.LogID == 0 {
		m.setReady()
	}
	l, err := journal.Open(cfg.LogPath, journal.Options{MaxDepth: cfg.MaxDepth, NoSync: cfg.NoSync, Logger: cfg.Logger, Now: cfg.Now,
		Continue: journal.Continuation{ID: cont.LogID, After: cont.Seq}})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	m.mu.Lock()
	epoch := m.epoch
	m.mu.Unlock()
	if err := l.SetEpoch(epoch); err != nil {
		return err
	}

	ccfg := capture.Config{
		Volume: cfg.Volume, Tree: cfg.Tree, Shares: cfg.Shares, Log: l,
		Gate: cfg.Gate, ReleaseDepth: cfg.MaxDepth / 2, Ignore: cfg.Ignore, Logger: cfg.Logger, Now: cfg.Now,
		Hints: cfg.Hints, MaxAppend: min(capture.DefaultMaxAppend, max(cfg.MaxDepth/2, 1)),
		Continue: cont.LogID != 0,
	}
	if cfg.Tune != nil {
		cfg.Tune(&ccfg)
	}
	c, err := capture.New(ccfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	ship, err := journal.NewShipper(journal.ShipperConfig{
		Log: l, ClusterID: cfg.ClusterID, NodeID: cfg.NodeID, Source: journal.NewFSSource(syncedResolver{tree: cfg.Tree, sync: c.Sync, log: m.log}), Logger: cfg.Logger,
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.jlog, m.capt, m.ship, m.termCtx, m.termCancel = l, c, ship, ctx, cancel
	m.applyFails, m.applyFailAt = 0, 0
	if cont.LogID != 0 {
		m.contFixed = c.Fixed()
	}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.jlog, m.capt, m.ship, m.termCtx, m.termCancel, m.contFixed = nil, nil, nil, nil, nil, nil
		m.mu.Unlock()
	}()
	m.log.Info("replica master running", "volume", cfg.Volume, "epoch", epoch, "log", l.ID(), "continues_standby_log", cont.LogID != 0)

	var wg sync.WaitGroup
	defer wg.Wait()
	// The capture outlives the term's context by a last Sync when this
	// master handed off (settleHandOff).
	capCtx, capCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer capCancel()
	defer cancel(nil)
	wg.Go(func() {
		err := c.Run(capCtx)
		if errors.Is(err, capture.ErrNotCopy) {
			m.log.Warn("replica master: the volume is not the standby's copy; starting a log that describes it", "err", err)
			err = fmt.Errorf("%w: %w", errNewLog, err)
		}
		if err != nil {
			cancel(err)
		}
	})
	if cont.LogID != 0 {
		wg.Go(func() {
			select {
			case <-c.Fixed():
			case <-ctx.Done():
			}
			m.setReady()
		})
	}
	if cfg.RestartAfter > 0 {
		wg.Go(func() { m.watchFull(ctx, l, c, ship, cancel) })
	}
	<-ctx.Done()
	m.settleHandOff(c, l)
	capCancel()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// watchFull ends the term (errNewLog) once the log has been full, with no
// standby connected, for RestartAfter — provided the log is full of
// changes made after the volume's description, not of the description
// itself: a new log would only describe the volume again (a volume with
// more entries than MaxDepth needs a larger MaxDepth, or its standby).
func (m *Master) watchFull(ctx context.Context, l *journal.Log, c *capture.Capture, ship *journal.Shipper, cancel context.CancelCauseFunc) {
	// The first Sync returns once the description is in the log (never,
	// if the description alone fills it).
	if err := c.Sync(ctx); err != nil {
		return
	}
	described := l.Last()
	every := min(m.cfg.RestartAfter/4, time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	var since time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !c.Stats().Holding || ship.Status().Connected || l.Last()-described < uint64(m.cfg.MaxDepth/2) {
			since = time.Time{}
			continue
		}
		now := m.cfg.Now()
		if since.IsZero() {
			since = now
		}
		if now.Sub(since) >= m.cfg.RestartAfter {
			cancel(fmt.Errorf("%w: the log is full and no standby is connected for %v", errNewLog, m.cfg.RestartAfter))
			return
		}
	}
}

// accept serves each standby connection with the current term's shipper
// (the shipper keeps one session: a new one replaces the one before).
func (m *Master) accept(ctx context.Context, ln net.Listener, cancel context.CancelCauseFunc, wg *sync.WaitGroup) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil {
				m.log.Error("replica master: accept", "err", err)
				cancel(fmt.Errorf("accept: %w", err))
			}
			return
		}
		wg.Go(func() {
			tc := tls.Server(conn, m.cfg.TLS)
			hctx, hcancel := context.WithTimeout(ctx, handshakeTimeout)
			err := tc.HandshakeContext(hctx)
			hcancel()
			if err != nil {
				m.log.Warn("replica master: TLS handshake", "peer", conn.RemoteAddr().String(), "err", err)
				conn.Close()
				m.setErr(err)
				return
			}
			m.mu.Lock()
			ship, tctx, tcancel := m.ship, m.termCtx, m.termCancel
			m.sessions++
			m.mu.Unlock()
			if ship == nil {
				conn.Close() // between terms: the standby dials again
				return
			}
			err = ship.Serve(tctx, tc)
			m.setErr(err)
			if why := m.stuck(err, ship); why != nil {
				tcancel(why)
			}
			if errors.Is(err, journal.ErrFenced) {
				m.log.Error("replica master fenced: a standby has seen a higher epoch", "err", err)
				cancel(err)
			}
		})
	}
}

// stuck counts a session that ended with the standby failing to apply a
// record; after stuckAfter in a row at the same position it returns the
// cause to end the term with (a new log, the standby resyncs from it).
func (m *Master) stuck(err error, ship *journal.Shipper) error {
	var pe *journal.PeerError
	if !errors.As(err, &pe) || pe.Code != journal.CodeApply {
		return nil
	}
	at := ship.Status().Acked
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.applyFails == 0 || at != m.applyFailAt {
		m.applyFails, m.applyFailAt = 0, at
	}
	m.applyFails++
	if m.applyFails < stuckAfter {
		return nil
	}
	m.log.Error("replica master: the standby keeps failing to apply the log; starting a new log for it to resync from",
		"record", at+1, "sessions", m.applyFails, "err", pe.Msg)
	return fmt.Errorf("%w: the standby failed %d times to apply the records after %d: %s", errNewLog, m.applyFails, at, pe.Msg)
}

func (m *Master) setErr(err error) {
	if err == nil {
		return
	}
	m.mu.Lock()
	m.lastErr = err.Error()
	m.mu.Unlock()
}
