package rpc

import (
	"errors"
	"net"
)

// ServeUDP serves calls arriving on pc, one datagram per call, until pc is
// closed or Shutdown is called; it then returns ErrServerClosed after
// Shutdown, or the read error otherwise. Calls are handled concurrently,
// at most Options.MaxInFlight at a time. There is no duplicate request
// cache: a retransmitted non-idempotent call is executed again.
func (s *Server) ServeUDP(pc net.PacketConn) error {
	if !s.track(func() { s.packets[pc] = struct{}{} }) {
		pc.Close()
		return ErrServerClosed
	}
	var calls chan struct{}
	defer func() {
		// Wait for in-flight calls: fill the semaphore.
		for range cap(calls) {
			calls <- struct{}{}
		}
		s.mu.Lock()
		delete(s.packets, pc)
		s.mu.Unlock()
		s.handlers.Done()
	}()
	calls = make(chan struct{}, s.opts.MaxInFlight)
	local := pc.LocalAddr()
	for {
		req := s.getRequest()
		if cap(req.in) < maxUDPDatagram {
			req.in = make([]byte, maxUDPDatagram)
		}
		n, remote, err := pc.ReadFrom(req.in[:maxUDPDatagram])
		if err != nil {
			s.putRequest(req)
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		req.in = req.in[:n]
		calls <- struct{}{}
		go s.handleUDP(pc, req, remote, local, calls)
	}
}

func (s *Server) handleUDP(pc net.PacketConn, req *request, remote, local net.Addr, calls chan struct{}) {
	defer func() {
		s.putRequest(req)
		<-calls
	}()
	o, err := s.process(s.ctx, req, nil, remote, local)
	if o == outcomeShort || o == outcomeNotCall {
		s.log.Debug("rpc: ignoring datagram", "remote", addrString(remote), "err", err)
		return
	}
	if err != nil {
		s.log.Debug("rpc: rejected call", "remote", addrString(remote), "xid", req.call.XID, "err", err)
	}
	b := req.out.Bytes()[markLen:]
	if len(b) > maxUDPDatagram {
		s.log.Warn("rpc: reply too big for UDP; dropped", "remote", addrString(remote), "xid", req.call.XID, "bytes", len(b))
		return
	}
	if _, err := pc.WriteTo(b, remote); err != nil && !s.isClosed() {
		s.log.Warn("rpc: sending UDP reply failed", "remote", addrString(remote), "xid", req.call.XID, "err", err)
	}
}
