package replica

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Both ends of a journal connection carry the liveness options: a dead
// link ends the session in seconds, not after TCP's 15 minutes.
func TestJournalConnLiveness(t *testing.T) {
	ln, err := liveListenConfig().Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	dialed, err := liveDialer().DialContext(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer dialed.Close()
	served, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer served.Close()
	for name, c := range map[string]net.Conn{"dialed": dialed, "accepted": served} {
		raw, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var ut, ka, idle, intvl, cnt int
		var gerr error
		if err := raw.Control(func(fd uintptr) {
			get := func(level, opt int) int {
				v, err := unix.GetsockoptInt(int(fd), level, opt)
				if err != nil && gerr == nil {
					gerr = err
				}
				return v
			}
			ut = get(unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
			ka = get(unix.SOL_SOCKET, unix.SO_KEEPALIVE)
			idle = get(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
			intvl = get(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
			cnt = get(unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
		}); err != nil {
			t.Fatal(err)
		}
		if gerr != nil {
			t.Fatal(gerr)
		}
		if ut != int(userTimeout/time.Millisecond) || ka != 1 || idle != int(keepIdle/time.Second) || intvl != int(keepInterval/time.Second) || cnt != keepCount {
			t.Errorf("%s: TCP_USER_TIMEOUT %d ms, keepalive %d idle %d s interval %d s count %d; want %v, on, %v, %v, %d",
				name, ut, ka, idle, intvl, cnt, userTimeout, keepIdle, keepInterval, keepCount)
		}
	}
}
