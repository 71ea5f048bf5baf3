package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"ftnas/appliance/nfs/xdr"
)

// Defaults for Options.
const (
	DefaultMaxInFlight  = 64
	DefaultMaxRecord    = 2<<20 + 64<<10 // a 2 MiB WRITE plus headers
	DefaultWriteTimeout = time.Minute
	maxUDPDatagram      = 65535
)

// ErrServerClosed is returned by Serve and ServeUDP after Shutdown.
var ErrServerClosed = errors.New("rpc: server closed")

// Options configures a Server. The zero value is usable.
type Options struct {
	Log          *slog.Logger
	MaxInFlight  int           // concurrent calls per TCP connection (and per UDP socket); default 64
	MaxRecord    int           // largest reassembled TCP record; a bigger one closes the connection; default DefaultMaxRecord
	WriteTimeout time.Duration // limit on writing one reply; default one minute, negative for none
	// Observe, if set, is called after each answered call, for metrics. It
	// runs on the serving goroutine and must be quick.
	Observe func(CallInfo)
}

// Server is an ONC RPC server. Register programs, then call Serve and/or
// ServeUDP (any number of listeners), and Shutdown to stop.
type Server struct {
	log     *slog.Logger
	opts    Options
	progs   atomic.Pointer[progTable]
	reqPool sync.Pool

	ctx    context.Context // cancelled by Shutdown
	cancel context.CancelFunc

	mu        sync.Mutex // guards the fields below and Register's copy-on-write
	closed    bool
	listeners map[net.Listener]struct{}
	packets   map[net.PacketConn]struct{}
	conns     map[*conn]struct{}
	handlers  sync.WaitGroup // serving goroutines and in-flight calls
}

type program struct {
	low, high uint32
	vers      map[uint32]Handler
}

type progTable map[uint32]*program

// request is the pooled per-call state: the record, the decoded call and
// the reply buffer.
type request struct {
	callBuf
	in  []byte
	out xdr.Writer
}

// NewServer returns a Server with no programs registered.
func NewServer(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.MaxRecord <= 0 {
		o.MaxRecord = DefaultMaxRecord
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	s := &Server{
		log:       o.Log,
		opts:      o,
		listeners: make(map[net.Listener]struct{}),
		packets:   make(map[net.PacketConn]struct{}),
		conns:     make(map[*conn]struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.reqPool.New = func() any {
		r := &request{in: make([]byte, 0, 4<<10)}
		r.out.Reset(make([]byte, 0, 4<<10))
		return r
	}
	empty := progTable{}
	s.progs.Store(&empty)
	return s
}

// Register serves version vers of program prog with h, replacing any
// earlier handler for the pair. It is safe to call while serving.
func (s *Server) Register(prog, vers uint32, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.progs.Load()
	next := make(progTable, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	p := &program{low: vers, high: vers, vers: map[uint32]Handler{vers: h}}
	if o, ok := old[prog]; ok {
		for v, oh := range o.vers {
			if v != vers {
				p.vers[v] = oh
			}
		}
		for v := range p.vers {
			p.low = min(p.low, v)
			p.high = max(p.high, v)
		}
	}
	next[prog] = p
	s.progs.Store(&next)
}

func (s *Server) getRequest() *request { return s.reqPool.Get().(*request) }

func (s *Server) putRequest(r *request) {
	r.call = Call{}
	r.auth = AuthSys{}
	r.args.Reset(nil)
	r.cred.Reset(nil)
	r.in = r.in[:0]
	r.out.Truncate(0)
	s.reqPool.Put(r)
}

// process decodes req.in, runs the handler and leaves the reply in
// req.out (with markLen bytes reserved in front). It returns the decode
// outcome (there is a reply to send unless it is outcomeShort or
// outcomeNotCall) and an error describing a malformed or rejected call.
func (s *Server) process(ctx context.Context, req *request, names *nameCache, remote, local net.Addr) (outcome, error) {
	var start time.Time
	if s.opts.Observe != nil {
		start = time.Now()
	}
	w := &req.out
	o, auth, err := decodeCall(req.in, &req.callBuf, names)
	c := &req.call
	info := CallInfo{Prog: c.Prog, Vers: c.Vers, Proc: c.Proc, InBytes: len(req.in)}
	switch o {
	case outcomeShort, outcomeNotCall:
		return o, err
	case outcomeRPCMismatch:
		writeRPCMismatch(w, c.XID)
		info.Stat, info.Denied = ProgMismatch, true
	case outcomeAuthError:
		writeAuthError(w, c.XID, auth)
		info.Stat, info.Denied = DenyAuth(auth), true
	case outcomeGarbage:
		writeAccepted(w, c.XID, GarbageArgs)
		info.Stat = GarbageArgs
	case outcomeDispatch:
		c.Remote, c.Local = remote, local
		info.Stat = s.dispatch(ctx, c, w)
		_, info.Denied = info.Stat.authDenial()
	}
	if s.opts.Observe != nil {
		info.Duration = time.Since(start)
		info.OutBytes = w.Len() - markLen
		s.opts.Observe(info)
	}
	return o, err
}

// dispatch finds the handler for c and writes the complete reply to w.
func (s *Server) dispatch(ctx context.Context, c *Call, w *xdr.Writer) AcceptStat {
	p, ok := (*s.progs.Load())[c.Prog]
	if !ok {
		writeAccepted(w, c.XID, ProgUnavail)
		return ProgUnavail
	}
	h, ok := p.vers[c.Vers]
	if !ok {
		writeProgMismatch(w, c.XID, p.low, p.high)
		return ProgMismatch
	}
	writeAccepted(w, c.XID, Success)
	stat := s.serve(ctx, h, c, w)
	switch stat {
	case Success:
		if w.Len() < bodyOff {
			s.log.Error("rpc: handler truncated the reply header", "prog", c.Prog, "vers", c.Vers, "proc", c.Proc)
			stat = SystemErr
			writeAccepted(w, c.XID, stat)
		}
	case ProgMismatch:
		writeProgMismatch(w, c.XID, p.low, p.high)
	case ProgUnavail, ProcUnavail, GarbageArgs, SystemErr:
		writeAccepted(w, c.XID, stat)
	default:
		if a, ok := stat.authDenial(); ok {
			writeAuthError(w, c.XID, a)
			break
		}
		s.log.Error("rpc: handler returned an invalid accept status", "prog", c.Prog, "vers", c.Vers, "proc", c.Proc, "stat", uint32(stat))
		stat = SystemErr
		writeAccepted(w, c.XID, stat)
	}
	return stat
}

// serve runs the handler, turning a panic into SYSTEM_ERR.
func (s *Server) serve(ctx context.Context, h Handler, c *Call, w *xdr.Writer) (stat AcceptStat) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("rpc: handler panicked", "prog", c.Prog, "vers", c.Vers, "proc", c.Proc,
				"remote", addrString(c.Remote), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			stat = SystemErr
		}
	}()
	return h.ServeRPC(ctx, c, w)
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// Shutdown stops all listeners, closes all connections and waits for
// in-flight handlers to return (their contexts are cancelled) or for ctx
// to end, whichever is first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	for pc := range s.packets {
		pc.Close()
	}
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.cancel()

	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rpc: shutdown: waiting for handlers: %w", ctx.Err())
	}
}

// track registers a serving resource; it fails once the server is closed.
func (s *Server) track(add func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	add()
	s.handlers.Add(1)
	return true
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
