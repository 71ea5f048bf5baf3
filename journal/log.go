package journal

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Errors of the Log.
var (
	// ErrFull: the log holds MaxDepth records; TryAppend does not wait.
	ErrFull = errors.New("journal: log full")
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("journal: log closed")
	// ErrTrimmed: the records asked for were already trimmed; the reader
	// needs a resync from a snapshot.
	ErrTrimmed = errors.New("journal: records already trimmed")
	// ErrEpoch: an epoch may only go up.
	ErrEpoch = errors.New("journal: epoch would go down")
)

var (
	bucketRecords = []byte("records")
	bucketMeta    = []byte("meta")
	keyFormat     = []byte("format")
	keyID         = []byte("id")
	keyEpoch      = []byte("epoch")
	keyLast       = []byte("last")
)

// logFormat is the on-disk layout version, stored in the meta bucket.
const logFormat = 1

// Defaults of Options.
const (
	DefaultMaxDepth = 1 << 20
	DefaultMaxBatch = 4096
)

// Options configure a Log.
type Options struct {
	// MaxDepth is how many records (retained plus queued) the log holds
	// before Append waits for a Trim and TryAppend fails with ErrFull. One
	// Append larger than MaxDepth is let in when the log is empty.
	MaxDepth int
	// MaxBatch bounds the records committed in one transaction.
	MaxBatch int
	// NoSync skips fsync: for tests and benchmarks only; a crash may lose
	// committed records.
	NoSync bool
	// Now stamps records appended without a Time; time.Now if nil.
	Now func() time.Time
	// Logger; slog.Default() if nil.
	Logger *slog.Logger
	// Continue, if its ID is set, makes a new file continue another log:
	// it takes that log's ID, and its first record is After+1. A reader
	// at seq After of that log reads on here without noticing a switch
	// (the master that takes over from one that handed off to it: see
	// replica). An existing file of another ID is refused.
	Continue Continuation

	commitHook func(requests int) // tests: called before each commit
}

// Continuation names the log, and the last record of it, that a new Log
// continues (Options.Continue).
type Continuation struct {
	ID, After uint64
}

// Log is the journal's bbolt file. All writes go through one writer
// goroutine that commits whatever has queued up in one transaction (group
// commit). Safe for concurrent use.
type Log struct {
	db   *bolt.DB
	path string
	opts Options
	log  *slog.Logger
	id   uint64

	mu      sync.Mutex
	queue   []*request
	queued  int           // records in queue
	first   uint64        // lowest retained seq (last+1 when empty)
	last    uint64        // highest committed seq
	epoch   uint64        // committed epoch
	changed chan struct{} // closed and replaced on every state change
	closed  bool
	stats   Stats

	kick    chan struct{}
	stopped chan struct{}
}

// Stats count the writer's work.
type Stats struct {
	Commits  uint64 // transactions committed
	Appended uint64 // records committed
	Trimmed  uint64 // records deleted by Trim
}

type reqKind uint8

const (
	reqAppend reqKind = iota
	reqTrim
	reqEpoch
)

type request struct {
	kind reqKind
	recs [][]byte // reqAppend: encoded records; seq and epoch patched by the writer
	arg  uint64   // reqTrim: up to; reqEpoch: the epoch
	last uint64   // reqAppend: the last seq assigned
	err  error
	done chan struct{}
}

// Open opens (creating if needed) the log at path and starts its writer.
func Open(path string, opts Options) (*Log, error) {
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = DefaultMaxDepth
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        time.Second,
		NoSync:         opts.NoSync,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	l := &Log{
		db: db, path: path, opts: opts, log: opts.Logger,
		changed: make(chan struct{}),
		kick:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	if err := db.Update(l.load); err != nil {
		db.Close()
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	go l.writer()
	return l, nil
}

// load creates or reads the meta data and finds the retained range.
func (l *Log) load(tx *bolt.Tx) error {
	recs, err := tx.CreateBucketIfNotExists(bucketRecords)
	if err != nil {
		return err
	}
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	cont := l.opts.Continue
	if v := meta.Get(keyFormat); v == nil {
		var id [8]byte
		binary.BigEndian.PutUint64(id[:], cont.ID)
		for binary.BigEndian.Uint64(id[:]) == 0 {
			if _, err := rand.Read(id[:]); err != nil {
				return err
			}
		}
		for _, kv := range [][2][]byte{
			{keyFormat, u64(logFormat)}, {keyID, id[:]}, {keyEpoch, u64(0)}, {keyLast, u64(cont.After)},
		} {
			if err := meta.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
	} else if len(v) != 8 || binary.BigEndian.Uint64(v) != logFormat {
		return fmt.Errorf("unknown log format %x", v)
	}
	get := func(k []byte) (uint64, error) {
		v := meta.Get(k)
		if len(v) != 8 {
			return 0, fmt.Errorf("meta %s: bad value %x", k, v)
		}
		return binary.BigEndian.Uint64(v), nil
	}
	if l.id, err = get(keyID); err != nil {
		return err
	}
	if cont.ID != 0 && l.id != cont.ID {
		return fmt.Errorf("continue log %016x: the file is log %016x", cont.ID, l.id)
	}
	if l.epoch, err = get(keyEpoch); err != nil {
		return err
	}
	if l.last, err = get(keyLast); err != nil {
		return err
	}
	l.first = l.last + 1
	if k, _ := recs.Cursor().First(); k != nil {
		if len(k) != 8 {
			return fmt.Errorf("record key %x: not 8 bytes", k)
		}
		l.first = binary.BigEndian.Uint64(k)
		if l.first > l.last {
			return fmt.Errorf("record %d beyond the last assigned seq %d", l.first, l.last)
		}
	}
	return nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// ID is the log's random identity, made when the file was created. A reader's
// position is only meaningful in the log it came from.
func (l *Log) ID() uint64 { return l.id }

// Path is the log's file.
func (l *Log) Path() string { return l.path }

// First is the lowest retained seq; Last()+1 when the log is empty.
func (l *Log) First() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

// Last is the highest committed seq (0 when nothing was ever appended).
func (l *Log) Last() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Depth is the number of records retained and queued: what MaxDepth bounds.
func (l *Log) Depth() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.depthLocked()
}

func (l *Log) depthLocked() int { return int(l.last+1-l.first) + l.queued }

// Epoch is the committed epoch; appended records carry it.
func (l *Log) Epoch() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// Stats returns the writer's counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Append adds recs to the log, in order, and returns the seq of the last one
// once they are durable. The log assigns Seq and Epoch; a zero Time is set to
// now. When the log is at MaxDepth, Append waits for a Trim (or ctx): that is
// the back-pressure that holds writers instead of losing changes. Once the
// records are queued, Append waits for the commit regardless of ctx.
func (l *Log) Append(ctx context.Context, recs ...Record) (uint64, error) {
	return l.append(ctx, true, recs)
}

// TryAppend is Append that fails with ErrFull instead of waiting for room.
func (l *Log) TryAppend(recs ...Record) (uint64, error) {
	return l.append(context.Background(), false, recs)
}

func (l *Log) append(ctx context.Context, wait bool, recs []Record) (uint64, error) {
	p, err := l.enqueue(ctx, wait, recs)
	if err != nil {
		return 0, err
	}
	return p.Wait()
}

// Pending is an append that is queued, in order, and committed by the
// writer with what else is queued (group commit).
type Pending struct{ req *request }

// Wait waits until the records are durable and returns the seq of the last
// one, or the error that failed their commit.
func (p *Pending) Wait() (uint64, error) {
	<-p.req.done
	return p.req.last, p.req.err
}

// Done is closed once the commit is over (Wait then returns at once).
func (p *Pending) Done() <-chan struct{} { return p.req.done }

// Enqueue is Append that returns once the records are queued, before they
// are durable: records queued after them (by any caller) get higher seqs,
// and the writer commits them in that order, so a caller can prepare its
// next records while these are being committed, and Wait for them later.
// When the log is at MaxDepth it waits for room (or ctx) like Append.
func (l *Log) Enqueue(ctx context.Context, recs ...Record) (*Pending, error) {
	return l.enqueue(ctx, true, recs)
}

// TryEnqueue is Enqueue that fails with ErrFull instead of waiting for room.
func (l *Log) TryEnqueue(recs ...Record) (*Pending, error) {
	return l.enqueue(context.Background(), false, recs)
}

func (l *Log) enqueue(ctx context.Context, wait bool, recs []Record) (*Pending, error) {
	if len(recs) == 0 {
		return nil, errors.New("journal: append: no records")
	}
	var now int64
	buf := make([]byte, 0, len(recs)*96)
	ends := make([]int, len(recs))
	for i := range recs {
		r := recs[i]
		r.Seq, r.Epoch = 0, 0
		if r.Time == 0 {
			if now == 0 {
				now = l.opts.Now().UnixNano()
			}
			r.Time = now
		}
		var err error
		if buf, err = AppendMarshal(buf, r); err != nil {
			return nil, fmt.Errorf("journal: append record %d of %d: %w", i+1, len(recs), err)
		}
		ends[i] = len(buf)
	}
	req := &request{kind: reqAppend, recs: make([][]byte, len(recs)), done: make(chan struct{})}
	start := 0
	for i, end := range ends {
		req.recs[i] = buf[start:end:end]
		start = end
	}

	l.mu.Lock()
	for {
		if l.closed {
			l.mu.Unlock()
			return nil, ErrClosed
		}
		d := l.depthLocked()
		if d == 0 || d+len(recs) <= l.opts.MaxDepth {
			break
		}
		if !wait {
			l.mu.Unlock()
			return nil, fmt.Errorf("journal: append %d records at depth %d of %d: %w", len(recs), d, l.opts.MaxDepth, ErrFull)
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("journal: append: waiting for room: %w", ctx.Err())
		}
		l.mu.Lock()
	}
	l.enqueueLocked(req, len(recs))
	l.mu.Unlock()
	return &Pending{req: req}, nil
}

func (l *Log) enqueueLocked(req *request, n int) {
	l.queue = append(l.queue, req)
	l.queued += n
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// submit queues a non-append request and waits for its commit.
func (l *Log) submit(req *request) error {
	req.done = make(chan struct{})
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.enqueueLocked(req, 0)
	l.mu.Unlock()
	<-req.done
	return req.err
}

// Trim deletes the records up to and including seq upTo, once the standby has
// acknowledged them, and lets held appenders in. Trimming what is already
// gone is a no-op; trimming past Last is an error.
func (l *Log) Trim(upTo uint64) error {
	return l.submit(&request{kind: reqTrim, arg: upTo})
}

// SetEpoch durably raises the epoch stamped on records appended after it
// returns. Lowering it fails with ErrEpoch.
func (l *Log) SetEpoch(epoch uint64) error {
	return l.submit(&request{kind: reqEpoch, arg: epoch})
}

// Wait blocks until a record after seq after is committed, and returns Last.
func (l *Log) Wait(ctx context.Context, after uint64) (uint64, error) {
	l.mu.Lock()
	for l.last <= after {
		if l.closed {
			l.mu.Unlock()
			return 0, ErrClosed
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		l.mu.Lock()
	}
	defer l.mu.Unlock()
	return l.last, nil
}

// Changed returns a channel closed at the next change of the log's state
// (a commit, a trim, an epoch change, or Close).
func (l *Log) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Read returns up to max committed records from seq from on. It returns none
// when from is past Last, and ErrTrimmed when from was trimmed.
func (l *Log) Read(from uint64, max int) ([]Record, error) {
	var out []Record
	err := l.scan(from, max, 0, func(v []byte) error {
		r, err := Unmarshal(v)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// ReadEncoded is Read returning the records' encodings, at most maxBytes of
// them (but always at least one record if any is there); 0 means no byte
// limit. The shipper sends these bytes as they are.
func (l *Log) ReadEncoded(from uint64, max, maxBytes int) ([][]byte, error) {
	var out [][]byte
	size := 0
	err := l.scan(from, max, maxBytes, func(v []byte) error {
		if maxBytes > 0 && len(out) > 0 && size+len(v) > maxBytes {
			return errStopScan
		}
		size += len(v)
		out = append(out, append([]byte(nil), v...))
		return nil
	})
	return out, err
}

var errStopScan = errors.New("stop")

func (l *Log) scan(from uint64, max, maxBytes int, fn func(v []byte) error) error {
	if max <= 0 {
		return fmt.Errorf("journal: read from %d: max %d records", from, max)
	}
	if from == 0 {
		return errors.New("journal: read from 0: seqs start at 1")
	}
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		k, v := c.Seek(u64(from))
		want := from
		if k == nil {
			last := binary.BigEndian.Uint64(tx.Bucket(bucketMeta).Get(keyLast))
			if from <= last {
				return fmt.Errorf("read from %d (last %d, none retained): %w", from, last, ErrTrimmed)
			}
			return nil
		}
		if got := binary.BigEndian.Uint64(k); got != from {
			return fmt.Errorf("read from %d (first retained %d): %w", from, got, ErrTrimmed)
		}
		for n := 0; k != nil && n < max; n++ {
			if got := binary.BigEndian.Uint64(k); got != want {
				return fmt.Errorf("gap in the log: want seq %d, found %d", want, got)
			}
			if err := fn(v); err != nil {
				if errors.Is(err, errStopScan) {
					return nil
				}
				return fmt.Errorf("seq %d: %w", want, err)
			}
			want++
			k, v = c.Next()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("journal: read: %w", err)
	}
	return nil
}

// Close commits what is queued, stops the writer and closes the file.
// Appenders waiting for room get ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.stopped
		return nil
	}
	l.closed = true
	l.broadcastLocked()
	close(l.kick)
	l.mu.Unlock()
	<-l.stopped
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("journal: close %s: %w", l.path, err)
	}
	return nil
}

func (l *Log) broadcastLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// writer commits queued requests, as many as are waiting (up to MaxBatch
// records), in one transaction each: the group commit.
func (l *Log) writer() {
	defer close(l.stopped)
	for range l.kick {
		for l.commitBatch() {
		}
	}
	for l.commitBatch() { // drain what was queued before Close
	}
}

// commitBatch commits one batch; it reports whether there was one.
func (l *Log) commitBatch() bool {
	l.mu.Lock()
	if len(l.queue) == 0 {
		l.mu.Unlock()
		return false
	}
	n, recs := 0, 0
	for n < len(l.queue) && (n == 0 || recs+len(l.queue[n].recs) <= l.opts.MaxBatch) {
		recs += len(l.queue[n].recs)
		n++
	}
	batch := l.queue[:n:n]
	l.queue = l.queue[n:]
	first, last, epoch := l.first, l.last, l.epoch
	l.mu.Unlock()
	if l.opts.commitHook != nil {
		l.opts.commitHook(len(batch))
	}

	var trimmed uint64
	err := l.db.Update(func(tx *bolt.Tx) error {
		rb, meta := tx.Bucket(bucketRecords), tx.Bucket(bucketMeta)
		rb.FillPercent = 1 // keys only ever grow: pack pages full
		for _, req := range batch {
			req.err = nil
			switch req.kind {
			case reqAppend:
				for _, enc := range req.recs {
					last++
					setSeqEpoch(enc, last, epoch)
					if err := rb.Put(u64(last), enc); err != nil {
						return err
					}
				}
				req.last = last
			case reqTrim:
				if req.arg > last {
					req.err = fmt.Errorf("journal: trim to %d: beyond the last record %d", req.arg, last)
					continue
				}
				c := rb.Cursor()
				for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= req.arg; k, _ = c.First() {
					if err := c.Delete(); err != nil {
						return err
					}
					trimmed++
				}
				first = max(first, req.arg+1)
			case reqEpoch:
				if req.arg < epoch {
					req.err = fmt.Errorf("journal: set epoch %d below %d: %w", req.arg, epoch, ErrEpoch)
					continue
				}
				epoch = req.arg
			}
		}
		if err := meta.Put(keyLast, u64(last)); err != nil {
			return err
		}
		return meta.Put(keyEpoch, u64(epoch))
	})

	l.mu.Lock()
	for _, req := range batch {
		l.queued -= len(req.recs)
		if err != nil {
			req.err = fmt.Errorf("journal: commit: %w", err)
			req.last = 0
		}
	}
	if err == nil {
		// An empty log has first == last+1, which is where new records
		// start; a trim moves first up to at most last+1.
		l.first, l.last, l.epoch = first, last, epoch
		l.stats.Commits++
		l.stats.Appended += uint64(recs)
		l.stats.Trimmed += trimmed
	} else {
		l.log.Error("journal commit failed", "path", l.path, "requests", len(batch), "err", err)
	}
	l.broadcastLocked()
	l.mu.Unlock()
	for _, req := range batch {
		close(req.done)
	}
	return true
}
