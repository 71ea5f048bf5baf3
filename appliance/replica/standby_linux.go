package replica

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"ftnas/appliance/fileid"
	"ftnas/journal"
)

// Defaults of StandbyConfig.
const (
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
)

// StandbyConfig configures a Standby.
type StandbyConfig struct {
	// Tree is the standby's volume. Its root must carry the master's root
	// Stamp (set when the pair is formed).
	Tree *fileid.Tree
	// PositionPath keeps how far the standby got (journal.PositionFile).
	PositionPath string
	// MasterAddr is dialled over TCP, unless Dial is set.
	MasterAddr string
	Dial       func(ctx context.Context) (net.Conn, error)
	// TLS is the pinned configuration (journal.TLSConfig).
	TLS       *tls.Config
	ClusterID string
	NodeID    string
	// Window bounds unacknowledged batches (journal's default if 0).
	Window int
	// MinBackoff and MaxBackoff bound the wait between connection
	// attempts (DefaultMinBackoff, DefaultMaxBackoff).
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
	Now                    func() time.Time
}

// StandbyStats is what a Standby reports.
type StandbyStats struct {
	Running   bool
	Connected bool
	// Following: connected, and the position is in the log the master
	// ships now (not a log it had before it restarted or the roles
	// changed: that session ends in a resync).
	Following bool
	Peer      string
	// Position is the durable position: the log followed, the last seq
	// applied and committed there, the highest epoch seen.
	Position journal.Position
	// Applied counts records applied by this Run; Reapplied those applied
	// a second time (after a crash between apply and commit).
	Applied   uint64
	Reapplied uint64
	// Lag is how long after its capture on the master the last record was
	// applied here; MaxLag the largest since Run started.
	Lag, MaxLag time.Duration
	LastApply   time.Time // when the last record was applied
	Sessions    uint64    // sessions started
	Reconnects  uint64    // sessions after the first
	LastError   string    // why the last session ended
	NeedResync  bool      // the master's log cannot continue from here
	// HandedOff: the last session ended with the master's hand-off
	// (journal.ErrHandedOff) and nothing was applied since: this node
	// has everything the master logged.
	HandedOff bool
	// HandOffNote is the note the master's hand-off carried
	// (Master.HandOff), or nil.
	HandOffNote []byte
	Apply       journal.FSApplyStats
}

// Standby receives and applies the master's changes.
type Standby struct {
	cfg StandbyConfig
	log *slog.Logger

	runMu sync.Mutex

	mu        sync.Mutex
	recv      *journal.Receiver
	la        *lagApplier
	fs        *journal.FSApplier
	sessions  uint64
	lastErr   string
	resync    bool
	handedOff bool
	note      []byte // the hand-off's note
	// drain is closed by Drain: Run ends when its session does. runDone
	// is closed when the running Run returns (nil when none runs).
	drain   chan struct{}
	runDone chan struct{}
}

// NewStandby checks cfg and returns a Standby; Run starts it.
func NewStandby(cfg StandbyConfig) (*Standby, error) {
	switch {
	case cfg.Tree == nil || cfg.PositionPath == "":
		return nil, errors.New("replica: standby: tree and position path are required")
	case cfg.TLS == nil:
		return nil, errors.New("replica: standby: no TLS configuration")
	case cfg.MasterAddr == "" && cfg.Dial == nil:
		return nil, errors.New("replica: standby: no master address")
	case cfg.ClusterID == "" || cfg.NodeID == "":
		return nil, errors.New("replica: standby: cluster and node IDs are required")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Dial == nil {
		addr := cfg.MasterAddr
		cfg.Dial = func(ctx context.Context) (net.Conn, error) {
			return liveDialer().DialContext(ctx, "tcp", addr)
		}
	}
	return &Standby{cfg: cfg, log: cfg.Logger, drain: make(chan struct{})}, nil
}

// Drain asks Run to end once its session ends, without reconnecting (the
// master's hand-off ends it; so does a broken connection), and waits for
// Run to return or ctx to end. It reports whether the last session ended
// with the master's hand-off after everything was applied
// (StandbyStats.HandedOff). After Drain, Run returns at once.
func (s *Standby) Drain(ctx context.Context) (bool, error) {
	s.mu.Lock()
	select {
	case <-s.drain:
	default:
		close(s.drain)
	}
	done := s.runDone
	s.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return false, fmt.Errorf("replica: standby: drain: %w", context.Cause(ctx))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handedOff, nil
}

func (s *Standby) draining() bool {
	select {
	case <-s.drain:
		return true
	default:
		return false
	}
}

// Stats returns the standby's state.
func (s *Standby) Stats() StandbyStats {
	s.mu.Lock()
	recv, la, fs := s.recv, s.la, s.fs
	st := StandbyStats{Sessions: s.sessions, LastError: s.lastErr, NeedResync: s.resync, HandedOff: s.handedOff, HandOffNote: s.note}
	s.mu.Unlock()
	if st.Sessions > 0 {
		st.Reconnects = st.Sessions - 1
	}
	if recv == nil {
		if pos, err := journal.NewPositionFile(s.cfg.PositionPath).Load(); err == nil {
			st.Position = pos
		}
		return st
	}
	st.Running = true
	rs := recv.Status()
	st.Connected, st.Peer = rs.Connected, rs.Peer
	as := la.stats()
	st.Position = as.Position
	st.Following = rs.Connected && rs.ShipperLog != 0 && as.Position.LogID == rs.ShipperLog
	st.Applied, st.Reapplied, st.Lag, st.MaxLag, st.LastApply = as.Applied, as.Reapplied, as.Lag, as.MaxLag, as.LastApply
	st.Apply = fs.Stats()
	return st
}

// Run follows the master until ctx ends (nil). It reconnects with back-off
// whenever a session ends, except when the master's log cannot continue
// from this standby's position (journal.ErrResync: the standby must be
// resynced) or the master belongs to another cluster
// (journal.ErrWrongCluster); those end Run.
func (s *Standby) Run(ctx context.Context) (err error) {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.draining() {
		return nil
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.runDone = done
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.runDone = nil
		s.mu.Unlock()
		close(done)
	}()
	cfg := s.cfg
	fs, err := journal.NewFSApplier(journal.FSApplierConfig{
		Tree: cfg.Tree, Position: journal.NewPositionFile(cfg.PositionPath), Logger: cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("replica: standby: %w", err)
	}
	defer func() { err = errors.Join(err, fs.Close()) }()
	la, err := newLagApplier(fs, cfg.Now)
	if err != nil {
		return fmt.Errorf("replica: standby: %w", err)
	}
	recv, err := journal.NewReceiver(journal.ReceiverConfig{
		ClusterID: cfg.ClusterID, NodeID: cfg.NodeID, Applier: la, Window: cfg.Window, Logger: cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("replica: standby: %w", err)
	}
	s.mu.Lock()
	s.recv, s.la, s.fs, s.resync = recv, la, fs, false
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.recv, s.la, s.fs = nil, nil, nil
		s.mu.Unlock()
	}()
	s.log.Info("replica standby running", "master", cfg.MasterAddr, "from", la.stats().Position.Seq)

	b := backoff{min: cfg.MinBackoff, max: cfg.MaxBackoff}
	for {
		before := la.stats().Applied
		err := s.session(ctx, recv)
		if ctx.Err() != nil {
			return nil
		}
		s.mu.Lock()
		if err != nil {
			s.lastErr = err.Error()
		}
		switch {
		case errors.Is(err, journal.ErrHandedOff):
			s.handedOff, s.note = true, nil
			if pe, ok := errors.AsType[*journal.PeerError](err); ok {
				s.note = pe.Note
			}
			s.log.Info("replica standby: the master handed off; this node has its whole log", "seq", la.stats().Position.Seq)
		case la.stats().Applied > before:
			s.handedOff, s.note = false, nil
		}
		s.mu.Unlock()
		if s.draining() {
			return nil
		}
		switch {
		case errors.Is(err, journal.ErrResync):
			s.mu.Lock()
			s.resync = true
			s.mu.Unlock()
			s.log.Error("replica standby needs a resync", "err", err)
			return fmt.Errorf("replica: standby: %w", err)
		case errors.Is(err, journal.ErrWrongCluster):
			return fmt.Errorf("replica: standby: %w", err)
		}
		wait := b.next(la.stats().Applied > before)
		s.log.Info("replica standby reconnecting", "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-s.drain:
			t.Stop()
			return nil
		}
	}
}

// session dials the master and runs one receiving session.
func (s *Standby) session(ctx context.Context, recv *journal.Receiver) error {
	conn, err := s.cfg.Dial(ctx)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	tc := tls.Client(conn, s.cfg.TLS)
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		conn.Close()
		return fmt.Errorf("TLS handshake: %w", err)
	}
	s.mu.Lock()
	s.sessions++
	s.mu.Unlock()
	return recv.Serve(ctx, tc)
}
