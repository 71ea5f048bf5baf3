package replica

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Liveness of the journal's TCP connection. A session over a link that
// went dead (a cut cable, a peer that lost power) would otherwise stay
// "connected" until TCP gives up retransmitting, about 15 minutes: the
// master would keep waiting for acknowledgements of sync writes, and the
// standby for records. With these, a silent peer ends the session within
// a few seconds, idle or not, and the master decides what to do without
// its standby (see appliance: planSync).
const (
	// userTimeout: data unacknowledged this long ends the connection
	// (TCP_USER_TIMEOUT; it also bounds keepalive probing).
	userTimeout = 6 * time.Second
	// keepIdle, keepInterval, keepCount: an idle connection is probed
	// after keepIdle, every keepInterval, and ends after keepCount
	// unanswered probes.
	keepIdle     = 2 * time.Second
	keepInterval = time.Second
	keepCount    = 4
)

func keepAlive() net.KeepAliveConfig {
	return net.KeepAliveConfig{Enable: true, Idle: keepIdle, Interval: keepInterval, Count: keepCount}
}

// setUserTimeout is a net.Dialer / net.ListenConfig Control function that
// sets TCP_USER_TIMEOUT (inherited by accepted connections).
func setUserTimeout(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(userTimeout/time.Millisecond))
	}); err != nil {
		return err
	}
	return serr
}

// liveDialer dials the master with the liveness options.
func liveDialer() *net.Dialer {
	return &net.Dialer{KeepAliveConfig: keepAlive(), Control: setUserTimeout}
}

// liveListenConfig listens for standbys with the liveness options.
func liveListenConfig() *net.ListenConfig {
	return &net.ListenConfig{KeepAliveConfig: keepAlive(), Control: setUserTimeout}
}
