//go:build linux

package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// UDP is the real Transport: one UDP socket per path. Each datagram is
// sent on its path's socket to the path's peer; datagrams from any other
// source address are dropped and counted.
type UDP struct {
	paths []UDPPath
	conns []*net.UDPConn
	ch    chan Packet
	log   *slog.Logger
	wg    sync.WaitGroup
	done  chan struct{}
	once  sync.Once

	received, foreign, sendErrors, readErrors, queueDrops atomic.Uint64
}

// NewUDP binds one socket per path and starts receiving.
func NewUDP(paths []UDPPath, log *slog.Logger) (*UDP, error) {
	if len(paths) == 0 || len(paths) > MaxPaths {
		return nil, fmt.Errorf("heartbeat: udp: %d paths: want 1..%d", len(paths), MaxPaths)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u := &UDP{paths: append([]UDPPath(nil), paths...), ch: make(chan Packet, 64), log: log, done: make(chan struct{})}
	for i, p := range paths {
		if err := p.validate(i); err != nil {
			u.closeConns()
			return nil, err
		}
		c, err := listenFreebind(p.Local)
		if err != nil {
			u.closeConns()
			return nil, fmt.Errorf("heartbeat: udp path %d: listen %v: %w", i, p.Local, err)
		}
		u.conns = append(u.conns, c)
	}
	for i := range u.conns {
		u.wg.Add(1)
		go u.readLoop(i)
	}
	return u, nil
}

func (p UDPPath) validate(i int) error {
	switch {
	case !p.Local.IsValid():
		return fmt.Errorf("heartbeat: udp path %d: no local address", i)
	case !p.Peer.IsValid() || p.Peer.Port() == 0 || p.Peer.Addr().IsUnspecified():
		return fmt.Errorf("heartbeat: udp path %d: bad peer address %v", i, p.Peer)
	}
	return nil
}

func listenFreebind(local netip.AddrPort) (*net.UDPConn, error) {
	network := "udp4"
	if local.Addr().Is6() && !local.Addr().Is4In6() {
		network = "udp6"
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if network == "udp6" {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
			}
		})
		if err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("set freebind: %w", serr)
		}
		return nil
	}}
	pc, err := lc.ListenPacket(context.Background(), network, local.String())
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// LocalAddr returns the bound address of path i (useful with port 0).
func (u *UDP) LocalAddr(i int) netip.AddrPort {
	return u.conns[i].LocalAddr().(*net.UDPAddr).AddrPort()
}

func (u *UDP) readLoop(i int) {
	defer u.wg.Done()
	peer := u.paths[i].Peer.Addr().Unmap()
	buf := make([]byte, 2*MessageSize) // longer datagrams arrive truncated and fail Decode
	for {
		n, from, err := u.conns[i].ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			u.readErrors.Add(1)
			u.log.Debug("heartbeat: udp read", "path", i, "err", err)
			continue
		}
		if from.Addr().Unmap() != peer {
			u.foreign.Add(1)
			continue
		}
		u.received.Add(1)
		select {
		case u.ch <- Packet{Path: i, Data: append([]byte(nil), buf[:n]...)}:
		case <-u.done:
			return
		default:
			u.queueDrops.Add(1)
		}
	}
}

// Send implements Transport.
func (u *UDP) Send(path int, b []byte) error {
	if path < 0 || path >= len(u.conns) {
		return fmt.Errorf("heartbeat: udp: send on path %d: have %d paths", path, len(u.conns))
	}
	if _, err := u.conns[path].WriteToUDPAddrPort(b, u.paths[path].Peer); err != nil {
		u.sendErrors.Add(1)
		return fmt.Errorf("heartbeat: udp: send on path %d to %v: %w", path, u.paths[path].Peer, err)
	}
	return nil
}

// Packets implements Transport.
func (u *UDP) Packets() <-chan Packet { return u.ch }

// Stats returns the transport's counters.
func (u *UDP) Stats() UDPStats {
	return UDPStats{
		Received: u.received.Load(), Foreign: u.foreign.Load(), SendErrors: u.sendErrors.Load(),
		ReadErrors: u.readErrors.Load(), QueueDrops: u.queueDrops.Load(),
	}
}

func (u *UDP) closeConns() {
	for _, c := range u.conns {
		_ = c.Close()
	}
}

// Close implements Transport: it closes the sockets, waits for the
// readers and closes Packets.
func (u *UDP) Close() error {
	u.once.Do(func() {
		close(u.done)
		u.closeConns()
		u.wg.Wait()
		close(u.ch)
	})
	return nil
}
