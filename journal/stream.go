package journal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"ftnas/appliance/fileid"
)

// Session errors.
var (
	// ErrFenced: the shipper's epoch is below one the receiver has seen. A
	// shipper that gets it must stop serving: another node was promoted.
	ErrFenced = errors.New("journal: fenced by a higher epoch")
	// ErrResync: the log cannot continue from the receiver's position (it
	// was trimmed, or the position is in another log); the standby needs a
	// resync from a snapshot.
	ErrResync = errors.New("journal: standby needs a resync")
	// ErrProtocol: the peer sent something malformed or out of order.
	ErrProtocol = errors.New("journal: protocol error")
	// ErrNotFound: a fetched file does not exist on the master (any more).
	ErrNotFound = errors.New("journal: file not found on the master")
	// ErrSessionEnded: the session ended while a fetch waited.
	ErrSessionEnded = errors.New("journal: session ended")
	// ErrWrongCluster: the peer belongs to another cluster.
	ErrWrongCluster = errors.New("journal: peer of another cluster")
	// ErrReplaced: a newer session of the same Shipper or Receiver took
	// over.
	ErrReplaced = errors.New("journal: session replaced by a newer one")
	// ErrHandedOff ends a session whose receiver has acknowledged every
	// record the shipper logged: the master hands the service over (see
	// Shipper.EndSession). A receiver's Serve returns an error matching it.
	ErrHandedOff = errors.New("journal: the shipper handed off; the receiver has its whole log")
)

// HandOff, given to Shipper.EndSession, ends the session as ErrHandedOff
// does and hands the receiver Note (at most MaxNoteLen bytes; see
// HandOffMsg), which its Serve returns in a PeerError. errors.Is matches
// it against ErrHandedOff.
type HandOff struct{ Note []byte }

func (h *HandOff) Error() string { return ErrHandedOff.Error() }

// Is lets errors.Is match a HandOff against ErrHandedOff.
func (h *HandOff) Is(target error) bool { return target == ErrHandedOff }

// PeerError is an ErrorMsg the peer sent before ending the session, or
// the shipper's HandOffMsg (Code CodeHandedOff, with its Note).
type PeerError struct {
	Code ErrCode
	Msg  string
	Note []byte
}

func (e *PeerError) Error() string { return fmt.Sprintf("journal: peer: %s: %s", e.Code, e.Msg) }

// Is lets errors.Is match a PeerError against ErrFenced, ErrResync,
// ErrProtocol and ErrWrongCluster by its code.
func (e *PeerError) Is(target error) bool {
	switch e.Code {
	case CodeFenced:
		return target == ErrFenced
	case CodeResync:
		return target == ErrResync
	case CodeProtocol:
		return target == ErrProtocol
	case CodeCluster:
		return target == ErrWrongCluster
	case CodeHandedOff:
		return target == ErrHandedOff
	}
	return false
}

// codeOf maps a local error to the code told to the peer.
func codeOf(err error) ErrCode {
	switch {
	case errors.Is(err, ErrFenced):
		return CodeFenced
	case errors.Is(err, ErrResync):
		return CodeResync
	case errors.Is(err, ErrProtocol):
		return CodeProtocol
	case errors.Is(err, ErrWrongCluster):
		return CodeCluster
	case errors.Is(err, errApply):
		return CodeApply
	case errors.Is(err, ErrHandedOff):
		return CodeHandedOff
	}
	return CodeShutdown
}

func protoErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, a...))
}

// run runs a session's goroutines: main and the others started with
// goStart. The first to fail ends the session at once: the peer is told why
// (unless the failure came from it or the connection), the connection is
// closed so every goroutine unblocks, and run returns that first error once
// all goroutines are done.
type run struct {
	w      *wire
	ctx    context.Context
	cancel context.CancelCauseFunc
	once   sync.Once
	wg     sync.WaitGroup
}

func newRun(ctx context.Context, w *wire) *run {
	r := &run{w: w}
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	return r
}

// fail ends the session with err, unless it already ended.
func (r *run) fail(err error) {
	r.once.Do(func() {
		if r.ctx.Err() != nil {
			err = cause(r.ctx) // ended from outside: replaced or cancelled
		}
		r.w.tell(err)
		r.cancel(err)
		r.w.conn.Close()
	})
}

// goStart runs f in the session; its error ends the session.
func (r *run) goStart(f func() error) {
	r.wg.Go(func() {
		if err := f(); err != nil {
			r.fail(err)
		}
	})
}

// wait runs main, ends the session with its result, waits for the other
// goroutines, and returns why the session ended.
func (r *run) wait(main func() error) error {
	err := main()
	if err == nil {
		err = ErrSessionEnded
	}
	r.fail(err)
	r.wg.Wait()
	return cause(r.ctx)
}

// errIO marks a failed read or write of the connection (as opposed to a
// malformed message): the peer cannot be told anything any more.
var errIO = errors.New("connection")

// errApply: the receiver's Applier failed.
var errApply = errors.New("apply")

// tellTimeout bounds the last write of a session: telling the peer why.
const tellTimeout = 2 * time.Second

// wire is one connection: buffered frame reads, serialized frame writes.
type wire struct {
	conn net.Conn
	r    *bufio.Reader
	// bufs, if set (the receiver's), holds the payloads of large fetch
	// replies (FetchReply.release).
	bufs *payloadPool
	mu   sync.Mutex
	buf  []byte
	told bool
}

func newWire(c net.Conn) *wire { return &wire{conn: c, r: NewFrameReader(c)} }

func (w *wire) send(m Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, pieces, err := appendFramePieces(w.buf[:0], m)
	if err != nil {
		return err
	}
	if cap(b) <= 1<<20 {
		w.buf = b
	}
	for _, p := range pieces {
		if _, err := w.conn.Write(p); err != nil {
			return fmt.Errorf("%w: send %s: %w", errIO, m.Type(), err)
		}
	}
	return nil
}

func (w *wire) recv() (Message, error) {
	m, err := readFrame(w.r, w.bufs)
	if err != nil && !errors.Is(err, ErrProtocol) {
		err = fmt.Errorf("%w: %w", errIO, err)
	}
	return m, err
}

// tell sends the peer, once, the reason the session ends, unless the peer
// ended it, the connection is gone, or the session was cancelled or
// replaced. Pending writes are cut short.
func (w *wire) tell(err error) {
	var pe *PeerError
	if err == nil || errors.As(err, &pe) || errors.Is(err, errIO) || errors.Is(err, context.Canceled) ||
		errors.Is(err, ErrReplaced) || errors.Is(err, ErrSessionEnded) {
		return
	}
	_ = w.conn.SetWriteDeadline(time.Now().Add(tellTimeout))
	w.mu.Lock()
	told := w.told
	w.told = true
	w.mu.Unlock()
	if told {
		return
	}
	if ho, ok := errors.AsType[*HandOff](err); ok {
		_ = w.send(&HandOffMsg{Note: ho.Note})
		return
	}
	_ = w.send(&ErrorMsg{Code: codeOf(err), Msg: truncMsg(err.Error())})
}

// asError turns a received ErrorMsg into the error it stands for, or nil.
func asError(m Message) error {
	if e, ok := m.(*ErrorMsg); ok {
		return &PeerError{Code: e.Code, Msg: e.Msg}
	}
	return nil
}

// single allows one session at a time: a new one ends the one before.
type single struct {
	mu     sync.Mutex
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// begin ends the running session, waits for it, and registers a new one.
func (s *single) begin(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	s.mu.Lock()
	prevCancel, prevDone := s.cancel, s.done
	s.cancel, s.done = cancel, done
	s.mu.Unlock()
	if prevCancel != nil {
		prevCancel(ErrReplaced)
		<-prevDone
	}
	return ctx, func() {
		cancel(nil)
		s.mu.Lock()
		if s.done == done {
			s.cancel, s.done = nil, nil
		}
		s.mu.Unlock()
		close(done)
	}
}

// cause returns why ctx ended, preferring the session's own cause.
func cause(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return ctx.Err()
}

// Source answers the standby's fetches on the master (see apply_linux.go for
// the file-system one). A missing file is an error matching ErrNotFound or
// fileid.ErrStale.
type Source interface {
	Fetch(ctx context.Context, q *FetchRequest) (*FetchReply, error)
}

// ShipperConfig configures a Shipper.
type ShipperConfig struct {
	Log       *Log
	ClusterID string
	NodeID    string
	// Source answers fetches; without one, fetches fail.
	Source Source
	// BatchRecords and BatchBytes bound one Records message (defaults 1024
	// records, 4 MiB).
	BatchRecords int
	BatchBytes   int
	// FetchWorkers bounds concurrent fetches (default 8).
	FetchWorkers int
	// NoTrim keeps acknowledged records (another reader needs them).
	NoTrim bool
	Logger *slog.Logger
}

// Shipper is the master's end: it streams the log to one receiver at a time.
type Shipper struct {
	cfg    ShipperConfig
	log    *slog.Logger
	single single

	mu        sync.Mutex
	status    ShipperStatus
	ackChange chan struct{} // closed and replaced when Acked moves
	cur       *run          // the running session (EndSession)
}

// ShipperStatus is what a Shipper reports.
type ShipperStatus struct {
	Connected bool
	Peer      string // the receiver's node ID
	Acked     uint64 // last seq the receiver has durably applied
	Sent      uint64 // last seq sent
}

// NewShipper returns a Shipper for cfg.
func NewShipper(cfg ShipperConfig) (*Shipper, error) {
	if cfg.Log == nil {
		return nil, errors.New("journal: shipper: no log")
	}
	if err := checkID("cluster ID", cfg.ClusterID); err != nil {
		return nil, fmt.Errorf("journal: shipper: %w", err)
	}
	if err := checkID("node ID", cfg.NodeID); err != nil {
		return nil, fmt.Errorf("journal: shipper: %w", err)
	}
	if cfg.BatchRecords <= 0 {
		cfg.BatchRecords = 1024
	}
	cfg.BatchRecords = min(cfg.BatchRecords, MaxBatchRecords)
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = 4 << 20
	}
	cfg.BatchBytes = min(cfg.BatchBytes, MaxFrame/2)
	if cfg.FetchWorkers <= 0 {
		cfg.FetchWorkers = 8
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Shipper{cfg: cfg, log: cfg.Logger, ackChange: make(chan struct{})}, nil
}

// Status returns the shipper's state.
func (s *Shipper) Status() ShipperStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// EndSession ends the running session, if any, telling the receiver
// cause (ErrHandedOff, or a *HandOff with a note: call it only once
// WaitAcked returned for the log's last record and nothing was logged
// since), and reports whether there was one. A new session may start
// afterwards.
func (s *Shipper) EndSession(cause error) bool {
	s.mu.Lock()
	rn := s.cur
	s.mu.Unlock()
	if rn == nil {
		return false
	}
	rn.fail(cause) // tells the receiver, then closes the connection
	return true
}

// WaitAcked blocks until the receiver has acknowledged seq (sync mode: a
// write is acknowledged to the client only then).
func (s *Shipper) WaitAcked(ctx context.Context, seq uint64) error {
	for {
		s.mu.Lock()
		acked, ch := s.status.Acked, s.ackChange
		s.mu.Unlock()
		if acked >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Shipper) update(f func(st *ShipperStatus)) {
	s.mu.Lock()
	before := s.status.Acked
	f(&s.status)
	if s.status.Acked != before {
		close(s.ackChange)
		s.ackChange = make(chan struct{})
	}
	s.mu.Unlock()
}

// Serve runs one session over conn (dialled or accepted by the caller, TLS
// already set up) until it fails, the peer leaves, ctx ends, or a newer
// session replaces it. It closes conn. It returns an error matching ErrFenced
// when the receiver has seen a higher epoch: stop shipping and step down.
func (s *Shipper) Serve(ctx context.Context, conn net.Conn) error {
	ctx, end := s.single.begin(ctx)
	defer end()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	w := newWire(conn)
	err := s.serve(ctx, w)
	if ctx.Err() != nil {
		err = cause(ctx) // the connection broke because the session was ended
	}
	w.tell(err)
	s.update(func(st *ShipperStatus) { st.Connected = false })
	if err != nil {
		s.log.Info("journal shipping stopped", "err", err)
		return fmt.Errorf("journal: shipper: %w", err)
	}
	return nil
}

func (s *Shipper) serve(ctx context.Context, w *wire) error {
	l := s.cfg.Log
	hello := &Hello{
		Role: RoleShipper, ClusterID: s.cfg.ClusterID, NodeID: s.cfg.NodeID,
		Epoch: l.Epoch(), LogID: l.ID(), First: l.First(), Seq: l.Last(),
	}
	if err := w.send(hello); err != nil {
		return err
	}
	m, err := w.recv()
	if err != nil {
		return fmt.Errorf("waiting for the receiver's hello: %w", err)
	}
	if err := asError(m); err != nil {
		return err
	}
	rh, ok := m.(*Hello)
	if !ok || rh.Role != RoleReceiver {
		return protoErr("expected the receiver's hello, got %s", m.Type())
	}
	if rh.ClusterID != s.cfg.ClusterID {
		return fmt.Errorf("%w: receiver %s belongs to cluster %q, not %q", ErrWrongCluster, rh.NodeID, rh.ClusterID, s.cfg.ClusterID)
	}
	if rh.Epoch > hello.Epoch {
		return fmt.Errorf("receiver %s has seen epoch %d, this shipper is at %d: %w", rh.NodeID, rh.Epoch, hello.Epoch, ErrFenced)
	}
	var start uint64
	switch {
	case rh.LogID == l.ID():
		start = rh.Seq
	case rh.LogID == 0:
		start = 0
	default:
		return fmt.Errorf("receiver %s is at seq %d of log %016x, this is log %016x: %w", rh.NodeID, rh.Seq, rh.LogID, l.ID(), ErrResync)
	}
	if start > hello.Seq {
		return fmt.Errorf("receiver %s is at seq %d, past the log's last %d: %w", rh.NodeID, start, hello.Seq, ErrResync)
	}
	if first := l.First(); start+1 < first {
		return fmt.Errorf("receiver %s is at seq %d, but the log starts at %d: %w", rh.NodeID, start, first, ErrResync)
	}
	s.log.Info("journal shipping", "peer", rh.NodeID, "from", start+1, "last", hello.Seq, "epoch", hello.Epoch, "window", rh.Window)
	s.update(func(st *ShipperStatus) {
		st.Connected, st.Peer, st.Sent = true, rh.NodeID, start
		if rh.LogID == l.ID() {
			st.Acked = start
		}
	})

	rn := newRun(ctx, w)
	s.mu.Lock()
	s.cur = rn
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.cur == rn {
			s.cur = nil
		}
		s.mu.Unlock()
	}()
	ss := &shipSession{s: s, w: w, run: rn, ctx: rn.ctx, window: int(rh.Window), acked: start, sent: start, epoch: hello.Epoch,
		room: make(chan struct{}, 1), trimTo: make(chan uint64, 1), sem: make(chan struct{}, s.cfg.FetchWorkers)}
	if !s.cfg.NoTrim {
		rn.goStart(ss.trimmer)
		ss.trim(start)
	}
	rn.goStart(ss.reader)
	return rn.wait(ss.sender)
}

// shipSession is the state of one Shipper session.
type shipSession struct {
	s      *Shipper
	w      *wire
	run    *run
	ctx    context.Context
	window int

	mu       sync.Mutex
	inflight []uint64 // last seq of each unacknowledged Records message
	acked    uint64
	sent     uint64
	epoch    uint64        // the log's epoch the receiver was told (sender only)
	room     chan struct{} // signalled when an ack frees the window
	trimTo   chan uint64   // latest ack for the trimmer
	sem      chan struct{} // bounds concurrent fetches
}

func (ss *shipSession) sender() error {
	l := ss.s.cfg.Log
	for {
		for {
			ss.mu.Lock()
			full := len(ss.inflight) >= ss.window
			ss.mu.Unlock()
			if !full {
				break
			}
			select {
			case <-ss.room:
			case <-ss.ctx.Done():
				return cause(ss.ctx)
			}
		}
		if err := ss.waitNext(l); err != nil {
			return err
		}
		enc, err := l.ReadEncoded(ss.sent+1, ss.s.cfg.BatchRecords, ss.s.cfg.BatchBytes)
		if err != nil {
			if errors.Is(err, ErrTrimmed) {
				return fmt.Errorf("%w: %w", ErrResync, err)
			}
			return err
		}
		if len(enc) == 0 {
			continue
		}
		last, _ := EncodedSeq(enc[len(enc)-1])
		ss.mu.Lock()
		ss.inflight = append(ss.inflight, last)
		ss.mu.Unlock()
		if err := ss.w.send(EncodedRecords(enc)); err != nil {
			return err
		}
		ss.sent = last
		ss.s.update(func(st *ShipperStatus) { st.Sent = last })
	}
}

// waitNext waits until the log has a record after the last sent. A
// higher epoch the log takes meanwhile (its master promoted again without
// a new log) is sent at once, so the receiver's position names the epoch
// its log is in without waiting for the next record (heartbeat compares
// positions only within one log, by epoch).
func (ss *shipSession) waitNext(l *Log) error {
	for {
		ch := l.Changed()
		if e := l.Epoch(); e > ss.epoch {
			if err := ss.w.send(&EpochMsg{Epoch: e}); err != nil {
				return err
			}
			ss.epoch = e
		}
		l.mu.Lock()
		last, closed := l.last, l.closed
		l.mu.Unlock()
		if last > ss.sent {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ss.ctx.Done():
			return cause(ss.ctx)
		}
	}
}

func (ss *shipSession) reader() error {
	for {
		m, err := ss.w.recv()
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case *Ack:
			if err := ss.ack(m.Seq); err != nil {
				return err
			}
		case *FetchRequest:
			select {
			case ss.sem <- struct{}{}:
			case <-ss.ctx.Done():
				return cause(ss.ctx)
			}
			ss.run.goStart(func() error {
				defer func() { <-ss.sem }()
				ss.fetch(m)
				return nil
			})
		case *ErrorMsg:
			return asError(m)
		default:
			return protoErr("unexpected %s from the receiver", m.Type())
		}
	}
}

func (ss *shipSession) ack(seq uint64) error {
	ss.mu.Lock()
	if seq <= ss.acked || len(ss.inflight) == 0 || seq > ss.inflight[len(ss.inflight)-1] {
		defer ss.mu.Unlock()
		return protoErr("ack of %d, acked %d, sent %v", seq, ss.acked, ss.inflight)
	}
	n := 0
	for n < len(ss.inflight) && ss.inflight[n] <= seq {
		n++
	}
	ss.inflight = ss.inflight[n:]
	ss.acked = seq
	ss.mu.Unlock()
	select {
	case ss.room <- struct{}{}:
	default:
	}
	ss.s.update(func(st *ShipperStatus) { st.Acked = seq })
	ss.trim(seq)
	return nil
}

// trim hands the latest ack to the trimmer, replacing an older one.
func (ss *shipSession) trim(seq uint64) {
	if ss.s.cfg.NoTrim || seq == 0 {
		return
	}
	for {
		select {
		case ss.trimTo <- seq:
			return
		default:
		}
		select {
		case old := <-ss.trimTo:
			seq = max(seq, old)
		default:
		}
	}
}

// trimmer trims acknowledged records off the session's path, so acks are
// never held up by a commit.
func (ss *shipSession) trimmer() error {
	for {
		select {
		case <-ss.ctx.Done():
			return nil
		case seq := <-ss.trimTo:
			if err := ss.s.cfg.Log.Trim(seq); err != nil && !errors.Is(err, ErrClosed) {
				ss.s.log.Error("journal trim failed", "upto", seq, "err", err)
			}
		}
	}
}

func (ss *shipSession) fetch(q *FetchRequest) {
	reply := &FetchReply{ID: q.ID}
	if ss.s.cfg.Source == nil {
		reply.Status, reply.Msg = FetchFailed, "this shipper has no source to fetch from"
	} else {
		p, err := ss.s.cfg.Source.Fetch(ss.ctx, q)
		if p != nil && p.release != nil {
			defer p.release() // after the send below: the blocks are written by then
		}
		switch {
		case errors.Is(err, ErrNotFound) || errors.Is(err, fileid.ErrStale):
			reply.Status = FetchNotFound
		case err != nil:
			reply.Status, reply.Msg = FetchFailed, truncMsg(err.Error())
		default:
			reply = p
			reply.ID = q.ID
		}
	}
	if err := reply.Validate(); err != nil {
		reply = &FetchReply{ID: q.ID, Status: FetchFailed, Msg: truncMsg("invalid reply from the source: " + err.Error())}
	}
	if err := ss.w.send(reply); err != nil {
		ss.s.log.Debug("journal fetch reply not sent", "err", err)
	}
}

// Position is how far a standby got: the log it follows, the last seq it
// durably applied there, and the highest epoch it has seen.
type Position struct {
	LogID uint64
	Seq   uint64
	Epoch uint64
}

// Fetcher gets a file's current state from the master, over the session.
type Fetcher interface {
	Fetch(ctx context.Context, q *FetchRequest) (*FetchReply, error)
}

// Applier is the standby's side effect: what receiving a record means.
type Applier interface {
	// Position returns the durable position.
	Position() (Position, error)
	// Apply applies rec, the record after the last applied one. It may
	// fetch from the master with f. Records may be applied again after a
	// crash of the standby (between Apply and Commit), so Apply should be
	// idempotent.
	Apply(ctx context.Context, rec Record, f Fetcher) error
	// Commit durably records pos. It is called after each batch is
	// applied, and when a higher epoch is seen, before the shipper is told
	// anything.
	Commit(pos Position) error
}

// BatchApplier is an Applier that takes a whole Records message at once,
// so it can coalesce the records of one file, pipeline the batch's fetches
// and make the batch durable in one go. The Receiver prefers it.
type BatchApplier interface {
	Applier
	// ApplyBatch applies recs (consecutive, the first after the last
	// applied one) in order and returns how many it applied: all of them,
	// or those before the record that failed, with that record's error.
	// The effects of the records counted are complete (durable after
	// Commit). Like Apply, it may be given records again after a crash.
	ApplyBatch(ctx context.Context, recs []Record, f Fetcher) (int, error)
}

// Holder is an Applier that may ask the receiver to let records gather
// before it applies the next batch (FSApplier does after costly deltas of
// large files, so a stream of rewrites costs one delta, not one per write).
type Holder interface {
	// Hold is how long to wait, from now; 0 for no wait.
	Hold() time.Duration
}

// Prefetcher is an Applier that wants to see each Records message as it
// arrives, before its batch is applied: FSApplier starts fetching the
// ranges the records' writes name at once, so a batch does not wait for
// the fetches of the batch before it and then for its own
// (prefetch_linux.go).
type Prefetcher interface {
	// Prefetch is told of recs as they arrive; f fetches over their
	// session, until ctx ends with it. It must not block.
	Prefetch(ctx context.Context, recs []Record, f Fetcher)
}

// ReceiverConfig configures a Receiver.
type ReceiverConfig struct {
	ClusterID string
	NodeID    string
	Applier   Applier
	// Window is how many Records messages may be unacknowledged (default 8).
	Window int
	Logger *slog.Logger
}

// Receiver is the standby's end: it applies what one shipper sends, in order.
type Receiver struct {
	cfg    ReceiverConfig
	log    *slog.Logger
	single single
	// bufs holds the payloads of large fetch replies, given back by the
	// applier (FetchReply.release) across sessions.
	bufs payloadPool

	mu     sync.Mutex
	status ReceiverStatus
}

// ReceiverStatus is what a Receiver reports.
type ReceiverStatus struct {
	Connected bool
	Peer      string // the shipper's node ID
	// ShipperLog is the log the connected shipper ships (from its hello).
	// A Position in another log means this session ends in ErrResync.
	ShipperLog uint64
	Position   Position
	// LastTime is the capture time (Unix ns) of the last applied record;
	// the lag is now minus this while records are pending.
	LastTime int64
	Applied  uint64 // records applied by this Receiver
}

// NewReceiver returns a Receiver for cfg.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if cfg.Applier == nil {
		return nil, errors.New("journal: receiver: no applier")
	}
	if err := checkID("cluster ID", cfg.ClusterID); err != nil {
		return nil, fmt.Errorf("journal: receiver: %w", err)
	}
	if err := checkID("node ID", cfg.NodeID); err != nil {
		return nil, fmt.Errorf("journal: receiver: %w", err)
	}
	if cfg.Window <= 0 {
		cfg.Window = 8
	}
	cfg.Window = min(cfg.Window, maxWindow)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Receiver{cfg: cfg, log: cfg.Logger}, nil
}

// Status returns the receiver's state.
func (r *Receiver) Status() ReceiverStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Serve runs one session over conn until it fails, the peer leaves, ctx
// ends, or a newer session replaces it. It closes conn. A shipper with a
// lower epoch than the receiver has seen is refused with ErrFenced.
func (r *Receiver) Serve(ctx context.Context, conn net.Conn) error {
	ctx, end := r.single.begin(ctx)
	defer end()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	w := newWire(conn)
	w.bufs = &r.bufs
	err := r.serve(ctx, w)
	if ctx.Err() != nil {
		err = cause(ctx)
	}
	w.tell(err)
	r.mu.Lock()
	r.status.Connected = false
	r.mu.Unlock()
	if err != nil {
		r.log.Info("journal receiving stopped", "err", err)
		return fmt.Errorf("journal: receiver: %w", err)
	}
	return nil
}

func (r *Receiver) serve(ctx context.Context, w *wire) error {
	m, err := w.recv()
	if err != nil {
		return fmt.Errorf("waiting for the shipper's hello: %w", err)
	}
	if err := asError(m); err != nil {
		return err
	}
	sh, ok := m.(*Hello)
	if !ok || sh.Role != RoleShipper {
		return protoErr("expected the shipper's hello, got %s", m.Type())
	}
	if sh.ClusterID != r.cfg.ClusterID {
		return fmt.Errorf("%w: shipper %s belongs to cluster %q, not %q", ErrWrongCluster, sh.NodeID, sh.ClusterID, r.cfg.ClusterID)
	}
	pos, err := r.cfg.Applier.Position()
	if err != nil {
		return fmt.Errorf("read position: %w", err)
	}
	if sh.Epoch < pos.Epoch {
		return fmt.Errorf("shipper %s has epoch %d, below %d: %w", sh.NodeID, sh.Epoch, pos.Epoch, ErrFenced)
	}
	if sh.Epoch > pos.Epoch {
		pos.Epoch = sh.Epoch
		if err := r.cfg.Applier.Commit(pos); err != nil {
			return fmt.Errorf("commit epoch %d: %w", pos.Epoch, err)
		}
	}
	if err := w.send(&Hello{
		Role: RoleReceiver, ClusterID: r.cfg.ClusterID, NodeID: r.cfg.NodeID,
		Epoch: pos.Epoch, LogID: pos.LogID, Seq: pos.Seq, Window: uint32(r.cfg.Window),
	}); err != nil {
		return err
	}
	if pos.LogID == 0 {
		pos.LogID = sh.LogID // a fresh standby follows this log from record 1
	}
	r.mu.Lock()
	r.status.Connected, r.status.Peer, r.status.Position, r.status.ShipperLog = true, sh.NodeID, pos, sh.LogID
	r.mu.Unlock()
	r.log.Info("journal receiving", "peer", sh.NodeID, "from", pos.Seq+1, "epoch", pos.Epoch)

	rn := newRun(ctx, w)
	rs := &recvSession{
		r: r, w: w, ctx: rn.ctx, pos: pos,
		batches:  make(chan []Record, r.cfg.Window),
		fetches:  make(map[uint64]chan *FetchReply),
		epochSig: make(chan struct{}, 1),
	}
	rn.goStart(rs.reader)
	return rn.wait(rs.applier)
}

// recvSession is the state of one Receiver session.
type recvSession struct {
	r       *Receiver
	w       *wire
	ctx     context.Context
	pos     Position
	batches chan []Record
	// newEpoch is the highest epoch an EpochMsg told (reader); epochSig
	// wakes the applier to take it into the position.
	epochMu  sync.Mutex
	newEpoch uint64
	epochSig chan struct{}

	mu      sync.Mutex
	nextID  uint64
	fetches map[uint64]chan *FetchReply
}

func (rs *recvSession) reader() error {
	for {
		m, err := rs.w.recv()
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case *Records:
			if pf, ok := rs.r.cfg.Applier.(Prefetcher); ok {
				pf.Prefetch(rs.ctx, m.Recs, rs)
			}
			select {
			case rs.batches <- m.Recs:
			default:
				return protoErr("more than %d unacknowledged batches", cap(rs.batches))
			}
		case *EpochMsg:
			rs.epochMu.Lock()
			rs.newEpoch = max(rs.newEpoch, m.Epoch)
			rs.epochMu.Unlock()
			select {
			case rs.epochSig <- struct{}{}:
			default:
			}
		case *FetchReply:
			rs.mu.Lock()
			ch, ok := rs.fetches[m.ID]
			delete(rs.fetches, m.ID)
			sent := rs.nextID
			rs.mu.Unlock()
			switch {
			case ok:
				ch <- m
			case m.ID > sent:
				return protoErr("fetch reply %d to no request", m.ID)
			}
			// Else the reply to a request its caller gave up on.
		case *ErrorMsg:
			return asError(m)
		case *HandOffMsg:
			return &PeerError{Code: CodeHandedOff, Msg: "handed off, with a note", Note: m.Note}
		default:
			return protoErr("unexpected %s from the shipper", m.Type())
		}
	}
}

func (rs *recvSession) applier() error {
	for {
		var batch []Record
		select {
		case batch = <-rs.batches:
		case <-rs.epochSig:
			if err := rs.takeEpoch(); err != nil {
				return err
			}
			continue
		case <-rs.ctx.Done():
			return cause(rs.ctx)
		}
		if _, ok := rs.r.cfg.Applier.(BatchApplier); ok {
			if err := rs.hold(); err != nil {
				return err
			}
			batch = rs.more(batch)
		}
		before := rs.pos
		tA := time.Now()
		applied, applyErr := rs.apply(batch)
		tB := time.Now()
		var last int64
		for _, rec := range batch[:applied] {
			rs.pos.Seq = rec.Seq
			rs.pos.Epoch = max(rs.pos.Epoch, rec.Epoch)
			last = rec.Time
		}
		if rs.pos != before {
			if err := rs.r.cfg.Applier.Commit(rs.pos); err != nil {
				return fmt.Errorf("commit position %d: %w", rs.pos.Seq, err)
			}
			if rs.r.log.Enabled(rs.ctx, slog.LevelDebug) {
				// Where a standby's lag goes (scripts/bench replicate --debug).
				rs.r.log.Debug("journal receive: batch committed", "records", applied, "apply_ms", tB.Sub(tA).Milliseconds(),
					"commit_ms", time.Since(tB).Milliseconds(), "age_ms", time.Since(time.Unix(0, batch[0].Time)).Milliseconds())
			}
			rs.r.mu.Lock()
			rs.r.status.Position = rs.pos
			rs.r.status.LastTime = last
			rs.r.status.Applied += uint64(applied)
			rs.r.mu.Unlock()
		}
		if rs.pos.Seq > before.Seq {
			if err := rs.w.send(&Ack{Seq: rs.pos.Seq}); err != nil && applyErr == nil {
				return err
			}
		}
		if applyErr != nil {
			return applyErr
		}
	}
}

// maxHoldWait bounds a Holder's wait.
const maxHoldWait = 2 * time.Second

// hold waits as long as the applier asks (Holder), or until the session
// ends.
// takeEpoch raises the position's epoch to the one the shipper told, and
// commits it.
func (rs *recvSession) takeEpoch() error {
	rs.epochMu.Lock()
	e := rs.newEpoch
	rs.epochMu.Unlock()
	if e <= rs.pos.Epoch {
		return nil
	}
	rs.pos.Epoch = e
	if err := rs.r.cfg.Applier.Commit(rs.pos); err != nil {
		return fmt.Errorf("commit epoch %d: %w", e, err)
	}
	rs.r.mu.Lock()
	rs.r.status.Position = rs.pos
	rs.r.mu.Unlock()
	return nil
}

func (rs *recvSession) hold() error {
	h, ok := rs.r.cfg.Applier.(Holder)
	if !ok {
		return nil
	}
	d := min(h.Hold(), maxHoldWait)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-rs.ctx.Done():
		return cause(rs.ctx)
	}
}

// maxMerge bounds the records of queued Records messages merged into one
// batch.
const maxMerge = 16384

// more appends to batch the Records messages already queued behind it, up
// to about maxMerge records: a standby that fell behind applies (and
// fetches, and syncs) more at a time, so the records of one file coalesce
// across messages. One ack then covers them all.
func (rs *recvSession) more(batch []Record) []Record {
	for len(batch) < maxMerge {
		select {
		case next := <-rs.batches:
			batch = append(slices.Clip(batch), next...)
		default:
			return batch
		}
	}
	return batch
}

// apply applies the records of batch that follow the position, in order,
// and returns how many it applied and why it stopped short.
func (rs *recvSession) apply(batch []Record) (int, error) {
	seq := rs.pos.Seq
	n := 0
	for n < len(batch) && batch[n].Seq == seq+1 {
		seq++
		n++
	}
	var gap error
	if n < len(batch) {
		gap = protoErr("record %d after %d: not the next one", batch[n].Seq, seq)
	}
	recs := batch[:n]
	if ba, ok := rs.r.cfg.Applier.(BatchApplier); ok {
		if len(recs) == 0 {
			return 0, gap
		}
		k, err := ba.ApplyBatch(rs.ctx, recs, rs)
		k = min(max(k, 0), len(recs))
		if err != nil {
			return k, fmt.Errorf("%w: batch of records %d..%d, %d applied: %w", errApply, recs[0].Seq, recs[len(recs)-1].Seq, k, err)
		}
		return k, gap
	}
	for i, rec := range recs {
		if err := rs.r.cfg.Applier.Apply(rs.ctx, rec, rs); err != nil {
			return i, fmt.Errorf("%w: record %d (%s): %w", errApply, rec.Seq, rec.Op, err)
		}
	}
	return n, gap
}

// Fetch asks the master for q over this session (Fetcher).
func (rs *recvSession) Fetch(ctx context.Context, q *FetchRequest) (*FetchReply, error) {
	ch := make(chan *FetchReply, 1)
	rs.mu.Lock()
	rs.nextID++
	id := rs.nextID
	rs.fetches[id] = ch
	rs.mu.Unlock()
	forget := func() {
		rs.mu.Lock()
		delete(rs.fetches, id)
		rs.mu.Unlock()
	}
	req := *q
	req.ID = id
	if err := rs.w.send(&req); err != nil {
		forget()
		return nil, err
	}
	var p *FetchReply
	select {
	case p = <-ch:
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	case <-rs.ctx.Done():
		forget()
		return nil, fmt.Errorf("fetch %s: %w", q.File, ErrSessionEnded)
	}
	switch p.Status {
	case FetchNotFound:
		return nil, fmt.Errorf("fetch %s: %w", q.File, ErrNotFound)
	case FetchFailed:
		return nil, fmt.Errorf("fetch %s: master: %s", q.File, p.Msg)
	}
	return p, nil
}
