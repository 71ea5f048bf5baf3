package rpc_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ftnas/appliance/nfs/rpc"
	"ftnas/appliance/nfs/rpc/rpctest"
	"ftnas/appliance/nfs/xdr"
)

const (
	testProg = 400100
	procNull = 0
	procEcho = 1 // replies with its args (an opaque)
)

// logSink is a slog.Handler that hands records to a channel so tests can
// wait for a log message instead of sleeping.
type logSink struct{ ch chan string }

func newLogSink() *logSink { return &logSink{ch: make(chan string, 256)} }

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	select {
	case l.ch <- b.String():
	default:
	}
	return nil
}
func (l *logSink) WithAttrs(attrs []slog.Attr) slog.Handler { return l }
func (l *logSink) WithGroup(string) slog.Handler            { return l }

// waitLog waits for a log line containing all of want.
func (l *logSink) waitLog(t *testing.T, want ...string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-l.ch:
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(m, w)
			}
			if ok {
				return m
			}
		case <-timeout:
			t.Fatalf("no log line containing %q", want)
		}
	}
}

func echo(ctx context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
	b := c.Args.Opaque(1 << 30)
	if c.Args.Err() != nil {
		return rpc.GarbageArgs
	}
	w.Opaque(b)
	return rpc.Success
}

func opaqueArg(b []byte) []byte {
	w := xdr.NewWriter(nil)
	w.Opaque(b)
	return w.Bytes()
}

type testServer struct {
	srv   *rpc.Server
	addr  string
	udp   string
	logs  *logSink
	serve chan error
}

func startServer(t *testing.T, o rpc.Options, register func(*rpc.Server)) *testServer {
	t.Helper()
	ts := &testServer{logs: newLogSink(), serve: make(chan error, 2)}
	if o.Log == nil {
		o.Log = slog.New(ts.logs)
	}
	ts.srv = rpc.NewServer(o)
	register(ts.srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr, ts.udp = ln.Addr().String(), pc.LocalAddr().String()
	go func() { ts.serve <- ts.srv.Serve(ln) }()
	go func() { ts.serve <- ts.srv.ServeUDP(pc) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for range 2 {
			if err := <-ts.serve; !errors.Is(err, rpc.ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		}
	})
	return ts
}

func dial(t *testing.T, network, addr string) *rpctest.Client {
	t.Helper()
	c, err := rpctest.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func registerEcho(s *rpc.Server) {
	h := rpc.HandlerFunc(func(ctx context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
		switch c.Proc {
		case procNull:
			return rpc.Success
		case procEcho:
			return echo(ctx, c, w)
		}
		return rpc.ProcUnavail
	})
	s.Register(testProg, 2, h)
	s.Register(testProg, 4, h)
}

func TestReplies(t *testing.T) {
	ts := startServer(t, rpc.Options{}, func(s *rpc.Server) {
		registerEcho(s)
		s.Register(testProg+1, 1, rpc.HandlerFunc(func(ctx context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
			w.Uint32(0xbad) // discarded for non-success
			switch c.Proc {
			case 1:
				return rpc.GarbageArgs
			case 2:
				return rpc.SystemErr
			case 3:
				return rpc.DenyAuth(rpc.AuthTooWeak)
			case 4:
				return rpc.ProgMismatch
			case 5:
				return rpc.AcceptStat(77) // invalid
			case 6:
				w.Truncate(0) // corrupts the header
				return rpc.Success
			}
			panic("handler bug")
		}))
	})
	type want struct {
		accepted  bool
		stat      uint32
		authStat  uint32
		low, high uint32
		body      []byte
	}
	tests := []struct {
		name string
		msg  []byte
		want want
	}{
		{"null", rpctest.EncodeCall(1, testProg, 2, procNull, rpctest.None, nil), want{accepted: true, stat: 0, body: []byte{}}},
		{"echo auth sys", rpctest.EncodeCall(2, testProg, 4, procEcho, rpctest.Sys("m", 1, 2, 3), opaqueArg([]byte("hi"))), want{accepted: true, body: opaqueArg([]byte("hi"))}},
		{"unknown program", rpctest.EncodeCall(3, 12345, 1, 0, rpctest.None, nil), want{accepted: true, stat: 1}},
		{"unknown version", rpctest.EncodeCall(4, testProg, 3, 0, rpctest.None, nil), want{accepted: true, stat: 2, low: 2, high: 4}},
		{"unknown procedure", rpctest.EncodeCall(5, testProg, 2, 99, rpctest.None, nil), want{accepted: true, stat: 3}},
		{"garbage args", rpctest.EncodeCall(6, testProg, 2, procEcho, rpctest.None, []byte{0, 0, 0, 9}), want{accepted: true, stat: 4}},
		{"rpc version", rpctest.EncodeCallVersion(7, 1, testProg, 2, 0, rpctest.None, nil), want{accepted: false, stat: 0, low: 2, high: 2}},
		{"bad flavor", rpctest.EncodeCall(8, testProg, 2, 0, rpctest.Cred{Flavor: 6}, nil), want{accepted: false, stat: 1, authStat: 5}},
		{"bad auth sys", rpctest.EncodeCall(9, testProg, 2, 0, rpctest.Cred{Flavor: 1, Body: []byte{0, 0, 0, 0}}, nil), want{accepted: false, stat: 1, authStat: 1}},
		{"handler garbage", rpctest.EncodeCall(10, testProg+1, 1, 1, rpctest.None, nil), want{accepted: true, stat: 4}},
		{"handler system err", rpctest.EncodeCall(11, testProg+1, 1, 2, rpctest.None, nil), want{accepted: true, stat: 5}},
		{"handler deny auth", rpctest.EncodeCall(12, testProg+1, 1, 3, rpctest.None, nil), want{accepted: false, stat: 1, authStat: 5}},
		{"handler prog mismatch", rpctest.EncodeCall(13, testProg+1, 1, 4, rpctest.None, nil), want{accepted: true, stat: 2, low: 1, high: 1}},
		{"handler invalid stat", rpctest.EncodeCall(14, testProg+1, 1, 5, rpctest.None, nil), want{accepted: true, stat: 5}},
		{"handler truncates header", rpctest.EncodeCall(15, testProg+1, 1, 6, rpctest.None, nil), want{accepted: true, stat: 5}},
		{"handler panics", rpctest.EncodeCall(16, testProg+1, 1, 7, rpctest.None, nil), want{accepted: true, stat: 5}},
		{"after panic", rpctest.EncodeCall(17, testProg, 2, procNull, rpctest.None, nil), want{accepted: true, stat: 0, body: []byte{}}},
	}
	for _, network := range []string{"tcp", "udp"} {
		addr := ts.addr
		if network == "udp" {
			addr = ts.udp
		}
		c := dial(t, network, addr)
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				if err := c.SendRaw(tt.msg); err != nil {
					t.Fatal(err)
				}
				rep, err := c.Recv()
				if err != nil {
					t.Fatal(err)
				}
				xid := binary.BigEndian.Uint32(tt.msg)
				if rep.XID != xid {
					t.Errorf("XID %d, want %d", rep.XID, xid)
				}
				got := want{accepted: rep.Accepted, stat: rep.Stat, authStat: rep.AuthStat, low: rep.Low, high: rep.High}
				if rep.Accepted && rep.Stat == 0 {
					got.body = rep.Body.Rest()
				}
				if rep.Accepted && rep.VerfFlavor != 0 {
					t.Errorf("verifier flavor %d, want AUTH_NONE", rep.VerfFlavor)
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("reply %+v, want %+v", got, tt.want)
				}
				if !rep.Accepted || rep.Stat != 0 {
					if rest := rep.Body.Remaining(); rest != 0 {
						t.Errorf("%d body bytes after a non-success reply", rest)
					}
				}
			})
		}
	}
	ts.logs.waitLog(t, "handler panicked", "panic=handler bug")
}

func TestCallFields(t *testing.T) {
	got := make(chan rpc.Call, 1)
	var unix rpc.AuthSys
	ts := startServer(t, rpc.Options{}, func(s *rpc.Server) {
		s.Register(testProg, 1, rpc.HandlerFunc(func(ctx context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
			if c.Unix != nil {
				unix = *c.Unix
				unix.GIDs = slices.Clone(unix.GIDs)
			}
			got <- *c
			return rpc.Success
		}))
	})
	c := dial(t, "tcp", ts.addr)
	if _, err := c.Result(testProg, 1, 3, rpctest.Sys("box", 1000, 1001, 5, 6), nil); err != nil {
		t.Fatal(err)
	}
	call := <-got
	if call.Prog != testProg || call.Vers != 1 || call.Proc != 3 || call.Flavor != rpc.FlavorSys {
		t.Errorf("call %+v", call)
	}
	if unix.Machine != "box" || unix.UID != 1000 || unix.GID != 1001 || !slices.Equal(unix.GIDs, []uint32{5, 6}) {
		t.Errorf("AuthSys %+v", unix)
	}
	if call.Remote.String() != c.Conn().LocalAddr().String() || call.Local.String() != ts.addr {
		t.Errorf("Remote %v Local %v, want %v %v", call.Remote, call.Local, c.Conn().LocalAddr(), ts.addr)
	}
}

func TestMultiFragmentCall(t *testing.T) {
	ts := startServer(t, rpc.Options{}, func(s *rpc.Server) { registerEcho(s) })
	c := dial(t, "tcp", ts.addr)
	payload := make([]byte, 100<<10)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	for _, fragSize := range []int{4, 7, 1000, 64 << 10} {
		msg := rpctest.EncodeCall(uint32(fragSize), testProg, 2, procEcho, rpctest.None, opaqueArg(payload))
		if _, err := c.Conn().Write(rpctest.Frame(msg, fragSize)); err != nil {
			t.Fatal(err)
		}
		rep, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if rep.XID != uint32(fragSize) || !rep.Accepted || rep.Stat != 0 {
			t.Fatalf("fragment size %d: reply %+v", fragSize, rep)
		}
		if b := rep.Body.Opaque(1 << 20); !slices.Equal(b, payload) {
			t.Fatalf("fragment size %d: echoed %d bytes differ", fragSize, len(b))
		}
	}
}

// expectClosed reads until the server closes the connection.
func expectClosed(t *testing.T, c *rpctest.Client) {
	t.Helper()
	c.Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadAll(c.Conn())
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("server did not close the connection")
	}
}

func TestMalformedRecordsCloseConnection(t *testing.T) {
	ts := startServer(t, rpc.Options{MaxRecord: 64 << 10}, func(s *rpc.Server) { registerEcho(s) })
	tests := []struct {
		name string
		send []byte
		half bool // close our write side after sending
		log  []string
	}{
		{"huge fragment", []byte{0x7f, 0xff, 0xff, 0xff}, false, []string{"closing connection", "over the 65536-byte limit"}},
		{"fragments over limit", slices.Concat([]byte{0, 0, 0xa0, 0}, make([]byte, 40<<10), []byte{0x80, 0, 0xa0, 0}), false, []string{"closing connection", "fragment 1 of 40960 bytes"}},
		{"truncated fragment", []byte{0x80, 0, 0, 100, 1, 2, 3, 4}, true, []string{"closing connection", "truncated fragment 0"}},
		{"truncated header", []byte{0x80, 0}, true, []string{"closing connection", "truncated header"}},
		{"record without xid", []byte{0x80, 0, 0, 2, 1, 2}, false, []string{"closing connection: malformed record", "no room for XID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, "tcp", ts.addr)
			// A call before the bad record is still answered.
			if _, err := c.Result(testProg, 2, procNull, rpctest.None, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Conn().Write(tt.send); err != nil {
				t.Fatal(err)
			}
			if tt.half {
				c.Conn().(*net.TCPConn).CloseWrite()
			}
			expectClosed(t, c)
			ts.logs.waitLog(t, tt.log...)
		})
	}
	// The server still serves new connections.
	c := dial(t, "tcp", ts.addr)
	if _, err := c.Result(testProg, 2, procNull, rpctest.None, nil); err != nil {
		t.Fatal(err)
	}
}

func TestHalfCloseStillGetsReplies(t *testing.T) {
	ts := startServer(t, rpc.Options{}, func(s *rpc.Server) { registerEcho(s) })
	c := dial(t, "tcp", ts.addr)
	for i := range 5 {
		if err := c.Send(uint32(i), testProg, 2, procEcho, rpctest.None, opaqueArg([]byte{byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	c.Conn().(*net.TCPConn).CloseWrite()
	seen := map[uint32]bool{}
	for range 5 {
		rep, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		seen[rep.XID] = true
	}
	if len(seen) != 5 {
		t.Fatalf("replies for %v", seen)
	}
	expectClosed(t, c)
}

func TestSlowCallDoesNotBlockFastCall(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan uint32, 4)
	ts := startServer(t, rpc.Options{}, func(s *rpc.Server) {
		s.Register(testProg, 1, rpc.HandlerFunc(func(ctx context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
			entered <- c.XID
			if c.Proc == 1 { // slow
				select {
				case <-release:
				case <-ctx.Done():
					return rpc.SystemErr
				}
			}
			w.Uint32(c.XID)
			return rpc.Success
		}))
	})
	c := dial(t, "tcp", ts.addr)
	if err := c.Send(100, testProg, 1, 1, rpctest.None, nil); err != nil {
		t.Fatal(err)
	}
	if x := <-entered; x != 100 {
		t.Fatalf("entered %d", x)
	}
	if err := c.Send(200, testProg, 1, 2, rpctest.None, nil); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if rep.XID != 200 || rep.Body.Uint32() != 200 {
		t.Fatalf("first reply XID %d, want the fast call 200", rep.XID)
	}
	close(release)
	rep, err = c.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if rep.XID != 100 || rep.Body.Uint32() != 100 {
		t.Fatalf("second reply XID %d, want the slow call 100", rep.XID)
	}
}

func TestReplyOrderFollowsCompletion(t *testing.T) {
	// Calls complete in the reverse of the order they were sent; each
	// reply must carry its own XID and result.
	const n = 8
	gates := make([]chan struct{}, n)
	for i := range gates {
		gates[i] = make(chan struct{})
	}
	entered := make(chan uint32, n)
	ts := startServer(t, rpc.Options{}, func(s *rpc.Server) {
		s.Register(testProg, 1, rpc.HandlerFunc(func(ctx context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
			i := c.Args.Uint32()
			entered <- c.XID
			select {
			case <-gates[i]:
			case <-ctx.Done():
				return rpc.SystemErr
			}
			w.Uint32(i * 10)
			return rpc.Success
		}))
	})
	c := dial(t, "tcp", ts.addr)
	for i := range uint32(n) {
		if err := c.Send(1000+i, testProg, 1, 0, rpctest.None, binary.BigEndian.AppendUint32(nil, i)); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		<-entered
	}
	for i := n - 1; i >= 0; i-- {
		close(gates[i])
		rep, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if rep.XID != 1000+uint32(i) {
			t.Fatalf("reply XID %d, want %d", rep.XID, 1000+i)
		}
		if v := rep.Body.Uint32(); v != uint32(i)*10 {
			t.Fatalf("XID %d carries result %d, want %d", rep.XID, v, i*10)
		}
	}
}

func TestPipelinedCalls(t *testing.T) {
	ts := startServer(t, rpc.Options{}, func(s *rpc.Server) { registerEcho(s) })
	c := dial(t, "tcp", ts.addr)
	const n = 500
	sendErr := make(chan error, 1)
	go func() {
		for i := range uint32(n) {
			body := binary.BigEndian.AppendUint32(nil, i)
			if err := c.Send(i, testProg, 2, procEcho, rpctest.Sys("m", i, i), opaqueArg(body)); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	seen := make(map[uint32]bool)
	for range n {
		rep, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		b := rep.Body.Opaque(4)
		if len(b) != 4 || binary.BigEndian.Uint32(b) != rep.XID {
			t.Fatalf("XID %d carries body %v", rep.XID, b)
		}
		if seen[rep.XID] {
			t.Fatalf("duplicate reply for XID %d", rep.XID)
		}
		seen[rep.XID] = true
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
}

func TestMaxInFlight(t *testing.T) {
	const limit = 2
	var active, peak atomic.Int32
	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	ts := startServer(t, rpc.Options{MaxInFlight: limit}, func(s *rpc.Server) {
		s.Register(testProg, 1, rpc.HandlerFunc(func(ctx context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
			a := active.Add(1)
			for p := peak.Load(); a > p && !peak.CompareAndSwap(p, a); p = peak.Load() {
			}
			entered <- struct{}{}
			<-release
			active.Add(-1)
			return rpc.Success
		}))
	})
	c := dial(t, "tcp", ts.addr)
	const n = 10
	for i := range uint32(n) {
		if err := c.Send(i, testProg, 1, 0, rpctest.None, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Release one call each time one starts: were the limit not enforced,
	// more than two would be running before the releases catch up.
	for range n {
		<-entered
		go func() { release <- struct{}{} }()
	}
	for range n {
		if _, err := c.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p > limit {
		t.Fatalf("%d calls ran at once, limit %d", p, limit)
	}
}

func TestShutdownCancelsAndWaits(t *testing.T) {
	entered := make(chan struct{})
	var returned atomic.Bool
	srv := rpc.NewServer(rpc.Options{})
	srv.Register(testProg, 1, rpc.HandlerFunc(func(ctx context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
		close(entered)
		<-ctx.Done()
		returned.Store(true)
		return rpc.SystemErr
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c := dial(t, "tcp", ln.Addr().String())
	if err := c.Send(1, testProg, 1, 0, rpctest.None, nil); err != nil {
		t.Fatal(err)
	}
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if !returned.Load() {
		t.Fatal("Shutdown returned before the in-flight handler")
	}
	if err := <-served; !errors.Is(err, rpc.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	expectClosed(t, c)
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln2); !errors.Is(err, rpc.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestShutdownTimeout(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	entered := make(chan struct{})
	srv := rpc.NewServer(rpc.Options{})
	srv.Register(testProg, 1, rpc.HandlerFunc(func(ctx context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
		close(entered)
		<-block // ignores ctx
		return rpc.Success
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	c := dial(t, "tcp", ln.Addr().String())
	if err := c.Send(1, testProg, 1, 0, rpctest.None, nil); err != nil {
		t.Fatal(err)
	}
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Shutdown(ctx); err == nil || !strings.Contains(err.Error(), "waiting for handlers") {
		t.Fatalf("Shutdown with a stuck handler: %v", err)
	}
}

func TestObserve(t *testing.T) {
	infos := make(chan rpc.CallInfo, 8)
	ts := startServer(t, rpc.Options{Observe: func(ci rpc.CallInfo) { infos <- ci }}, func(s *rpc.Server) { registerEcho(s) })
	c := dial(t, "tcp", ts.addr)
	args := opaqueArg([]byte("12345"))
	if _, err := c.Result(testProg, 2, procEcho, rpctest.None, args); err != nil {
		t.Fatal(err)
	}
	ci := <-infos
	if ci.Prog != testProg || ci.Vers != 2 || ci.Proc != procEcho || ci.Stat != rpc.Success || ci.Denied {
		t.Errorf("CallInfo %+v", ci)
	}
	if ci.InBytes != 40+len(args) || ci.OutBytes != 24+len(args) {
		t.Errorf("InBytes %d OutBytes %d, want %d %d", ci.InBytes, ci.OutBytes, 40+len(args), 24+len(args))
	}
	if ci.Duration <= 0 {
		t.Errorf("Duration %v", ci.Duration)
	}
	if _, err := c.Call(testProg, 2, 0, rpctest.Cred{Flavor: 3}, nil); err != nil {
		t.Fatal(err)
	}
	ci = <-infos
	if !ci.Denied || ci.Stat != rpc.DenyAuth(rpc.AuthTooWeak) {
		t.Errorf("denied CallInfo %+v", ci)
	}
}

func TestRegisterReplacesAndExtends(t *testing.T) {
	ts := startServer(t, rpc.Options{}, func(s *rpc.Server) {})
	c := dial(t, "tcp", ts.addr)
	rep, err := c.Call(testProg, 1, 0, rpctest.None, nil)
	if err != nil || !rep.Accepted || rep.Stat != uint32(rpc.ProgUnavail) {
		t.Fatalf("before Register: %+v %v", rep, err)
	}
	ret := func(v uint32) rpc.Handler {
		return rpc.HandlerFunc(func(ctx context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
			w.Uint32(v)
			return rpc.Success
		})
	}
	ts.srv.Register(testProg, 3, ret(3))
	ts.srv.Register(testProg, 1, ret(1))
	ts.srv.Register(testProg, 3, ret(33))
	for _, tc := range []struct{ vers, want uint32 }{{1, 1}, {3, 33}} {
		b, err := c.Result(testProg, tc.vers, 0, rpctest.None, nil)
		if err != nil || b.Uint32() != tc.want {
			t.Fatalf("vers %d: %v", tc.vers, err)
		}
	}
	rep, err = c.Call(testProg, 2, 0, rpctest.None, nil)
	if err != nil || rep.Stat != uint32(rpc.ProgMismatch) || rep.Low != 1 || rep.High != 3 {
		t.Fatalf("mismatch reply %+v %v", rep, err)
	}
}

// TestManyConnectionsMixedSizes checks that pooled buffers are never
// shared between calls in flight: every echoed payload must come back
// intact on its own XID, across connections and record sizes.
func TestManyConnectionsMixedSizes(t *testing.T) {
	ts := startServer(t, rpc.Options{MaxInFlight: 8}, func(s *rpc.Server) { registerEcho(s) })
	const conns, calls = 6, 150
	errs := make(chan error, conns)
	for ci := range conns {
		go func() {
			errs <- func() error {
				c, err := rpctest.Dial("tcp", ts.addr)
				if err != nil {
					return err
				}
				defer c.Close()
				payload := func(i int) []byte {
					n := (i * 7919 * (ci + 1)) % (70 << 10)
					b := make([]byte, n)
					for j := range b {
						b[j] = byte(i + j + ci)
					}
					return b
				}
				sent := make(chan error, 1)
				go func() {
					for i := range calls {
						if err := c.Send(uint32(i), testProg, 2, procEcho, rpctest.None, opaqueArg(payload(i))); err != nil {
							sent <- err
							return
						}
					}
					sent <- nil
				}()
				for range calls {
					rep, err := c.Recv()
					if err != nil {
						return err
					}
					if got := rep.Body.Opaque(1 << 20); !slices.Equal(got, payload(int(rep.XID))) {
						return fmt.Errorf("conn %d XID %d: payload of %d bytes corrupted", ci, rep.XID, len(got))
					}
				}
				return <-sent
			}()
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
