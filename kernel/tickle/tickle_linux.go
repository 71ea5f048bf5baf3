package tickle

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Connections returns the established TCP connections to vip on the given
// ports (all ports if none) in the calling thread's network namespace,
// from /proc/thread-self/net/tcp and tcp6. Call it inside netns.Do to look
// into another namespace.
func Connections(vip netip.Addr, ports []uint16) ([]Conn, error) {
	if !vip.IsValid() {
		return nil, errors.New("tickle: connections: invalid VIP")
	}
	var out []Conn
	for _, name := range []string{"tcp", "tcp6"} {
		path := "/proc/thread-self/net/" + name
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) && name == "tcp6" {
			continue // IPv6 disabled
		}
		if err != nil {
			return nil, fmt.Errorf("tickle: connections: %w", err)
		}
		conns, err := ParseProcNet(data, vip, ports)
		if err != nil {
			return nil, fmt.Errorf("tickle: connections from %s: %w", path, err)
		}
		out = append(out, conns...)
	}
	return out, nil
}

// Tickle sends tickle ACKs for conns from the VIP side, count rounds
// Interval apart, and resets every connection whose client answers (see
// the package comment). It returns early once all have been reset; the
// error is only about sockets or ctx. It needs CAP_NET_RAW and runs in the
// calling thread's network namespace, which must route to the clients
// (normally the one that now holds the VIP).
func Tickle(ctx context.Context, conns []Conn, count int) (Report, error) {
	k := newKiller(conns)
	for _, c := range k.order {
		if !c.VIP.Addr().Is4() || !c.Client.Addr().Is4() {
			return Report{}, fmt.Errorf("tickle: %v: only IPv4 connections can be tickled", c)
		}
	}
	if k.done() || count <= 0 {
		return k.report(), nil
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return Report{}, fmt.Errorf("tickle: raw socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
		unix.Close(fd)
		return Report{}, fmt.Errorf("tickle: raw socket IP_HDRINCL: %w", err)
	}
	f := os.NewFile(uintptr(fd), "tickle-raw")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return Report{}, fmt.Errorf("tickle: raw socket: %w", err)
	}
	send := func(s segment) error {
		p, err := buildPacket(s)
		if err != nil {
			return err
		}
		to := &unix.SockaddrInet4{Addr: s.Dst.Addr().As4()}
		var serr error
		if err := rc.Write(func(fd uintptr) bool {
			serr = unix.Sendto(int(fd), p, 0, to)
			return serr != unix.EAGAIN
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("tickle: send %v->%v flags %#x: %w", s.Src, s.Dst, s.Flags, serr)
		}
		return nil
	}

	buf := make([]byte, 256) // headers are all we need; the rest is truncated
	for round := 0; round < count && !k.done(); round++ {
		for _, s := range k.tickles() {
			if err := send(s); err != nil {
				return k.report(), err
			}
		}
		// Read answers until the next round (one extra Interval after the
		// last round, for the last answers).
		next := time.Now().Add(Interval)
		for !k.done() {
			if err := ctx.Err(); err != nil {
				return k.report(), fmt.Errorf("tickle: %w", err)
			}
			dl := next
			if d, ok := ctx.Deadline(); ok && d.Before(dl) {
				dl = d
			}
			if err := f.SetReadDeadline(dl); err != nil {
				return k.report(), fmt.Errorf("tickle: raw socket deadline: %w", err)
			}
			n, err := f.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if time.Now().Before(next) {
					continue // ctx deadline: reported at the top
				}
				break
			}
			if err != nil {
				return k.report(), fmt.Errorf("tickle: read raw socket: %w", err)
			}
			seg, err := parsePacket(buf[:n])
			if err != nil {
				continue // not for us
			}
			if rst, ok := k.observe(seg); ok {
				if err := send(rst); err != nil {
					return k.report(), err
				}
			}
		}
	}
	return k.report(), nil
}
