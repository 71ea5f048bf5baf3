package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	nfsrpc "github.com/willscott/go-nfs-client/nfs/rpc"
)

// shareSpec is one share the client writes to: NAME:EXPORT:MODE.
type shareSpec struct {
	Name, Export, Mode string
}

func parseShareSpec(s string) (shareSpec, error) {
	p := strings.Split(s, ":")
	if len(p) != 3 || p[0] == "" || !strings.HasPrefix(p[1], "/") || (p[2] != "sync" && p[2] != "async") {
		return shareSpec{}, fmt.Errorf("share %q: want NAME:/EXPORT:sync|async", s)
	}
	return shareSpec{p[0], p[1], p[2]}, nil
}

type shareList []shareSpec

func (l *shareList) String() string { return fmt.Sprint(*l) }
func (l *shareList) Set(s string) error {
	sp, err := parseShareSpec(s)
	if err != nil {
		return err
	}
	*l = append(*l, sp)
	return nil
}

// clientOptions configure the workload.
type clientOptions struct {
	Server   string
	Shares   shareList
	Workers  int
	Seed     uint64
	Duration time.Duration
	History  string
	Prefix   string
	Attempt  time.Duration // an RPC attempt longer than this is abandoned and the mount dialled again
	OpLimit  time.Duration // an op not done after this is given up (result info) and its worker stops
	Pause    time.Duration // between a worker's ops
	// SMBWorkers per share work over SMB (go-smb2) as SMBUser.
	SMBWorkers           int
	SMBUser, SMBPassword string
}

func (o *clientOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.Server, "server", "", "the VIP (IPv4; required)")
	fs.Var(&o.Shares, "share", "NAME:/EXPORT:sync|async (repeatable; required)")
	fs.IntVar(&o.Workers, "workers", 2, "workers per share")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the workers' choices")
	fs.DurationVar(&o.Duration, "duration", 20*time.Second, "start ops for this long")
	fs.StringVar(&o.History, "history", "", "append the history here (required)")
	fs.StringVar(&o.Prefix, "prefix", "", "file name prefix (unique per trial)")
	fs.DurationVar(&o.Attempt, "attempt", 4*time.Second, "abandon an RPC attempt after this and dial again")
	fs.DurationVar(&o.OpLimit, "op-limit", 60*time.Second, "give an op up after this")
	fs.DurationVar(&o.Pause, "pause", 20*time.Millisecond, "pause between a worker's ops")
	fs.IntVar(&o.SMBWorkers, "smb-workers", 0, "SMB workers per share (need --smb-user)")
	fs.StringVar(&o.SMBUser, "smb-user", "", "SMB user")
	fs.StringVar(&o.SMBPassword, "smb-password", "", "SMB user's password (default $CHAOS_SMB_PASSWORD)")
}

func (o *clientOptions) check() error {
	a, err := netip.ParseAddr(o.Server)
	if err != nil || !a.Is4() {
		return fmt.Errorf("--server %q: want an IPv4 address", o.Server)
	}
	if len(o.Shares) == 0 {
		return errors.New("no --share")
	}
	if o.Workers < 0 || o.Workers > 64 || o.SMBWorkers < 0 || o.SMBWorkers > 64 || o.Workers+o.SMBWorkers == 0 {
		return fmt.Errorf("--workers %d, --smb-workers %d: want 0..64 each, not both 0", o.Workers, o.SMBWorkers)
	}
	if o.SMBWorkers > 0 && o.SMBUser == "" {
		return errors.New("--smb-workers without --smb-user")
	}
	if o.SMBPassword == "" {
		o.SMBPassword = os.Getenv("CHAOS_SMB_PASSWORD")
	}
	if o.History == "" {
		return errors.New("no --history")
	}
	if strings.ContainsAny(o.Prefix, "/\x00") {
		return fmt.Errorf("--prefix %q: no slashes", o.Prefix)
	}
	if o.Attempt <= 0 || o.OpLimit < o.Attempt || o.Duration <= 0 {
		return errors.New("--attempt, --op-limit, --duration: want 0 < attempt <= op-limit, duration > 0")
	}
	return nil
}

// runClient runs every worker until the duration is over and their last
// op is done, appending each finished op to the history.
func runClient(ctx context.Context, o clientOptions) error {
	f, err := os.OpenFile(o.History, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("client: open history: %w", err)
	}
	defer f.Close()
	h := &historyWriter{w: f}
	stop, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var wg sync.WaitGroup
	id := 0
	for _, sh := range o.Shares {
		for i := range o.Workers + o.SMBWorkers {
			id++
			w := &worker{id: id, share: sh, mode: sh.Mode, o: o, hist: h, files: map[string]*nfsc.File{},
				rng: rand.New(rand.NewPCG(o.Seed, uint64(id)))}
			if i >= o.Workers {
				w.mode, w.viaSMB = ModeSMB, true
			}
			wg.Go(func() { w.run(stop) })
		}
	}
	wg.Wait()
	return h.err
}

type historyWriter struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

func (h *historyWriter) add(o Op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		h.err = WriteOp(h.w, o)
	}
}

// nfsConn is one mount of the share: MOUNT and NFS connections.
//
// go-nfs-client's rpc.Client closes the reply channels of the calls in
// flight when its connection fails and does not forget them, so a Close
// while an abandoned call still waits on it makes the receive goroutine
// close them twice and panic (the whole client exits). The mount is
// therefore closed only once no call of the worker runs on it.
type nfsConn struct {
	m *nfsc.Mount
	t *nfsc.Target

	mu       sync.Mutex
	inflight int
	dropped  bool
}

// begin and end bracket a call on the mount.
func (c *nfsConn) begin() {
	c.mu.Lock()
	c.inflight++
	c.mu.Unlock()
}

func (c *nfsConn) end() {
	c.mu.Lock()
	c.inflight--
	closeNow := c.dropped && c.inflight == 0
	c.mu.Unlock()
	if closeNow {
		c.closeConns()
	}
}

// close closes the mount now, or when its last call ends.
func (c *nfsConn) close() {
	c.mu.Lock()
	c.dropped = true
	closeNow := c.inflight == 0
	c.mu.Unlock()
	if closeNow {
		c.closeConns()
	}
}

func (c *nfsConn) closeConns() {
	c.t.Close()
	c.m.Close()
}

// worker runs ops on its own files of one share.
type worker struct {
	id     int
	share  shareSpec
	mode   string // the ops' Mode: the share's, or ModeSMB
	viaSMB bool
	smb    *smbConn
	o      clientOptions
	hist   *historyWriter
	rng    *rand.Rand
	conn   *nfsConn
	// files: the live files with the handle the worker got for each
	// (kept across reconnects and renames, as a client keeps them);
	// size and live the worker's own model.
	files map[string]*nfsc.File
	size  map[string]int64
	live  []string
	next  int
	seq   int
}

const recordLen = 48

func (w *worker) run(stop context.Context) {
	w.size = map[string]int64{}
	defer w.drop()
	for stop.Err() == nil {
		op := w.choose()
		w.seq++
		op.Worker, op.Seq, op.Share, op.Mode = w.id, w.seq, w.share.Name, w.mode
		w.exec(&op)
		w.hist.add(op)
		if op.Result == ResultInfo {
			return // indeterminate: this worker's model ends here
		}
		t := time.NewTimer(w.o.Pause)
		select {
		case <-stop.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// choose draws the next op from the worker's model.
func (w *worker) choose() Op {
	if len(w.live) < 2 || (len(w.live) < 4 && w.rng.IntN(10) == 0) {
		w.next++
		return Op{Kind: OpCreate, File: fmt.Sprintf("%sw%d-%d", w.o.Prefix, w.id, w.next)}
	}
	name := w.live[w.rng.IntN(len(w.live))]
	n := w.rng.IntN(100)
	switch {
	case n < 30 || (n < 55 && w.size[name] > 2048):
		return Op{Kind: OpWrite, File: name, Data: w.record()}
	case n < 55:
		return Op{Kind: OpAppend, File: name, Off: w.size[name], Data: w.record()}
	case n < 80:
		return Op{Kind: OpRead, File: name}
	case n < 90:
		w.next++
		return Op{Kind: OpRename, File: name, To: fmt.Sprintf("%sw%d-%d", w.o.Prefix, w.id, w.next)}
	default:
		return Op{Kind: OpDelete, File: name}
	}
}

// record is a unique value of recordLen bytes.
func (w *worker) record() string {
	s := fmt.Sprintf("%sw%d s%d %016x", w.o.Prefix, w.id, w.seq+1, w.rng.Uint64())
	if len(s) < recordLen-1 {
		s += strings.Repeat(".", recordLen-1-len(s))
	}
	return s[:recordLen-1] + "\n"
}

// errFinal marks an answer that ends the op (no retry): the server said
// no.
type errFinal struct{ err error }

func (e errFinal) Error() string { return e.err.Error() }
func (e errFinal) Unwrap() error { return e.err }

func isStale(err error) bool {
	var ne *nfsc.Error
	return errors.As(err, &ne) && ne.ErrorNum == nfsc.NFS3ErrStale
}

// exec runs op until it is acknowledged, refused, or the op limit ends,
// over NFS or (viaSMB) SMB. A failed attempt drops the connection and the
// next one dials again, as a hard-mounted NFS client or a reconnecting
// SMB client does after its server failed over.
func (w *worker) exec(op *Op) {
	start := time.Now()
	op.Invoke = start.UnixNano()
	var last error
	for try := 1; ; try++ {
		op.Tries = try
		if time.Since(start) > w.o.OpLimit {
			op.Result, op.Err = ResultInfo, fmt.Sprintf("gave up after %v: %v", w.o.OpLimit, last)
			break
		}
		if try > 1 {
			pause(50 * time.Millisecond)
		}
		if err := w.connect(); err != nil {
			last = err
			continue
		}
		var err error
		if w.viaSMB {
			err = w.attemptSMB(op)
		} else {
			err = w.attempt(op)
		}
		if err == nil {
			op.Result, op.Err = ResultOK, ""
			w.applied(op)
			break
		}
		last = err
		v, why := w.judge(op, err)
		if v == refused {
			op.Result, op.Err = ResultFail, why
			w.failed(op)
			break
		}
		if v == redial {
			w.drop()
		}
	}
	op.Done = time.Now().UnixNano()
}

// verdict is what a failed attempt means for the op.
type verdict int

const (
	retry   verdict = iota // try again on the same connection
	redial                 // drop the connection, dial again, try again
	refused                // the server said no: the op failed
)

// judge tells what err, the failure of an attempt of op, means; for a
// refusal also the error the history records.
func (w *worker) judge(op *Op, err error) (verdict, string) {
	var fin errFinal
	switch {
	case errors.As(err, &fin):
		if w.viaSMB && errors.Is(err, fs.ErrNotExist) && op.Kind != OpCreate {
			return refused, errNameGone // the checker reads it as "the file was not there"
		}
		return refused, err.Error()
	case !w.viaSMB && isStale(err):
		// The handle the worker holds was refused: look the name up
		// again. Still there: a stale handle (a bug); gone: the file was
		// lost, which the final state shows.
		f, id, lerr := w.reopen(op.File)
		switch {
		case lerr == nil:
			op.Stale++
			op.StaleID = id
			w.files[op.File] = f
			return retry, ""
		case errors.Is(lerr, os.ErrNotExist):
			return refused, errNameGone
		}
	}
	return redial, ""
}

// connect dials the share if the worker has no connection.
func (w *worker) connect() error {
	switch {
	case w.viaSMB && w.smb == nil:
		c, err := w.dialSMB()
		if err != nil {
			return err
		}
		w.smb = c
	case !w.viaSMB && w.conn == nil:
		c, err := w.dial()
		if err != nil {
			return err
		}
		w.conn = c
	}
	return nil
}

// reopen looks name up again on the current mount (bounded like an
// attempt) for a fresh handle.
// reopen looks name up again after its handle was refused as stale, and
// returns the file and its fileid now (for the history: the server's log
// names the refused one).
func (w *worker) reopen(name string) (*nfsc.File, uint64, error) {
	type res struct {
		f   *nfsc.File
		id  uint64
		err error
	}
	ch := make(chan res, 1)
	conn := w.conn
	t := conn.t
	conn.begin()
	go func() {
		defer conn.end()
		var r res
		fi, _, err := t.Lookup(name)
		if err != nil {
			r.err = err
		} else {
			if fa, ok := fi.(*nfsc.Fattr); ok {
				r.id = fa.Fileid
			}
			r.f, r.err = t.Open(name)
		}
		ch <- r
	}()
	timer := time.NewTimer(w.o.Attempt)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.f, r.id, r.err
	case <-timer.C:
		return nil, 0, fmt.Errorf("LOOKUP %s: no answer within %v", name, w.o.Attempt)
	}
}

func pause(d time.Duration) {
	t := time.NewTimer(d)
	<-t.C
}

// drop closes the connection after a failed attempt; the next dials
// again.
func (w *worker) drop() {
	if w.conn != nil {
		w.conn.close()
		w.conn = nil
	}
	if w.smb != nil {
		w.smb.close()
		w.smb = nil
	}
}

// dial mounts the share through the VIP, bounded by the attempt time
// (go-nfs-client has no connect timeout: a dial that hangs is abandoned
// and closed when it ends).
func (w *worker) dial() (*nfsConn, error) {
	type res struct {
		c   *nfsConn
		err error
	}
	ch := make(chan res, 1)
	abandoned := make(chan struct{})
	go func() {
		m, err := nfsc.DialMount(w.o.Server, 0)
		if err != nil {
			ch <- res{nil, fmt.Errorf("portmapper/MOUNT: %w", err)}
			return
		}
		t, err := m.Mount(w.share.Export, nfsrpc.NewAuthUnix("chaos", 1000, 1000).Auth())
		if err != nil {
			m.Close()
			ch <- res{nil, fmt.Errorf("MNT %s: %w", w.share.Export, err)}
			return
		}
		c := &nfsConn{m: m, t: t}
		select {
		case <-abandoned:
			c.close()
		case ch <- res{c, nil}:
		}
	}()
	t := time.NewTimer(w.o.Attempt)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-t.C:
		close(abandoned)
		return nil, fmt.Errorf("mount %s: no answer within %v", w.share.Export, w.o.Attempt)
	}
}

// attempt runs one try of op on the current mount, bounded by the
// attempt time. Each try works on its own copy of the file (a File keeps
// its offset), pointed at the current mount, so an abandoned try touches
// nothing the worker uses afterwards.
func (w *worker) attempt(op *Op) error {
	conn := w.conn
	t := conn.t
	var fc *nfsc.File
	if base := w.files[op.File]; base != nil && op.Kind != OpCreate {
		c := *base
		c.Target = t
		fc = &c
	}
	if fc == nil && op.Kind != OpCreate && op.Kind != OpRename && op.Kind != OpDelete {
		return errFinal{fmt.Errorf("%s: no handle for %s", op.Kind, op.File)}
	}
	kind, name, to, off, data := op.Kind, op.File, op.To, op.Off, op.Data
	type res struct {
		f    *nfsc.File
		read string
		err  error
	}
	ch := make(chan res, 1)
	conn.begin()
	go func() {
		defer conn.end()
		var r res
		switch kind {
		case OpCreate:
			r.f, r.err = t.OpenFile(name, 0o644)
		case OpWrite, OpAppend:
			if _, err := fc.Seek(off, io.SeekStart); err != nil {
				r.err = errFinal{err}
				break
			}
			if _, err := fc.Write([]byte(data)); err != nil {
				r.err = err
				break
			}
			r.err = fc.Close() // COMMIT
		case OpRead:
			r.read, r.err = readAll(fc)
		case OpRename:
			// RENAME and REMOVE are not idempotent: the RPC layer
			// retransmits a call on a new connection (also within one
			// try), and a retransmission that finds its work done
			// answers NFS3ERR_NOENT. The worker alone uses its names, so
			// the target existing means the rename happened.
			r.err = t.Rename(name, to)
			if errors.Is(r.err, os.ErrNotExist) {
				if _, _, err := t.Lookup(to); err == nil {
					r.err = nil
				} else {
					r.err = errFinal{r.err}
				}
			}
		case OpDelete:
			// NOENT: done by an earlier transmission, or the file was
			// never there (a lost create, which the reads and the final
			// state show); either way it is gone.
			r.err = t.Remove(name)
			if errors.Is(r.err, os.ErrNotExist) {
				r.err = nil
			}
		}
		ch <- r
	}()
	timer := time.NewTimer(w.o.Attempt)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.err == nil {
			switch kind {
			case OpCreate:
				w.files[name] = r.f
			case OpRead:
				op.Data = r.read
			}
		}
		return r.err
	case <-timer.C:
		return fmt.Errorf("%s %s: no answer within %v", kind, name, w.o.Attempt)
	}
}

// readAll reads the whole file from offset 0 through its handle.
func readAll(f *nfsc.File) (string, error) {
	var out []byte
	buf := make([]byte, 8192)
	for len(out) <= maxData {
		n, err := f.ReadAt(buf, int64(len(out)))
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return string(out), nil
		}
		if err != nil {
			return "", err
		}
		if n == 0 {
			return string(out), nil
		}
	}
	return "", errFinal{fmt.Errorf("file longer than %d bytes", maxData)}
}

// applied updates the worker's model after an acknowledged op.
func (w *worker) applied(op *Op) {
	switch op.Kind {
	case OpCreate:
		w.live = append(w.live, op.File)
		w.size[op.File] = 0
	case OpWrite, OpAppend:
		if end := op.Off + int64(len(op.Data)); end > w.size[op.File] {
			w.size[op.File] = end
		}
	case OpRename:
		w.forget(op.File)
		w.live = append(w.live, op.To)
		w.files[op.To] = w.files[op.File]
		w.size[op.To] = w.size[op.File]
		delete(w.files, op.File)
		delete(w.size, op.File)
	case OpDelete:
		w.forget(op.File)
		delete(w.files, op.File)
		delete(w.size, op.File)
	}
}

// failed: the server refused an op on a file; the worker's model and the
// server disagree about it (a loss the final state will show), so the
// worker leaves the file alone from now on.
func (w *worker) failed(op *Op) {
	if op.Kind == OpCreate {
		return
	}
	w.forget(op.File)
	delete(w.files, op.File)
}

func (w *worker) forget(name string) {
	for i, n := range w.live {
		if n == name {
			w.live = append(w.live[:i], w.live[i+1:]...)
			return
		}
	}
}
