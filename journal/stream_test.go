package journal

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ftnas/appliance/fileid"
)

// memApplier applies records into memory and keeps its position there.
type memApplier struct {
	mu      sync.Mutex
	pos     Position
	applied []Record
	commits int
	changed chan struct{}
	onApply func(rec Record, f Fetcher) error // optional
}

func newMemApplier() *memApplier { return &memApplier{changed: make(chan struct{})} }

func (a *memApplier) Position() (Position, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pos, nil
}

func (a *memApplier) Apply(ctx context.Context, rec Record, f Fetcher) error {
	if a.onApply != nil {
		if err := a.onApply(rec, f); err != nil {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.applied = append(a.applied, rec)
	return nil
}

func (a *memApplier) Commit(pos Position) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pos = pos
	a.commits++
	close(a.changed)
	a.changed = make(chan struct{})
	return nil
}

// waitSeq waits until the applier committed seq.
func (a *memApplier) waitSeq(t *testing.T, seq uint64) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		a.mu.Lock()
		pos, ch := a.pos, a.changed
		a.mu.Unlock()
		if pos.Seq >= seq {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("timed out waiting for seq %d; position %+v", seq, pos)
		}
	}
}

// checkExactlyOnce checks the applier applied 1..n, each once, in order.
func (a *memApplier) checkExactlyOnce(t *testing.T, n uint64) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if uint64(len(a.applied)) != n {
		t.Fatalf("applied %d records, want %d", len(a.applied), n)
	}
	for i, r := range a.applied {
		if r.Seq != uint64(i+1) || r.Size != uint64(i+1) {
			t.Fatalf("applied[%d] is seq %d size %d: gap or duplicate", i, r.Seq, r.Size)
		}
	}
}

// fillLog appends records whose Size is their expected seq.
func fillLog(t *testing.T, l *Log, from, to uint64) {
	t.Helper()
	var recs []Record
	for i := from; i <= to; i++ {
		recs = append(recs, rec(1, i))
	}
	if last, err := l.Append(context.Background(), recs...); err != nil || last != to {
		t.Fatalf("Append = %d, %v; want %d", last, err, to)
	}
}

func newShipper(t *testing.T, l *Log, f func(*ShipperConfig)) *Shipper {
	t.Helper()
	cfg := ShipperConfig{Log: l, ClusterID: "c1", NodeID: "a", Logger: quietLogger()}
	if f != nil {
		f(&cfg)
	}
	s, err := NewShipper(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newReceiver(t *testing.T, a Applier, f func(*ReceiverConfig)) *Receiver {
	t.Helper()
	cfg := ReceiverConfig{ClusterID: "c1", NodeID: "b", Applier: a, Logger: quietLogger()}
	if f != nil {
		f(&cfg)
	}
	r, err := NewReceiver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// session runs one shipper and one receiver session over a pipe.
type session struct {
	cancel     context.CancelFunc
	shipConn   net.Conn
	recvConn   net.Conn
	shipErr    chan error
	recvErr    chan error
	shipResult error
	recvResult error
	ended      bool
}

func startSession(s *Shipper, r *Receiver) *session {
	ctx, cancel := context.WithCancel(context.Background())
	a, b := net.Pipe()
	ss := &session{cancel: cancel, shipConn: a, recvConn: b, shipErr: make(chan error, 1), recvErr: make(chan error, 1)}
	go func() { ss.shipErr <- s.Serve(ctx, a) }()
	go func() { ss.recvErr <- r.Serve(ctx, b) }()
	return ss
}

// wait waits for both ends to return.
func (ss *session) wait(t *testing.T) (shipErr, recvErr error) {
	t.Helper()
	if ss.ended {
		return ss.shipResult, ss.recvResult
	}
	ss.ended = true
	timeout := time.After(20 * time.Second)
	for range 2 {
		select {
		case ss.shipResult = <-ss.shipErr:
		case ss.recvResult = <-ss.recvErr:
		case <-timeout:
			t.Fatal("session did not end")
		}
	}
	ss.cancel()
	return ss.shipResult, ss.recvResult
}

func (ss *session) stop(t *testing.T) {
	t.Helper()
	ss.cancel()
	ss.wait(t)
}

func TestStreamShipAndTrim(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true})
	if err := l.SetEpoch(2); err != nil {
		t.Fatal(err)
	}
	fillLog(t, l, 1, 100)
	a := newMemApplier()
	s := newShipper(t, l, func(c *ShipperConfig) { c.BatchRecords = 7 })
	r := newReceiver(t, a, func(c *ReceiverConfig) { c.Window = 2 })
	ss := startSession(s, r)
	defer ss.stop(t)

	a.waitSeq(t, 100)
	// Live: records appended while connected arrive too.
	fillLog(t, l, 101, 150)
	a.waitSeq(t, 150)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.WaitAcked(ctx, 150); err != nil {
		t.Fatalf("WaitAcked: %v", err)
	}
	a.checkExactlyOnce(t, 150)
	pos, _ := a.Position()
	if pos != (Position{LogID: l.ID(), Seq: 150, Epoch: 2}) {
		t.Fatalf("position %+v", pos)
	}
	// Acknowledged records are trimmed.
	for l.First() != 151 {
		select {
		case <-l.Changed():
		case <-ctx.Done():
			t.Fatalf("log not trimmed: first %d", l.First())
		}
	}
	st := s.Status()
	if !st.Connected || st.Peer != "b" || st.Acked != 150 || st.Sent != 150 {
		t.Fatalf("shipper status %+v", st)
	}
	rst := r.Status()
	if !rst.Connected || rst.Peer != "a" || rst.Position.Seq != 150 || rst.Applied != 150 || rst.LastTime != 1 {
		t.Fatalf("receiver status %+v", rst)
	}
	a.mu.Lock()
	commits := a.commits
	a.mu.Unlock()
	if commits < 150/7 || commits > 150 {
		t.Errorf("%d commits for 150 records in batches of 7", commits)
	}
	ss.stop(t)
	if !errors.Is(ss.shipResult, context.Canceled) || !errors.Is(ss.recvResult, context.Canceled) {
		t.Fatalf("ends after cancel: %v / %v", ss.shipResult, ss.recvResult)
	}
	if s.Status().Connected || r.Status().Connected {
		t.Fatal("still connected after the session ended")
	}
}

// TestStreamResume breaks sessions at awkward moments — records applied but
// not acknowledged, batches queued but not applied — and checks that every
// record is applied exactly once, in order.
func TestStreamResume(t *testing.T) {
	const n = 300
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true})
	fillLog(t, l, 1, n)
	a := newMemApplier()
	s := newShipper(t, l, func(c *ShipperConfig) { c.BatchRecords = 5 })
	r := newReceiver(t, a, func(c *ReceiverConfig) { c.Window = 4 })

	var mu sync.Mutex
	var cur *session
	breakAt := map[uint64]string{37: "receiver", 111: "shipper", 112: "shipper", 200: "receiver", 283: "shipper"}
	a.onApply = func(rec Record, f Fetcher) error {
		mu.Lock()
		defer mu.Unlock()
		switch breakAt[rec.Seq] {
		case "receiver": // cut after applying, before the commit and ack
			cur.recvConn.Close()
		case "shipper": // cut the shipper's end with batches in flight
			cur.shipConn.Close()
		}
		delete(breakAt, rec.Seq)
		return nil
	}
	sessions := 0
	for {
		mu.Lock()
		cur = startSession(s, r)
		ss := cur
		mu.Unlock()
		sessions++
		pos, _ := a.Position()
		if pos.Seq == n {
			ss.stop(t)
			break
		}
		// Wait for this session to break, or for everything to be applied.
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				a.mu.Lock()
				p, ch := a.pos, a.changed
				a.mu.Unlock()
				if p.Seq == n {
					return
				}
				select {
				case <-ch:
				case err := <-ss.shipErr:
					ss.shipErr <- err
					return
				case err := <-ss.recvErr:
					ss.recvErr <- err
					return
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("session stuck")
		}
		ss.stop(t)
		if sessions > 20 {
			t.Fatal("too many sessions")
		}
	}
	a.checkExactlyOnce(t, n)
	if sessions < 5 {
		t.Fatalf("only %d sessions: the breaks did not happen", sessions)
	}
	if len(breakAt) != 0 {
		t.Fatalf("breaks not reached: %v", breakAt)
	}
	if err := s.WaitAcked(context.Background(), n); err != nil {
		t.Fatal(err)
	}
}

func TestStreamEpochFencing(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true})
	if err := l.SetEpoch(3); err != nil {
		t.Fatal(err)
	}
	fillLog(t, l, 1, 5)
	a := newMemApplier()
	a.pos = Position{Epoch: 5} // this standby has seen epoch 5: a newer master exists
	s := newShipper(t, l, nil)
	r := newReceiver(t, a, nil)
	shipErr, recvErr := startSession(s, r).wait(t)
	if !errors.Is(shipErr, ErrFenced) || !errors.Is(recvErr, ErrFenced) {
		t.Fatalf("stale shipper: shipper %v, receiver %v; want ErrFenced on both", shipErr, recvErr)
	}
	var pe *PeerError
	if !errors.As(shipErr, &pe) || pe.Code != CodeFenced {
		t.Fatalf("shipper was not told: %v", shipErr)
	}
	if len(a.applied) != 0 {
		t.Fatalf("a fenced shipper's records were applied: %v", a.applied)
	}

	// A shipper with a higher epoch is fine: the receiver raises its own,
	// durably, before answering.
	if err := l.SetEpoch(9); err != nil {
		t.Fatal(err)
	}
	ss := startSession(s, r)
	a.waitSeq(t, 5)
	ss.stop(t)
	if pos, _ := a.Position(); pos.Epoch != 9 {
		t.Fatalf("receiver epoch %d after a shipper at 9", pos.Epoch)
	}
}

func TestStreamRefusals(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true})
	fillLog(t, l, 1, 10)
	s := newShipper(t, l, nil)
	cases := []struct {
		name     string
		pos      Position
		cluster  string
		wantShip error
		wantCode ErrCode
	}{
		{"other cluster", Position{}, "c2", ErrWrongCluster, CodeCluster},
		{"other log", Position{LogID: l.ID() + 1, Seq: 3}, "c1", ErrResync, CodeResync},
		{"ahead of the log", Position{LogID: l.ID(), Seq: 11}, "c1", ErrResync, CodeResync},
	}
	for _, c := range cases {
		a := newMemApplier()
		a.pos = c.pos
		r := newReceiver(t, a, func(cfg *ReceiverConfig) { cfg.ClusterID = c.cluster })
		shipErr, recvErr := startSession(s, r).wait(t)
		var pe *PeerError
		if c.cluster != "c1" {
			// The receiver refuses first, so the shipper hears it.
			if !errors.As(shipErr, &pe) || pe.Code != c.wantCode {
				t.Errorf("%s: shipper %v", c.name, shipErr)
			}
			if !errors.Is(recvErr, c.wantShip) {
				t.Errorf("%s: receiver %v", c.name, recvErr)
			}
		} else {
			if !errors.Is(shipErr, c.wantShip) {
				t.Errorf("%s: shipper %v", c.name, shipErr)
			}
			if !errors.As(recvErr, &pe) || pe.Code != c.wantCode || !errors.Is(recvErr, c.wantShip) {
				t.Errorf("%s: receiver %v", c.name, recvErr)
			}
		}
		if len(a.applied) != 0 {
			t.Errorf("%s: applied %d records", c.name, len(a.applied))
		}
	}

	// A fresh standby after records were trimmed needs a resync.
	if err := l.Trim(4); err != nil {
		t.Fatal(err)
	}
	a := newMemApplier()
	shipErr, recvErr := startSession(s, newReceiver(t, a, nil)).wait(t)
	if !errors.Is(shipErr, ErrResync) || !errors.Is(recvErr, ErrResync) || !strings.Contains(shipErr.Error(), "log starts at 5") {
		t.Fatalf("fresh standby after a trim: %v / %v", shipErr, recvErr)
	}
}

func TestStreamApplyFailure(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true})
	fillLog(t, l, 1, 10)
	a := newMemApplier()
	a.onApply = func(rec Record, f Fetcher) error {
		if rec.Seq == 6 {
			return errors.New("disk full")
		}
		return nil
	}
	s := newShipper(t, l, nil)
	shipErr, recvErr := startSession(s, newReceiver(t, a, nil)).wait(t)
	var pe *PeerError
	if !errors.As(shipErr, &pe) || pe.Code != CodeApply || !strings.Contains(pe.Msg, "disk full") {
		t.Fatalf("shipper: %v", shipErr)
	}
	if recvErr == nil || !strings.Contains(recvErr.Error(), "record 6 (truncate): disk full") {
		t.Fatalf("receiver: %v", recvErr)
	}
	if pos, _ := a.Position(); pos.Seq != 5 {
		t.Fatalf("position %d after failing at 6; want the 5 applied ones committed", pos.Seq)
	}
	a.onApply = nil
	ss := startSession(s, newReceiver(t, a, nil))
	a.waitSeq(t, 10)
	ss.stop(t)
	a.checkExactlyOnce(t, 10)
}

// fakeSource serves one file from memory.
type fakeSource struct {
	data  []byte
	calls int
	mu    sync.Mutex
	// reuse: each reply's blocks lie in a buffer of their own, which the
	// reply's release overwrites (as the next read into a pooled buffer
	// would); released counts the calls.
	reuse    bool
	released int
}

func (f *fakeSource) Fetch(ctx context.Context, q *FetchRequest) (*FetchReply, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	if q.File.ID != 7 {
		return nil, fmt.Errorf("file %s: %w", q.File, fileid.ErrStale)
	}
	p := &FetchReply{What: q.What, Attr: Attr{Mode: ModeReg | 0o640, UID: 3, Size: uint64(len(f.data))}}
	if q.What&FetchXattrs != 0 {
		p.Xattrs = []Xattr{{Name: "user.a", Value: []byte("1")}}
	}
	if q.What&FetchData != 0 {
		var buf []byte
		if f.reuse {
			buf = make([]byte, MaxFetchData)
		}
		blocks, err := deltaBlocks(strings.NewReader(string(f.data)), uint64(len(f.data)), q, buf)
		if err != nil {
			return nil, err
		}
		p.Blocks = blocks
		if f.reuse {
			p.release = func() {
				for i := range buf {
					buf[i] = 'x'
				}
				f.mu.Lock()
				f.released++
				f.mu.Unlock()
			}
		}
	}
	return p, nil
}

func TestStreamFetch(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true})
	data := []byte(strings.Repeat("0123456789", 10000)) // more than directData: sent from where it lies
	src := &fakeSource{data: data, reuse: true}
	base := Record{Op: OpWrite, Share: 1, Time: 1}
	w1, w2 := base, base
	w1.File, w2.File = fileid.Stamp{ID: 7}, fileid.Stamp{ID: 8}
	if _, err := l.Append(context.Background(), w1, w2); err != nil {
		t.Fatal(err)
	}
	var got []byte
	var attr Attr
	var notFound error
	a := newMemApplier()
	a.onApply = func(rec Record, f Fetcher) error {
		ctx := context.Background()
		q := &FetchRequest{Share: rec.Share, File: rec.File, What: FetchAttr | FetchXattrs | FetchData, Len: MaxFetchData}
		if rec.File.ID == 7 {
			// A fetch its caller gives up on: its late reply is dropped,
			// the session goes on.
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := f.Fetch(cctx, q); !errors.Is(err, context.Canceled) {
				return fmt.Errorf("cancelled fetch: %v", err)
			}
		}
		p, err := f.Fetch(ctx, q)
		if rec.File.ID == 8 {
			notFound = err
			return nil
		}
		if err != nil {
			return err
		}
		attr = p.Attr
		for _, b := range p.Blocks {
			got = append(got, b.Data...)
		}
		if len(p.Xattrs) != 1 || p.Xattrs[0].Name != "user.a" {
			return fmt.Errorf("xattrs %v", p.Xattrs)
		}
		return nil
	}
	ss := startSession(newShipper(t, l, func(c *ShipperConfig) { c.Source = src }), newReceiver(t, a, nil))
	a.waitSeq(t, 2)
	ss.stop(t)
	if string(got) != string(data) || attr.Size != uint64(len(data)) || attr.UID != 3 {
		t.Fatalf("fetched %d bytes, attr %+v", len(got), attr)
	}
	// Each reply's buffer was given back, after it was sent (or the
	// overwritten bytes would have gone out).
	src.mu.Lock()
	released := src.released
	src.mu.Unlock()
	if released != 2 {
		t.Fatalf("%d replies' buffers given back, want 2 (the cancelled fetch's and the one read)", released)
	}
	if !errors.Is(notFound, ErrNotFound) {
		t.Fatalf("fetch of a missing file: %v", notFound)
	}

	// Without a source, a fetch fails with the shipper's reason.
	l2 := openLog(t, filepath.Join(t.TempDir(), "j2.db"), Options{NoSync: true})
	if _, err := l2.Append(context.Background(), w1); err != nil {
		t.Fatal(err)
	}
	a2 := newMemApplier()
	a2.onApply = func(rec Record, f Fetcher) error {
		_, err := f.Fetch(context.Background(), &FetchRequest{Share: 1, File: rec.File, What: FetchAttr})
		return err
	}
	shipErr, recvErr := startSession(newShipper(t, l2, nil), newReceiver(t, a2, nil)).wait(t)
	if recvErr == nil || !strings.Contains(recvErr.Error(), "no source") {
		t.Fatalf("fetch without a source: %v / %v", shipErr, recvErr)
	}
}

func TestStreamReplaced(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true})
	fillLog(t, l, 1, 3)
	a := newMemApplier()
	s := newShipper(t, l, nil)
	r := newReceiver(t, a, nil)
	first := startSession(s, r)
	a.waitSeq(t, 3)
	second := startSession(s, r) // a reconnect while the old session seems alive
	shipErr, recvErr := first.wait(t)
	if !errors.Is(shipErr, ErrReplaced) && !errors.Is(recvErr, ErrReplaced) {
		t.Fatalf("old session: %v / %v; want one end replaced", shipErr, recvErr)
	}
	fillLog(t, l, 4, 6)
	a.waitSeq(t, 6)
	second.stop(t)
	a.checkExactlyOnce(t, 6)
}

// rawPeer plays a misbehaving receiver by hand.
func TestShipperProtocolErrors(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true})
	if err := l.SetEpoch(2); err != nil {
		t.Fatal(err)
	}
	fillLog(t, l, 1, 4)
	s := newShipper(t, l, nil)
	hello := func(epoch uint64) *Hello {
		return &Hello{Role: RoleReceiver, ClusterID: "c1", NodeID: "x", Epoch: epoch, Window: 1}
	}
	cases := []struct {
		name  string
		msgs  []Message
		want  error
		wantS string
	}{
		{"higher epoch", []Message{hello(3)}, ErrFenced, "seen epoch 3"},
		{"not a hello", []Message{&Ack{Seq: 1}}, ErrProtocol, "expected the receiver's hello"},
		{"ack beyond sent", []Message{hello(2), &Ack{Seq: 9}}, ErrProtocol, "ack of 9"},
	}
	for _, c := range cases {
		a, b := net.Pipe()
		errc := make(chan error, 1)
		go func() { errc <- s.Serve(context.Background(), a) }()
		br := NewFrameReader(b)
		if m, err := ReadFrame(br); err != nil || m.Type() != MsgHello {
			t.Fatalf("%s: shipper hello: %v %v", c.name, m, err)
		}
		go func() {
			for _, m := range c.msgs {
				if WriteFrame(b, m) != nil {
					return
				}
			}
		}()
		// Read until the shipper tells us why it ends.
		var told *ErrorMsg
		for told == nil {
			m, err := ReadFrame(br)
			if err != nil {
				t.Fatalf("%s: %v before an error message", c.name, err)
			}
			told, _ = m.(*ErrorMsg)
		}
		err := <-errc
		b.Close()
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.wantS) {
			t.Errorf("%s: shipper returned %v", c.name, err)
		}
		if told.Code != codeOf(c.want) {
			t.Errorf("%s: told %v", c.name, told)
		}
	}
}

func TestReceiverWindowViolation(t *testing.T) {
	a := newMemApplier()
	block := make(chan struct{})
	a.onApply = func(Record, Fetcher) error { <-block; return nil }
	r := newReceiver(t, a, func(c *ReceiverConfig) { c.Window = 1 })
	x, y := net.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- r.Serve(context.Background(), x) }()
	go func() {
		WriteFrame(y, &Hello{Role: RoleShipper, ClusterID: "c1", NodeID: "m", LogID: 5, First: 1, Seq: 3})
		for i := uint64(1); i <= 3; i++ {
			r := rec(1, i)
			r.Seq = i
			if WriteFrame(y, &Records{Recs: []Record{r}}) != nil {
				return
			}
		}
	}()
	yr := NewFrameReader(y)
	var told *ErrorMsg
	for told == nil {
		m, err := ReadFrame(yr)
		if err != nil {
			t.Fatalf("%v before an error message", err)
		}
		told, _ = m.(*ErrorMsg)
	}
	close(block)
	err := <-errc
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "unacknowledged") || told.Code != CodeProtocol {
		t.Fatalf("receiver: %v, told %+v", err, told)
	}
}

func TestStreamTLS(t *testing.T) {
	certA, keyA, err := GenerateCert("node-a")
	if err != nil {
		t.Fatal(err)
	}
	certB, keyB, err := GenerateCert("node-b")
	if err != nil {
		t.Fatal(err)
	}
	certC, keyC, err := GenerateCert("node-c")
	if err != nil {
		t.Fatal(err)
	}
	fpA, err := Fingerprint(certA)
	if err != nil || len(fpA) != 64 {
		t.Fatalf("fingerprint %q, %v", fpA, err)
	}
	if fpB, _ := Fingerprint(certB); fpB == fpA {
		t.Fatal("two certificates with one fingerprint")
	}
	// The master (A) listens and accepts only B; B pins A.
	srvCfg, err := TLSConfig(certA, keyA, certB)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true})
	fillLog(t, l, 1, 50)
	s := newShipper(t, l, nil)
	accepted := make(chan error, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := c.(*tls.Conn)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := tc.HandshakeContext(ctx); err != nil {
					c.Close()
					accepted <- err
					return
				}
				accepted <- nil
				s.Serve(context.Background(), c)
			}()
		}
	}()

	dial := func(cert, key, peer []byte) (*tls.Conn, error) {
		cfg, err := TLSConfig(cert, key, peer)
		if err != nil {
			return nil, err
		}
		d := &tls.Dialer{Config: cfg}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			return nil, err
		}
		return c.(*tls.Conn), nil
	}

	// The right pair streams.
	c, err := dial(certB, keyB, certA)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; err != nil {
		t.Fatalf("server refused B: %v", err)
	}
	a := newMemApplier()
	r := newReceiver(t, a, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, c) }()
	a.waitSeq(t, 50)
	cancel()
	<-done
	a.checkExactlyOnce(t, 50)

	// A stranger (C) is refused by the master.
	if c, err := dial(certC, keyC, certA); err == nil {
		// TLS 1.3: the client finishes first; the refusal shows on read.
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if err == nil {
			t.Fatal("stranger could read")
		}
	}
	if err := <-accepted; !errors.Is(err, ErrPeerCert) {
		t.Fatalf("server accepted a stranger: %v", err)
	}
	// B refuses a master that is not the pinned one.
	if _, err := dial(certB, keyB, certC); !errors.Is(err, ErrPeerCert) {
		t.Fatalf("client accepted the wrong master: %v", err)
	}
	<-accepted // the server side of the refused handshake

	if _, err := TLSConfig(certA, keyB, certB); err == nil {
		t.Fatal("TLSConfig accepted a key that is not the certificate's")
	}
	if _, err := TLSConfig(certA, keyA, []byte("junk")); err == nil || !strings.Contains(err.Error(), "peer certificate") {
		t.Fatalf("TLSConfig with a bad peer certificate: %v", err)
	}
	if _, _, err := GenerateCert("bad id"); err == nil {
		t.Fatal("GenerateCert accepted a node ID with a space")
	}
}

// TestStreamHandOff: a shipper whose receiver acknowledged its whole log
// ends the session with ErrHandedOff, and the receiver learns it (the new
// master's proof that it has everything the old one logged); a *HandOff
// also brings the receiver its note.
func TestStreamHandOff(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cause error
		note  []byte
	}{
		{"plain", ErrHandedOff, nil},
		{"with a note", &HandOff{Note: []byte("generation 7")}, []byte("generation 7")},
		{"with an empty note", &HandOff{Note: nil}, []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true})
			fillLog(t, l, 1, 40)
			a := newMemApplier()
			s := newShipper(t, l, nil)
			r := newReceiver(t, a, nil)
			if s.EndSession(tc.cause) {
				t.Fatal("EndSession without a session reported one")
			}
			ss := startSession(s, r)
			defer ss.stop(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := s.WaitAcked(ctx, 40); err != nil {
				t.Fatalf("WaitAcked: %v", err)
			}
			if !s.EndSession(tc.cause) {
				t.Fatal("EndSession found no session")
			}
			shipErr, recvErr := ss.wait(t)
			if !errors.Is(shipErr, ErrHandedOff) {
				t.Errorf("shipper ended with %v, want ErrHandedOff", shipErr)
			}
			var pe *PeerError
			if !errors.Is(recvErr, ErrHandedOff) || !errors.As(recvErr, &pe) || pe.Code != CodeHandedOff {
				t.Fatalf("receiver ended with %v, want the shipper's ErrHandedOff", recvErr)
			}
			if !bytes.Equal(pe.Note, tc.note) || (pe.Note == nil) != (tc.note == nil) {
				t.Errorf("receiver got note %q, want %q", pe.Note, tc.note)
			}
			a.checkExactlyOnce(t, 40)
		})
	}
}

// TestStreamEpochMidSession: a log that takes a higher epoch while a
// standby follows it (its master promoted again without a new log) tells
// the receiver at once, with no record after it: the receiver's position
// names the new epoch, durably.
func TestStreamEpochMidSession(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true})
	if err := l.SetEpoch(3); err != nil {
		t.Fatal(err)
	}
	fillLog(t, l, 1, 5)
	a := newMemApplier()
	s := newShipper(t, l, nil)
	r := newReceiver(t, a, nil)
	ss := startSession(s, r)
	defer ss.stop(t)
	a.waitSeq(t, 5)
	if err := l.SetEpoch(7); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		a.mu.Lock()
		pos, ch := a.pos, a.changed
		a.mu.Unlock()
		if pos.Epoch == 7 {
			if pos.Seq != 5 || pos.LogID != l.ID() {
				t.Fatalf("position %+v after the epoch change", pos)
			}
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("the receiver's position stayed at epoch %d", pos.Epoch)
		}
	}
	if got := r.Status().Position.Epoch; got != 7 {
		t.Fatalf("receiver status epoch %d", got)
	}
	// Records go on after it.
	fillLog(t, l, 6, 8)
	a.waitSeq(t, 8)
}

// prefetchApplier is a memApplier that is also a Prefetcher: it notes the
// records shown to it and fetches over the session from there.
type prefetchApplier struct {
	*memApplier
	mu      sync.Mutex
	shown   map[uint64]bool
	fetched chan error
}

func (p *prefetchApplier) Prefetch(ctx context.Context, recs []Record, f Fetcher) {
	p.mu.Lock()
	for _, r := range recs {
		p.shown[r.Seq] = true
	}
	p.mu.Unlock()
	go func() {
		rep, err := f.Fetch(ctx, &FetchRequest{Share: 1, File: fileid.Stamp{ID: 7}, What: FetchAttr | FetchData, Len: 10})
		if err == nil && (len(rep.Blocks) != 1 || string(rep.Blocks[0].Data) != "0123456789") {
			err = fmt.Errorf("reply %+v", rep)
		}
		p.fetched <- err
	}()
}

// TestStreamPrefetch: a Prefetcher applier is shown every record before
// the record is applied, with a Fetcher that works while the batch waits.
func TestStreamPrefetch(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true})
	fillLog(t, l, 1, 20)
	a := &prefetchApplier{memApplier: newMemApplier(), shown: map[uint64]bool{}, fetched: make(chan error, 20)}
	a.onApply = func(rec Record, f Fetcher) error {
		a.mu.Lock()
		defer a.mu.Unlock()
		if !a.shown[rec.Seq] {
			return fmt.Errorf("record %d applied before it was shown to Prefetch", rec.Seq)
		}
		return nil
	}
	s := newShipper(t, l, func(c *ShipperConfig) { c.BatchRecords = 3; c.Source = &fakeSource{data: []byte("0123456789")} })
	ss := startSession(s, newReceiver(t, a, nil))
	defer ss.stop(t)
	a.waitSeq(t, 20)
	a.checkExactlyOnce(t, 20)
	if err := <-a.fetched; err != nil {
		t.Fatalf("fetch from Prefetch: %v", err)
	}
}

// TestStreamContinuedLog: a receiver that has the whole of log L reads on
// from the log that continues it (another node's, at a higher epoch) with
// no resync; one a record short of it, or past it, is told to resync.
func TestStreamContinuedLog(t *testing.T) {
	old := openLog(t, filepath.Join(t.TempDir(), "old.db"), Options{NoSync: true})
	fillLog(t, old, 1, 10)
	cont := openLog(t, filepath.Join(t.TempDir(), "new.db"), Options{NoSync: true, Continue: Continuation{ID: old.ID(), After: 10}})
	if err := cont.SetEpoch(5); err != nil {
		t.Fatal(err)
	}
	fillLog(t, cont, 11, 15)

	a := newMemApplier()
	a.pos = Position{LogID: old.ID(), Seq: 10, Epoch: 3}
	ss := startSession(newShipper(t, cont, nil), newReceiver(t, a, nil))
	a.waitSeq(t, 15)
	ss.stop(t)
	a.mu.Lock()
	applied, pos := a.applied, a.pos
	a.mu.Unlock()
	if len(applied) != 5 || applied[0].Seq != 11 || applied[0].Size != 11 || pos != (Position{LogID: old.ID(), Seq: 15, Epoch: 5}) {
		t.Fatalf("applied %d records from seq %d, position %+v; want 11..15 in log %x at epoch 5", len(applied), applied[0].Seq, pos, old.ID())
	}

	for _, seq := range []uint64{9, 16} {
		b := newMemApplier()
		b.pos = Position{LogID: old.ID(), Seq: seq, Epoch: 3}
		ss := startSession(newShipper(t, cont, func(c *ShipperConfig) { c.NoTrim = true }), newReceiver(t, b, nil))
		if shipErr, _ := ss.wait(t); !errors.Is(shipErr, ErrResync) {
			t.Errorf("receiver at seq %d of the continued log: shipper ended with %v, want ErrResync", seq, shipErr)
		}
	}
}
