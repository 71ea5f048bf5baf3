package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"ftnas/appliance/fileid"
	"ftnas/journal"
	"ftnas/kernel/changelog"

	"golang.org/x/sys/unix"
)

// syncShare is the FSID under which the filter reports the capture's own
// directory (Sync markers); never a share's.
const syncShare = ^uint64(0)

// Defaults of Config. DefaultQueueLen is large because a backlog the
// kernel's queue (16384 events) cannot hold overflows into a rescan of the
// share, which costs far more than the changes it stands for: a burst of
// 65536 changes is buffered instead (9 MB, allocated up front).
const (
	DefaultQueueLen  = 1 << 16
	DefaultMaxBatch  = 4096
	DefaultMaxAppend = 1024
	DefaultRetry     = time.Second
)

// Config configures a Capture.
type Config struct {
	// Volume is the mount point of the master's volume (its own
	// filesystem: fanotify marks all of it).
	Volume string
	// Tree gives the volume's files their Stamps; opened on Volume.
	Tree *fileid.Tree
	// Shares are the trees replicated (FSID and absolute root).
	Shares []changelog.Share
	// Log receives the records.
	Log *journal.Log
	// Gate holds writers (opens for writing) while the log is full.
	Gate bool
	// ReleaseDepth: a held gate is released once the log holds at most
	// this many records (0: when it is empty).
	ReleaseDepth int
	// GateMaxHold bounds how long one open is held (changelog's default
	// if 0). OnHold is called for each open the gate starts holding.
	GateMaxHold time.Duration
	OnHold      func(changelog.Held)
	// Ignore drops changes made by the processes it returns true for (the
	// standby's applier, when it shares the volume's filesystem). The
	// capture's own process must not be ignored: Sync relies on it.
	Ignore func(pid int) bool
	// QueueLen bounds the changes buffered between the filter and the
	// translation (default DefaultQueueLen); beyond it they wait in the
	// kernel, whose queue overflows into a rescan.
	QueueLen int
	// MaxBatch bounds the changes translated together (DefaultMaxBatch),
	// MaxAppend the records appended at once (DefaultMaxAppend).
	MaxBatch  int
	MaxAppend int
	// Retry is how often parked entries and failed rescans are retried
	// while no change comes (DefaultRetry).
	Retry time.Duration
	// NoSnapshot has the description walk the live volume even where it
	// could be read from a snapshot (see describe).
	NoSnapshot bool
	// Continue: the volume is, as it stands, exactly what the standby
	// holds (the log continues one the standby has whole: the master
	// took over from one that handed off to it). The description then
	// builds the model and logs nothing, so the standby reads on without
	// a resync; the changes made after it are logged as ever. The volume
	// must not change until Fixed is closed. Run fails with ErrNotCopy
	// if the description finds the volume is no such copy.
	Continue bool
	Logger   *slog.Logger
	Now      func() time.Time

	// Hints, if set, is told by the master's own file server what it
	// writes: such writes are shipped with their data (see hints.go).
	// HintPid is that server's process (0: this one); the capture holds
	// the registry from New to Close.
	Hints   *WriteHints
	HintPid int
}

// Stats is what a Capture reports.
type Stats struct {
	TranslateStats
	Batches  uint64 // batches translated
	LastSeq  uint64 // seq of the last record appended
	Holds    uint64 // times the log was full (and the gate, if on, started holding writers)
	Holding  bool   // the log is full now: the capture waits for room, writers are held
	Held     int    // opens held now
	Queued   int    // changes read from the filter, not yet translated
	LastTime int64  // capture time (Unix ns) of the last change translated
	// Described: the first batch, which describes every share (the
	// initial sync of a fresh log), is committed. Until then the log's
	// position says nothing of the volume: a standby at it is no copy.
	Described bool
	// Description is how the description was made: DescribedSnapshot
	// or DescribedWalk ("" until it starts).
	Description string
	// Silent counts the records of a description not logged because the
	// log continues the standby's (Config.Continue).
	Silent uint64
	// Pending: after the last batch, rescans were due (one failed) or
	// entries parked: changes of the volume may not all be in the log.
	Pending bool
}

// flight is a batch whose records are queued in the log: once they are
// committed, its Sync markers are answered.
type flight struct {
	p       *journal.Pending // nil: no records
	markers []string
	initial bool // the first batch: the description of every share
}

// Capture is the capture of one volume: filter → translation → log.
type Capture struct {
	cfg    Config
	log    *slog.Logger
	filter *changelog.Filter
	gate   *changelog.Gate
	vol    *fsVolume
	own    string // the capture's own directory
	// hintsGen is the attachment to cfg.Hints (see attachHints).
	hintsGen uint64
	// afterSnapshot, if set (tests), runs once the description's
	// snapshot is made, before it is read.
	afterSnapshot func()
	// fixed is closed once the description's view of the volume is
	// fixed (Fixed); fixOnce closes it.
	fixed   chan struct{}
	fixOnce sync.Once
	// stopped is closed when Run returns: a Sync waits no more.
	stopped chan struct{}

	trMu sync.Mutex // the translator, between Run and SetShares
	tr   *translator

	changes chan changelog.Change

	// flight is the batch whose records are being committed while the
	// next one is translated (nil: none). Only Run's goroutine uses it.
	flight *flight

	mu        sync.Mutex
	stats     Stats
	holding   bool
	syncNext  uint64
	syncWait  map[string]chan struct{}
	runOnce   sync.Once
	closeOnce sync.Once
}

// New sets the capture up: the filter's events are queued from here on, so
// nothing between New and Run is lost. Run translates them; Close releases
// everything.
func New(cfg Config) (*Capture, error) {
	if cfg.Volume == "" || cfg.Tree == nil || cfg.Log == nil {
		return nil, errors.New("capture: volume, tree and log are required")
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxAppend <= 0 {
		cfg.MaxAppend = DefaultMaxAppend
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	vol, root, err := newFSVolume(cfg.Volume, cfg.Tree)
	if err != nil {
		return nil, err
	}
	c := &Capture{cfg: cfg, log: cfg.Logger, vol: vol, own: filepath.Join(vol.root, OwnDir),
		changes: make(chan changelog.Change, cfg.QueueLen), syncWait: map[string]chan struct{}{}, fixed: make(chan struct{}), stopped: make(chan struct{})}
	fail := func(err error) (*Capture, error) {
		c.Close()
		return nil, err
	}
	if err := os.Mkdir(c.own, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fail(fmt.Errorf("capture: make %s: %w", c.own, err))
	}
	// Empty it of markers a crash left.
	if ents, err := os.ReadDir(c.own); err == nil {
		for _, e := range ents {
			os.Remove(filepath.Join(c.own, e.Name()))
		}
	}
	shares, err := c.shares(cfg.Shares)
	if err != nil {
		return fail(err)
	}
	c.removeSnapshots()
	c.filter, err = changelog.New(changelog.Options{
		Volume: vol.root, Shares: c.filterShares(cfg.Shares), Ignore: cfg.Ignore, Log: cfg.Logger, Now: cfg.Now,
	})
	if err != nil {
		return fail(fmt.Errorf("capture: %w", err))
	}
	if cfg.Gate {
		c.gate, err = changelog.OpenGate(changelog.GateOptions{
			Volume: vol.root, Ignore: cfg.Ignore, MaxHold: cfg.GateMaxHold, OnHold: cfg.OnHold, Log: cfg.Logger,
		})
		if err != nil {
			return fail(fmt.Errorf("capture: %w", err))
		}
	}
	c.tr = newTranslator(vol, root, shares, cfg.Logger, cfg.Now)
	if cfg.Hints != nil {
		c.attachHints()
	}
	return c, nil
}

// shares converts the shares' roots to volume-relative paths.
func (c *Capture) shares(in []changelog.Share) ([]Share, error) {
	out := make([]Share, 0, len(in))
	for _, sh := range in {
		if sh.FSID == 0 || sh.FSID == syncShare {
			return nil, fmt.Errorf("capture: share at %s: FSID %d not allowed", sh.Root, sh.FSID)
		}
		root := sh.Root
		if p, err := filepath.EvalSymlinks(root); err == nil {
			root = p
		}
		rel, err := filepath.Rel(c.vol.root, root)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, fmt.Errorf("capture: share %d: root %s is not on the volume %s", sh.FSID, sh.Root, c.vol.root)
		}
		if rel == OwnDir || strings.HasPrefix(rel, OwnDir+"/") || strings.HasPrefix(rel, ParkPrefix) || strings.HasPrefix(rel, SnapPrefix) {
			return nil, fmt.Errorf("capture: share %d: root %s is the capture's own", sh.FSID, sh.Root)
		}
		out = append(out, Share{FSID: sh.FSID, Rel: rel})
	}
	return out, nil
}

func (c *Capture) filterShares(in []changelog.Share) []changelog.Share {
	return append(append([]changelog.Share(nil), in...), changelog.Share{FSID: syncShare, Root: c.own})
}

// SetShares replaces the shares; new ones are copied, all are rescanned.
func (c *Capture) SetShares(shares []changelog.Share) error {
	s, err := c.shares(shares)
	if err != nil {
		return err
	}
	if err := c.filter.SetShares(c.filterShares(shares)); err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	c.trMu.Lock()
	c.tr.setShares(s)
	c.trMu.Unlock()
	select {
	case c.changes <- changelog.Change{}: // wake the loop: the rescans are due
	default:
	}
	return nil
}

// Stats returns the capture's counters.
func (c *Capture) Stats() Stats {
	c.mu.Lock()
	s := c.stats
	c.mu.Unlock()
	s.Queued = len(c.changes)
	if c.gate != nil {
		s.Held = c.gate.Held()
	}
	return s
}

// Run translates changes into records until ctx ends (nil) or appending
// fails (the records of that batch are lost to the standby, so the capture
// must not go on: its model would no longer be the standby's). It first
// describes every share (the initial sync of a fresh standby). Run may be
// called once.
func (c *Capture) Run(ctx context.Context) error {
	err := errors.New("capture: Run called twice")
	c.runOnce.Do(func() { err = c.run(ctx) })
	return err
}

func (c *Capture) run(ctx context.Context) error {
	defer close(c.stopped)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	filterErr := make(chan error, 1)
	go func() { filterErr <- c.filter.Run(ctx, c.changes) }()
	defer c.releaseGate()

	retry := time.NewTimer(c.cfg.Retry)
	defer retry.Stop()
	c.log.Info("capture started", "volume", c.vol.root, "shares", len(c.cfg.Shares))
	batch := make([]changelog.Change, 0, c.cfg.MaxBatch)
	for first := true; ; first = false {
		batch = batch[:0]
		if !first {
			c.trMu.Lock()
			pending := c.tr.pending()
			c.trMu.Unlock()
			if pending {
				retry.Reset(c.cfg.Retry)
			}
			var committed <-chan struct{}
			if c.flight != nil && c.flight.p != nil {
				committed = c.flight.p.Done()
			}
			select {
			case ch := <-c.changes:
				batch = append(batch, ch)
			case <-committed:
				if err := c.land(); err != nil {
					c.log.Error("capture stopped", "err", err)
					return err
				}
				continue
			case <-retry.C:
			case err := <-filterErr:
				if err != nil {
					return err
				}
				return nil
			case <-ctx.Done():
				return nil
			}
		drain:
			for len(batch) < c.cfg.MaxBatch {
				select {
				case ch := <-c.changes:
					batch = append(batch, ch)
				default:
					break drain
				}
			}
		}
		step := c.step
		if first {
			step = c.describe
		}
		if err := step(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Error("capture stopped", "err", err)
			return err
		}
	}
}

// describe makes the first batch, the description of every share (their
// rescans, due since the translator was made). Where the volume is the
// root of a btrfs subvolume, it is read from a read-only snapshot made
// now (snapVolume), a consistent view; else, or if the snapshot cannot be
// made, from the live volume, a view torn by the changes made while it is
// read. Either way, the changes made since New come after it in the log,
// from the events, and bring the standby to the live state; the standby
// fetches contents and attributes from the live volume anyway. The
// snapshot is destroyed before describe returns, and one a crash left is
// destroyed by the next New; its creation and removal are events in the
// volume root under a reserved name, which give no record.
func (c *Capture) describe(ctx context.Context, batch []changelog.Change) error {
	start := time.Now()
	fix := func() { c.fixOnce.Do(func() { close(c.fixed) }) }
	defer fix()
	sv, why := c.openSnapshot()
	how := DescribedWalk
	if sv != nil {
		fix()
		how = DescribedSnapshot
		c.log.Info("capture: describing the shares from a read-only snapshot", "snapshot", sv.name)
		c.trMu.Lock()
		c.tr.vol = sv
		c.trMu.Unlock()
		defer func() {
			c.trMu.Lock()
			c.tr.vol = c.vol
			c.trMu.Unlock()
			if err := sv.Close(); err != nil {
				c.log.Error("capture: remove the snapshot", "snapshot", sv.name, "err", err)
			}
		}()
		if c.afterSnapshot != nil {
			c.afterSnapshot()
		}
	} else {
		c.log.Info("capture: describing the shares by walking the live volume", "why", why)
	}
	c.mu.Lock()
	c.stats.Description = how
	c.mu.Unlock()
	issued := c.vol.issued.Load()
	err := c.step(ctx, batch)
	if err == nil && c.cfg.Continue {
		// The Stamps the description gave: on the live volume (the walk,
		// or a nested subvolume), and to files the snapshot shows
		// without one. Not the Tree's count: the file services may be
		// stamping new files meanwhile (the volume may change once the
		// snapshot is made).
		stamped := c.vol.issued.Load() - issued
		if sv != nil {
			stamped += uint64(sv.stamped)
		}
		err = c.continued(stamped)
	}
	attrs := []any{"how", how, "took", time.Since(start).Round(time.Millisecond)}
	if sv != nil {
		attrs = append(attrs, "stamped_live", sv.stamped, "nested_subvolumes_read_live", sv.nested)
	}
	if err == nil {
		c.log.Info("capture: shares described", attrs...)
	}
	return err
}

// continued checks, after the description of a log that continues the
// standby's, that the volume was the standby's copy: describing it gave
// no Stamp (stamped), parked nothing, and met no conflict and no error.
func (c *Capture) continued(stamped uint64) error {
	c.mu.Lock()
	ts := c.stats.TranslateStats
	c.mu.Unlock()
	if stamped == 0 && ts.Parked == 0 && ts.Conflicts == 0 && ts.Errors == 0 {
		return nil
	}
	return fmt.Errorf("%w: describing it stamped %d files, parked %d entries, met %d conflicts and %d errors",
		ErrNotCopy, stamped, ts.Parked, ts.Conflicts, ts.Errors)
}

// Fixed is closed once the description's view of the volume is fixed: its
// snapshot is made, or its walk of the live volume is done (or failed). A
// capture that continues the standby's log (Config.Continue) needs the
// volume unchanged until then.
func (c *Capture) Fixed() <-chan struct{} { return c.fixed }

// step translates one batch and queues its records in the log. They are
// committed while the next batch is translated: the batch before is
// landed (waited for) once this one is queued.
func (c *Capture) step(ctx context.Context, batch []changelog.Change) error {
	var markers []string
	overflow := false
	real := make([]changelog.Change, 0, len(batch))
	var last int64
	for _, ch := range batch {
		switch {
		case ch.Op == 0: // a wake-up
		case ch.Share == syncShare:
			switch ch.Op {
			case changelog.OpCreate:
				markers = append(markers, ch.Path)
			case changelog.OpOverflow:
				// Markers may be lost with the other events. A
				// rescan of every share in this batch covers every
				// change made before a pending Sync began (the
				// shares' own overflows may come in a later batch).
				overflow = true
			}
		default:
			real = append(real, ch)
			last = ch.Time.UnixNano()
		}
	}
	if overflow {
		// Every Sync begun before the rescan: it covers their changes.
		c.mu.Lock()
		for m := range c.syncWait {
			markers = append(markers, m)
		}
		c.mu.Unlock()
	}
	c.trMu.Lock()
	if overflow {
		c.tr.rescanAll()
	}
	recs := c.tr.batch(real)
	c.vol.endBatch()
	ts, pending := c.tr.stats, c.tr.pending()
	c.trMu.Unlock()
	c.mu.Lock()
	initial := c.stats.Batches == 0 // the description (only Run's goroutine counts batches)
	if initial && c.cfg.Continue {
		// The standby has all of it (Config.Continue; describe checks
		// that the description found the volume so).
		c.stats.Silent = uint64(len(recs))
		recs = nil
	}
	c.mu.Unlock()
	if c.log.Enabled(ctx, slog.LevelDebug) {
		for _, ch := range real {
			c.log.Debug("capture: change", "change", ch.String(), "fid", ch.FID, "dir", ch.DirFID)
		}
		for _, r := range recs {
			c.log.Debug("capture: record", "op", r.Op, "file", r.File, "parent", r.Parent, "name", r.Name,
				"newparent", r.NewParent, "newname", r.NewName, "flags", r.Flags, "off", r.Off, "len", r.Len, "mask", r.AttrMask)
		}
	}
	p, err := c.enqueue(ctx, recs)
	c.mu.Lock()
	c.stats.TranslateStats, c.stats.Pending = ts, pending
	c.stats.Batches++
	if last != 0 {
		c.stats.LastTime = last
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	// The batch before is committed first (the log keeps the order).
	if err := c.land(); err != nil {
		return err
	}
	c.flight = &flight{p: p, markers: markers, initial: initial}
	if p == nil {
		return c.land() // nothing to commit: answer the markers now
	}
	return nil
}

// land waits until the batch in flight is committed and answers its Sync
// markers.
func (c *Capture) land() error {
	f := c.flight
	if f == nil {
		return nil
	}
	c.flight = nil
	var seq uint64
	if f.p != nil {
		var err error
		if seq, err = f.p.Wait(); err != nil {
			return fmt.Errorf("capture: append: %w", err)
		}
	}
	c.mu.Lock()
	if seq != 0 {
		c.stats.LastSeq = seq
	}
	if f.initial {
		c.stats.Described = true
	}
	for _, m := range f.markers {
		if ch, ok := c.syncWait[m]; ok {
			close(ch)
			delete(c.syncWait, m)
		}
	}
	c.mu.Unlock()
	return nil
}

// enqueue queues recs in the log in chunks, without waiting for their
// commit, and returns the last chunk's Pending (nil if recs is empty).
// When the log is full it holds writers through the gate and waits for
// room.
func (c *Capture) enqueue(ctx context.Context, recs []journal.Record) (*journal.Pending, error) {
	var last *journal.Pending
	for len(recs) > 0 {
		chunk := recs[:min(len(recs), c.cfg.MaxAppend)]
		p, err := c.cfg.Log.TryEnqueue(chunk...)
		if errors.Is(err, journal.ErrFull) {
			c.holdGate(ctx)
			p, err = c.cfg.Log.Enqueue(ctx, chunk...)
		}
		if err != nil {
			return nil, fmt.Errorf("capture: append %d records: %w", len(chunk), err)
		}
		last = p
		recs = recs[len(chunk):]
	}
	return last, nil
}

// holdGate holds writers until the log is down to ReleaseDepth.
func (c *Capture) holdGate(ctx context.Context) {
	c.mu.Lock()
	if c.holding {
		c.mu.Unlock()
		return
	}
	c.holding = true
	c.stats.Holding = true
	c.stats.Holds++
	c.mu.Unlock()
	if c.gate != nil {
		c.gate.Hold()
	}
	c.log.Warn("capture: journal full, holding writers", "depth", c.cfg.Log.Depth())
	go func() {
		for {
			ch := c.cfg.Log.Changed()
			if c.cfg.Log.Depth() <= c.cfg.ReleaseDepth {
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
		}
		c.releaseGate()
	}()
}

func (c *Capture) releaseGate() {
	c.mu.Lock()
	was := c.holding
	c.holding = false
	c.stats.Holding = false
	c.mu.Unlock()
	if was {
		if c.gate != nil {
			c.gate.Release()
		}
		c.log.Info("capture: journal has room, writers released", "depth", c.cfg.Log.Depth())
	}
}

// Sync waits until every change made to the volume before it was called
// is translated and its records are in the log. It writes a marker into
// the capture's own directory and waits for the filter to report it, so
// Run must be running: once it has returned, Sync fails.
func (c *Capture) Sync(ctx context.Context) error {
	c.mu.Lock()
	c.syncNext++
	name := "sync." + strconv.FormatUint(c.syncNext, 10)
	done := make(chan struct{})
	c.syncWait[name] = done
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.syncWait, name)
		c.mu.Unlock()
	}
	p := filepath.Join(c.own, name)
	fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		forget()
		return fmt.Errorf("capture: sync: make marker: %w", err)
	}
	unix.Close(fd)
	defer os.Remove(p)
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		forget()
		return fmt.Errorf("capture: sync: %w", ctx.Err())
	case <-c.stopped:
		select {
		case <-done: // answered as Run returned
			return nil
		default:
		}
		forget()
		return errors.New("capture: sync: the capture has stopped")
	}
}

// Close releases the filter, the gate (letting every held open go) and the
// volume. Run returns.
func (c *Capture) Close() error {
	var errs []error
	c.closeOnce.Do(func() {
		if c.cfg.Hints != nil {
			c.cfg.Hints.detach(c.hintsGen)
		}
		if c.filter != nil {
			errs = append(errs, c.filter.Close())
		}
		if c.gate != nil {
			errs = append(errs, c.gate.Close())
		}
		errs = append(errs, c.vol.Close())
	})
	return errors.Join(errs...)
}
