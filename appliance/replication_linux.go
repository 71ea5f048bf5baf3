package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/fileid"
	"ftnas/appliance/nfs/nfs3"
	"ftnas/appliance/replica"
	"ftnas/appliance/store"
	"ftnas/heartbeat"
	"ftnas/journal"
	"ftnas/journal/capture"
	"ftnas/kernel/changelog"

	"golang.org/x/sys/unix"
)

// Files of the replication in the state directory.
const (
	journalFile  = "journal.db"  // the master's log
	positionFile = "journal.pos" // how far the standby applied
)

// replication runs this node's side of the journal: the Master while the
// node serves, the Standby while it does not. Heartbeat decides; the
// service adapter calls serve and standBy.
type replication struct {
	c        store.Cluster
	b        *backend
	cfg      *Config
	tree     *fileid.Tree
	log      *slog.Logger
	tls      *pairCerts
	disabled string // why replication cannot run here ("" if it can)

	mu      sync.Mutex
	role    string // "master", "standby" or ""
	cancel  context.CancelFunc
	done    chan struct{}
	master  *replica.Master
	standby *replica.Standby
	// serving is set between serve and the next standBy or stop: a
	// commit elsewhere is refused. runCtx ends when the running side
	// stops, cutting short commits that wait for the standby.
	serving bool
	runCtx  context.Context
	// masterSince is when this node's Master started: a standby the
	// heartbeat hears is waited for until it connects, for syncGrace.
	masterSince time.Time
	// lastAlone is when commitSync last warned about a missing standby.
	lastAlone time.Time
	// outdate: a sync share's change was (or is about to be)
	// acknowledged without the standby; see wantOutdate.
	outdate atomic.Bool
	// renew asks the heartbeat for a new epoch when the master started a
	// new log within its term (set by the cluster runtime).
	renew func()
	// followed is the standby's position as last seen in the log the
	// master ships: what the heartbeat announces (see position).
	followed, followedEpoch uint64
	// cont is the position this standby had when the old master handed
	// off to it (drain): the log its next master role continues
	// (replica.MasterConfig.Continue).
	cont journal.Position
	// handed is the position this node's volume is at since it handed
	// off as master (replica.Master.HandedOff): the new master's log
	// continues it, and following that log this node is a copy all along
	// (position's Continues).
	handed journal.Position
	// resyncs counts the standby's resyncs from a master's new log.
	resyncs atomic.Uint64
}

// pairCerts are this node's certificate and key and the peer's pinned
// certificate (PEM).
type pairCerts struct{ own, key, peer []byte }

func newReplication(c store.Cluster, b *backend, tree *fileid.Tree, log *slog.Logger) *replication {
	cfg := b.cfg
	r := &replication{c: c, b: b, cfg: cfg, tree: tree, log: log.With("service", "replica"),
		tls: &pairCerts{own: []byte(c.Self.CertPEM), key: []byte(c.KeyPEM), peer: []byte(c.Peer.CertPEM)}}
	if err := ownFilesystem(cfg.Volume); err != nil {
		// fanotify marks the whole filesystem the volume is on: never the
		// host's root.
		r.disabled = err.Error()
		r.log.Error("replication disabled", "err", err)
	}
	return r
}

// ownFilesystem checks that dir is the root of its own filesystem.
func ownFilesystem(dir string) error {
	var st, parent unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return fmt.Errorf("replication: stat volume %s: %w", dir, err)
	}
	if err := unix.Stat(filepath.Join(dir, ".."), &parent); err != nil {
		return fmt.Errorf("replication: stat the parent of volume %s: %w", dir, err)
	}
	if st.Dev == parent.Dev && st.Ino != parent.Ino {
		return fmt.Errorf("replication: volume %s is not a filesystem of its own (the change log watches whole filesystems); mount a dedicated filesystem there", dir)
	}
	return nil
}

// pairAddr is where the master serves the pair's streams and the standby
// dials them: the dedicated link when there is one. The journal uses
// port, the config stream port+1.
func pairAddr(n store.ClusterNode, port uint16) string {
	a := n.Public
	if n.Dedicated.IsValid() {
		a = n.Dedicated
	}
	return netip.AddrPortFrom(a, port).String()
}

// serve switches to the master role at epoch.
func (r *replication) serve(epoch uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serving = true
	if r.role == "master" {
		if r.master != nil {
			if err := r.master.SetEpoch(epoch); err != nil {
				r.log.Error("replication: raise the epoch", "err", err)
			}
		}
		return
	}
	cont := r.cont
	r.stopLocked()
	cont = r.checkContinue(cont)
	tlsCfg, err := journal.TLSConfig(r.tls.own, r.tls.key, r.tls.peer)
	if err != nil {
		r.log.Error("replication: master TLS", "err", err)
		return
	}
	cfgAddr := pairAddr(r.c.Self, r.c.JournalPort+1)
	if r.disabled != "" {
		r.role = "master"
		r.start(func(ctx context.Context) error { return serveConfig(ctx, cfgAddr, tlsCfg, r.b, r.log) })
		return
	}
	var hints *capture.WriteHints
	if r.b != nil && r.b.nfs != nil {
		hints = r.b.nfs.hints // NFS writes go with their data
	}
	m, err := replica.NewMaster(replica.MasterConfig{
		Volume: r.cfg.Volume, Tree: r.tree, Hints: hints, Continue: cont,
		// The whole volume is one replicated tree: shares come and go
		// inside it.
		Shares:  []changelog.Share{{FSID: 1, Root: r.cfg.Volume}},
		LogPath: filepath.Join(r.cfg.StateDir, journalFile),
		Epoch:   epoch, ClusterID: strconv.FormatUint(r.c.ID, 16), NodeID: nodeName(r.c.Self.ID),
		Addr: pairAddr(r.c.Self, r.c.JournalPort), TLS: tlsCfg, Gate: true, Logger: r.log,
		OnNewLog: r.renew,
	})
	if err != nil {
		r.log.Error("replication: master", "err", err)
		return
	}
	r.master, r.role, r.masterSince = m, "master", time.Now()
	r.start(func(ctx context.Context) error {
		return both(ctx, m.Run, func(ctx context.Context) error { return serveConfig(ctx, cfgAddr, tlsCfg, r.b, r.log) })
	})
}

// continueMax bounds how long a new master that continues its standby's
// log keeps its file services closed for the description's view of the
// volume (a snapshot, or a walk where there is none); past it the
// continuation is given up and the old master resyncs.
const continueMax = 10 * time.Second

// ready waits, on a master whose log continues the standby's, until the
// volume may change (replica.Master.Ready), at most continueMax.
func (r *replication) ready() {
	r.mu.Lock()
	m := r.master
	r.mu.Unlock()
	if m == nil || !m.Continues() {
		return
	}
	start := time.Now()
	select {
	case <-m.Ready():
		r.log.Info("replication: the new log continues the old master's; file services may write", "waited", time.Since(start).Round(time.Millisecond))
	case <-time.After(continueMax):
		m.GiveUpContinue()
		r.log.Warn("replication: the volume's view was not fixed in time; the old master resyncs from a described log", "waited", continueMax)
	}
}

// raiseEpoch gives the running master's log a new epoch taken while it
// serves (heartbeat.Renew).
func (r *replication) raiseEpoch(epoch uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.role != "master" || r.master == nil {
		return
	}
	if err := r.master.SetEpoch(epoch); err != nil {
		r.log.Error("replication: raise the epoch", "err", err)
	}
}

// standbyConnected reports whether this node is the journal's master with
// a standby connected.
func (r *replication) standbyConnected() bool {
	r.mu.Lock()
	m := r.master
	r.mu.Unlock()
	return m != nil && m.Stats().Connected
}

// handOff, on a master that stops serving, waits (up to timeout) until the
// connected standby has applied everything logged, and then tells it so
// (replica.Master.HandOff), with note (the write generation): the new
// master keeps the write verifier only with that proof. The caller has
// stopped the file services' changes.
func (r *replication) handOff(timeout time.Duration, note []byte) {
	r.mu.Lock()
	m := r.master
	r.mu.Unlock()
	if m == nil {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	seq, err := m.HandOff(ctx, note)
	if err != nil {
		r.log.Warn("replication: no hand-off to the standby; it may lack the last changes (the new master changes the write verifier)", "err", err, "waited", time.Since(start).Round(time.Millisecond))
		return
	}
	r.log.Info("replication: handed off to the standby", "seq", seq, "took", time.Since(start).Round(time.Millisecond))
}

// drain, on a standby about to serve, lets its journal session run until
// the old master ends it (its hand-off, or a broken connection), at most
// timeout, and reports whether the old master handed off (everything it
// logged is applied here) and the note its hand-off carried.
func (r *replication) drain(timeout time.Duration) (bool, []byte) {
	r.mu.Lock()
	s := r.standby
	r.mu.Unlock()
	if s == nil {
		return false, nil
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	handedOff, err := s.Drain(ctx)
	if err != nil {
		r.log.Warn("replication: the old master's journal did not end in time; serving without its hand-off", "timeout", timeout, "err", err)
		return false, nil
	}
	st := s.Stats()
	r.log.Info("replication: the old master's journal ended", "handed_off", handedOff, "applied_seq", st.Position.Seq, "took", time.Since(start).Round(time.Millisecond))
	if !handedOff {
		return false, nil
	}
	r.mu.Lock()
	if r.standby == s {
		r.cont = st.Position // the next master role continues this log
	}
	r.mu.Unlock()
	return true, st.HandOffNote
}

// both runs a and b until both return; the first error cancels the other.
func both(ctx context.Context, a, b func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	for _, f := range []func(context.Context) error{a, b} {
		go func() {
			err := f(ctx)
			if err != nil {
				cancel()
			}
			errc <- err
		}()
	}
	return errors.Join(<-errc, <-errc)
}

// standBy switches to the standby role.
func (r *replication) standBy() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serving = false
	if r.role == "standby" {
		return
	}
	old := r.master
	r.stopLocked()
	if old != nil {
		r.keepHandOff(old)
	}
	tlsCfg, err := journal.TLSConfig(r.tls.own, r.tls.key, r.tls.peer)
	if err != nil {
		r.log.Error("replication: standby TLS", "err", err)
		return
	}
	cfgAddr := pairAddr(r.c.Peer, r.c.JournalPort+1)
	follow := func(ctx context.Context) error { return followConfig(ctx, cfgAddr, tlsCfg, r.b, r.log) }
	if r.disabled != "" {
		r.role = "standby"
		r.start(follow)
		return
	}
	posPath := r.positionPath()
	s, err := replica.NewStandby(replica.StandbyConfig{
		Tree: r.tree, PositionPath: posPath, MasterAddr: pairAddr(r.c.Peer, r.c.JournalPort),
		TLS: tlsCfg, ClusterID: strconv.FormatUint(r.c.ID, 16), NodeID: nodeName(r.c.Self.ID),
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second, Logger: r.log,
	})
	if err != nil {
		r.log.Error("replication: standby", "err", err)
		return
	}
	r.standby, r.role = s, "standby"
	r.start(func(ctx context.Context) error { return both(ctx, follow, r.followJournal(s, posPath)) })
}

// keepHandOff, once master m has stopped, keeps the position it handed
// off at as this node's standby position, if its volume is still exactly
// that log up to that record (replica.Master.HandedOff): the volume is
// synced first, so a crash cannot leave the position ahead of the data.
// The new master's log continues that one, and this node reads on as a
// copy. Otherwise the position stays what it was, and the new master's
// log resyncs this node.
func (r *replication) keepHandOff(m *replica.Master) {
	pos, ok := m.HandedOff()
	if !ok {
		return
	}
	err := syncVolume(r.cfg.Volume)
	if err == nil {
		err = journal.NewPositionFile(r.positionPath()).Save(pos)
	}
	if err != nil {
		r.log.Error("replication: keep the hand-off position; the new master's log will resync this node", "err", err)
		return
	}
	r.handed = pos
	r.followed, r.followedEpoch = pos.Seq, pos.Epoch
	r.log.Info("replication: this volume is the handed-off log's; following the new master from there", "log", fmt.Sprintf("%016x", pos.LogID), "seq", pos.Seq)
}

// positionPath is the standby's position file (journal.PositionFile).
func (r *replication) positionPath() string { return filepath.Join(r.cfg.StateDir, positionFile) }

// syncVolume puts the file system of dir on stable storage.
func syncVolume(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// followJournal runs the standby, resynchronising whenever the master
// started a new log.
func (r *replication) followJournal(s *replica.Standby, posPath string) func(context.Context) error {
	return func(ctx context.Context) error {
		for {
			err := s.Run(ctx)
			if ctx.Err() != nil || !errors.Is(err, journal.ErrResync) {
				return err
			}
			// The master started a new log (it restarted, or the roles
			// changed): follow it from its first record, which describes
			// the whole volume; files already here are kept and brought
			// up to date.
			pf := journal.NewPositionFile(posPath)
			pos, _ := pf.Load()
			if err := pf.Save(journal.Position{Epoch: pos.Epoch}); err != nil {
				return fmt.Errorf("replication: reset the standby's position for a resync: %w", err)
			}
			r.resyncs.Add(1)
			r.log.Warn("replication: resynchronising from the master's new log", "was", pos)
		}
	}
}

func (r *replication) start(run func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.cancel, r.done, r.runCtx = cancel, done, ctx
	role := r.role
	go func() {
		defer close(done)
		if err := run(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("replication stopped", "role", role, "err", err)
		}
	}()
}

func (r *replication) stopLocked() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
	r.cancel, r.done, r.role, r.master, r.standby, r.runCtx = nil, nil, "", nil, nil, nil
	r.followed, r.followedEpoch = 0, 0
	r.handed, r.cont = journal.Position{}, journal.Position{}
}

// checkContinue returns cont, the position the standby drained to, if
// the standby, now stopped, is still there (its position file says so):
// only then is the volume that log up to that record.
func (r *replication) checkContinue(cont journal.Position) journal.Position {
	if cont.LogID == 0 {
		return cont
	}
	pos, err := journal.NewPositionFile(r.positionPath()).Load()
	if err != nil || pos.LogID != cont.LogID || pos.Seq != cont.Seq {
		r.log.Warn("replication: not continuing the old master's log: the standby position moved since its hand-off", "handed_off", cont, "position", pos, "err", err)
		return journal.Position{}
	}
	return cont
}

func (r *replication) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serving = false
	r.stopLocked()
}

// syncPeer is what commitSync needs of the heartbeat node.
type syncPeer interface {
	Status() heartbeat.Status
	StatusChanged() <-chan struct{}
	Submit(ctx context.Context, ev heartbeat.Event) error
}

// commitSync waits until the standby has every change made so far (the
// Durable hook of sync-replicated shares), or decides, with planSync, that
// the change is acknowledged without it (the pair is degraded; logged).
// With the standby alive but cut off from the journal it first outdates
// the standby and waits, at most syncTimeout, until the standby has
// acknowledged that; meanwhile the client waits, and retries after an
// error.
func (r *replication) commitSync(peer syncPeer) error {
	r.mu.Lock()
	m, serving, runCtx, since := r.master, r.serving, r.runCtx, r.masterSince
	r.mu.Unlock()
	if !serving {
		// Released (or stopping) while the request was in flight: the
		// new master's standby may lack this change. The client retries.
		return errors.New("replication: this node no longer serves")
	}
	if m == nil || runCtx == nil {
		return nil // no journal here (disabled or failed to start; logged): degraded
	}
	ctx, cancel := context.WithTimeout(runCtx, syncTimeout)
	defer cancel()
	for {
		changed := peer.StatusChanged()
		hs := peer.Status()
		plan := planSync(m.Stats().Connected, time.Since(since), hs)
		switch plan {
		case syncAlone:
			r.alone()
			return nil
		case syncOutdate:
			if !r.outdate.Swap(true) {
				r.log.Warn("replication: the standby is alive but not receiving the journal: outdating it before going on alone")
			}
			if !hs.Outdating {
				if err := peer.Submit(ctx, heartbeat.Outdate{On: true}); err != nil {
					return fmt.Errorf("replication: outdate the standby: %w", err)
				}
			}
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return pending(runCtx, fmt.Errorf("replication: the standby is alive, not receiving the journal, and has not acknowledged that it is no copy: %w", ctx.Err()))
			}
		}
		break
	}
	seq, err := m.Sync(ctx)
	if err != nil {
		return pending(runCtx, fmt.Errorf("replication: sync: %w", err))
	}
	if err := m.WaitAcked(ctx, seq); err != nil {
		return pending(runCtx, fmt.Errorf("replication: wait for the standby to store record %d: %w", seq, err))
	}
	return nil
}

// pending marks err, a commit that ran out of time while this node still
// serves, as nfs3.ErrPending: a namespace change waits on (a COMMIT is
// retried by its client).
func pending(runCtx context.Context, err error) error {
	if runCtx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", nfs3.ErrPending, err)
	}
	return err
}

// alone logs, at most every 10 s, that a sync share's change was
// acknowledged without the standby.
func (r *replication) alone() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.lastAlone) > 10*time.Second {
		r.lastAlone = time.Now()
		r.log.Warn("replication: sync share committed without a standby (the pair is degraded; RPO is not 0)")
	}
}

// wantOutdate says whether the heartbeat should keep outdating the peer
// (heartbeat.Outdate): from the first change this master acknowledged, or
// is about to, without its standby, until the standby's journal is
// connected again (it then catches up with the log and counts as a copy
// once it has).
func (r *replication) wantOutdate() bool {
	r.mu.Lock()
	m := r.master
	r.mu.Unlock()
	if m == nil || m.Stats().Connected {
		r.outdate.Store(false)
		return false
	}
	return r.outdate.Load()
}

// position is the journal position heartbeat carries: the master's last
// record, or the last record the standby applied in the log the master
// ships now, with that log's epoch.
func (r *replication) position() heartbeat.JournalPosition {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.master != nil:
		// Its own log, of the epoch it serves: a position the peer's
		// positions are not comparable with (heartbeat compares them
		// only within one log).
		s := r.master.Stats()
		if !s.Capture.Described {
			// A new log that does not describe the volume yet: no
			// standby position is a copy of it (chaos seed 9: a
			// standby at 0 counted as caught up with a master just
			// restarted, whose log was still empty).
			return heartbeat.JournalPosition{Pos: heartbeat.JournalUnknown, Epoch: s.Epoch}
		}
		return heartbeat.JournalPosition{Pos: s.LastSeq, Epoch: s.Epoch}
	case r.standby != nil:
		s := r.standby.Stats()
		// Still in the log this node handed off (or its continuation by
		// the new master): a copy all along.
		cont := r.handed.LogID != 0 && !s.NeedResync && s.Position.LogID == r.handed.LogID && s.Position.Seq >= r.handed.Seq
		switch {
		case s.Following:
			r.followed, r.followedEpoch = s.Position.Seq, s.Position.Epoch
		case s.NeedResync || s.Connected:
			// Connected to a log this standby's position is not in (the
			// master restarted or the roles changed): it resyncs from the
			// new log's first record, and is no copy to serve until it
			// has caught up with it again.
			r.followed, r.followedEpoch = 0, 0
		}
		// Disconnected (the master died, say): the last position in the
		// master's log stands.
		return heartbeat.JournalPosition{Pos: r.followed, Epoch: r.followedEpoch, Continues: cont}
	case r.serving && r.disabled == "":
		// Serving with no log running (starting, or it failed): no
		// standby is a copy of it (a 0 here made one count as caught
		// up).
		return heartbeat.JournalPosition{Pos: heartbeat.JournalUnknown}
	}
	return heartbeat.JournalPosition{}
}

// status is the replication part of the cluster status.
func (r *replication) status() api.ClusterReplication {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := api.ClusterReplication{Role: r.role, Disabled: r.disabled, Resyncs: r.resyncs.Load()}
	switch {
	case r.master != nil:
		s := r.master.Stats()
		out.Connected, out.LastSeq, out.AckedSeq, out.Depth = s.Connected, s.LastSeq, s.Acked, s.Depth
		out.LagMS, out.LastError, out.Continued = s.Lag.Milliseconds(), s.LastError, s.Continued
	case r.standby != nil:
		s := r.standby.Stats()
		out.Connected, out.AckedSeq, out.LagMS, out.LastError = s.Connected, s.Position.Seq, s.Lag.Milliseconds(), s.LastError
		out.NeedResync = s.NeedResync
	}
	return out
}
