package rpc

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// conn is one TCP connection.
type conn struct {
	nc            net.Conn
	remote, local net.Addr
	ctx           context.Context
	cancel        context.CancelFunc
	log           *slog.Logger
	names         nameCache
	sem           chan struct{} // one token per call read and not yet replied to
	calls         sync.WaitGroup

	// Replies are written by whichever handler finds no write in
	// progress; handlers finishing meanwhile queue their replies, and the
	// writer sends them all with one writev (flat combining).
	wmu     sync.Mutex
	writing bool
	queue   []*request
	spare   []*request
	iov     [][]byte
	broken  bool // a write failed: drop later replies
}

// Serve accepts TCP connections on ln and serves them until ln is closed
// or Shutdown is called; it then returns ErrServerClosed after Shutdown,
// or the accept error otherwise.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(func() { s.listeners[ln] = struct{}{} }) {
		ln.Close()
		return ErrServerClosed
	}
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		s.handlers.Done()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("rpc: accept failed; retrying", "addr", ln.Addr().String(), "err", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := &conn{nc: nc, remote: nc.RemoteAddr(), local: nc.LocalAddr(), sem: make(chan struct{}, s.opts.MaxInFlight)}
		c.log = s.log.With("remote", addrString(c.remote), "local", addrString(c.local))
		c.ctx, c.cancel = context.WithCancel(s.ctx)
		if !s.track(func() { s.conns[c] = struct{}{} }) {
			nc.Close()
			c.cancel()
			return ErrServerClosed
		}
		go s.serveConn(c)
	}
}

// serveConn reads records and hands them to a pool of worker goroutines
// that grows up to MaxInFlight and lives as long as the connection (so
// their stacks stay grown and no goroutine is started per call).
func (s *Server) serveConn(c *conn) {
	work := make(chan *request)
	defer func() {
		close(work)
		c.calls.Wait()
		c.cancel()
		c.nc.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.handlers.Done()
	}()
	c.log.Debug("rpc: connection opened")
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var hdr [4]byte
	workers := 0
	for {
		select {
		case c.sem <- struct{}{}:
		case <-c.ctx.Done():
			return
		}
		req := s.getRequest()
		rec, err := readRecord(br, &hdr, req.in, s.opts.MaxRecord)
		req.in = rec
		if err != nil {
			s.putRequest(req)
			<-c.sem
			switch {
			case errors.Is(err, io.EOF):
				// A peer that half-closed still gets its replies.
				c.log.Debug("rpc: connection closed by peer")
				return
			case errors.Is(err, net.ErrClosed) || c.ctx.Err() != nil:
				c.log.Debug("rpc: connection closed", "err", err)
			case errors.Is(err, syscall.ECONNRESET):
				c.log.Debug("rpc: connection reset by peer", "err", err)
			default:
				c.log.Warn("rpc: closing connection", "err", err)
			}
			c.nc.Close()
			return
		}
		c.calls.Add(1)
		select {
		case work <- req:
		default:
			if workers < s.opts.MaxInFlight {
				workers++
				go s.worker(c, req, work)
			} else {
				work <- req
			}
		}
	}
}

func (s *Server) worker(c *conn, req *request, work <-chan *request) {
	for ok := true; ok; req, ok = <-work {
		s.handleTCP(c, req)
	}
}

func (s *Server) handleTCP(c *conn, req *request) {
	o, err := s.process(c.ctx, req, &c.names, c.remote, c.local)
	switch o {
	case outcomeShort:
		c.log.Warn("rpc: closing connection: malformed record", "err", err)
		c.nc.Close()
		s.finish(c, req)
		return
	case outcomeNotCall:
		c.log.Debug("rpc: ignoring message", "err", err)
		s.finish(c, req)
		return
	}
	if err != nil {
		c.log.Debug("rpc: rejected call", "xid", req.call.XID, "err", err)
	}
	b := req.out.Bytes()
	putRecordMark(b, len(b)-markLen)
	s.send(c, req)
}

// finish releases a call's resources once its reply is written or dropped.
func (s *Server) finish(c *conn, req *request) {
	s.putRequest(req)
	<-c.sem
	c.calls.Done()
}

// send queues req's reply and, unless another handler is already writing,
// writes the queue until it is empty.
func (s *Server) send(c *conn, req *request) {
	c.wmu.Lock()
	c.queue = append(c.queue, req)
	if c.writing {
		c.wmu.Unlock()
		return
	}
	c.writing = true
	for len(c.queue) > 0 {
		batch := c.queue
		c.queue = c.spare[:0]
		broken := c.broken
		c.wmu.Unlock()

		var err error
		if !broken {
			err = s.writeBatch(c, batch)
		}
		for i, r := range batch {
			s.finish(c, r)
			batch[i] = nil
		}

		c.wmu.Lock()
		c.spare = batch[:0]
		if err != nil && !c.broken {
			c.broken = true
			if c.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				c.log.Warn("rpc: closing connection: writing reply failed", "err", err)
			}
			c.nc.Close()
		}
	}
	c.writing = false
	c.wmu.Unlock()
}

func (s *Server) writeBatch(c *conn, batch []*request) error {
	if s.opts.WriteTimeout > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	}
	if len(batch) == 1 {
		_, err := c.nc.Write(batch[0].out.Bytes())
		return err
	}
	iov := c.iov[:0]
	for _, r := range batch {
		iov = append(iov, r.out.Bytes())
	}
	c.iov = iov
	bufs := net.Buffers(iov)
	_, err := bufs.WriteTo(c.nc)
	clear(iov)
	return err
}
