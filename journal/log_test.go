package journal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"ftnas/appliance/fileid"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openLog(t testing.TB, path string, opts Options) *Log {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// rec is a valid record whose File.ID and Size identify it in tests.
func rec(id, n uint64) Record {
	return Record{Op: OpTruncate, Share: 1, File: fileid.Stamp{ID: id, Gen: 1}, Size: n, Time: 1}
}

// waitFor polls cond (a real condition of the code under test) until it
// holds, failing after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

func TestLogAppendRead(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true, Now: func() time.Time { return time.Unix(0, 555) }})
	if l.First() != 1 || l.Last() != 0 || l.Depth() != 0 {
		t.Fatalf("empty log: first %d last %d depth %d", l.First(), l.Last(), l.Depth())
	}
	if recs, err := l.Read(1, 10); err != nil || len(recs) != 0 {
		t.Fatalf("Read on empty log = %v, %v", recs, err)
	}
	r := rec(1, 1)
	r.Seq, r.Epoch, r.Time = 99, 99, 0 // assigned by the log
	last, err := l.Append(context.Background(), r, rec(1, 2), rec(1, 3))
	if err != nil || last != 3 {
		t.Fatalf("Append = %d, %v; want 3", last, err)
	}
	recs, err := l.Read(1, 10)
	if err != nil || len(recs) != 3 {
		t.Fatalf("Read = %d records, %v", len(recs), err)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || r.Size != uint64(i+1) || r.Epoch != 0 {
			t.Errorf("record %d: %+v", i, r)
		}
	}
	if recs[0].Time != 555 || recs[1].Time != 1 {
		t.Errorf("times %d %d, want 555 (from Now) and 1 (given)", recs[0].Time, recs[1].Time)
	}
	if recs, _ := l.Read(2, 1); len(recs) != 1 || recs[0].Seq != 2 {
		t.Errorf("Read(2, 1) = %+v", recs)
	}
	if recs, _ := l.Read(4, 1); len(recs) != 0 {
		t.Errorf("Read past last = %+v", recs)
	}
	if _, err := l.Read(0, 1); err == nil {
		t.Error("Read(0) succeeded")
	}
	enc, err := l.ReadEncoded(1, 10, 1)
	if err != nil || len(enc) != 1 {
		t.Fatalf("ReadEncoded with a 1-byte limit = %d records, %v; want exactly 1", len(enc), err)
	}
	if seq, _ := EncodedSeq(enc[0]); seq != 1 {
		t.Errorf("encoded seq %d", seq)
	}
	if _, err := l.Append(context.Background(), Record{Op: OpTruncate}); err == nil || !strings.Contains(err.Error(), "record 1 of 1") {
		t.Errorf("invalid record: err = %v", err)
	}
	if _, err := l.Append(context.Background()); err == nil {
		t.Error("empty Append succeeded")
	}
	if l.Last() != 3 {
		t.Errorf("failed appends changed Last to %d", l.Last())
	}
}

func TestLogConcurrentOrder(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true, MaxBatch: 64})
	const writers, each = 8, 201
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			prev := uint64(0)
			for i := range each {
				// Mix single appends with small batches.
				n := 1 + i%3
				batch := make([]Record, n)
				for j := range batch {
					batch[j] = rec(uint64(w+1), uint64(i*3+j))
				}
				last, err := l.Append(context.Background(), batch...)
				if err != nil {
					errs <- err
					return
				}
				if last <= prev {
					errs <- fmt.Errorf("writer %d: last seq %d after %d", w, last, prev)
					return
				}
				prev = last
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := uint64(writers * each * 2) // each writer appends 1+2+3 records per 3 calls
	if l.Last() != want {
		t.Fatalf("Last = %d, want %d", l.Last(), want)
	}
	recs, err := l.Read(1, int(want)+1)
	if err != nil || uint64(len(recs)) != want {
		t.Fatalf("Read = %d records, %v", len(recs), err)
	}
	next := map[uint64]uint64{}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
		// Each writer's records appear in its own order, batches contiguous.
		if r.Size < next[r.File.ID] {
			t.Fatalf("writer %d: record %d after %d", r.File.ID, r.Size, next[r.File.ID])
		}
		next[r.File.ID] = r.Size + 1
	}
	st := l.Stats()
	if st.Appended != want || st.Commits == 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestLogGroupCommit(t *testing.T) {
	hold := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	opts := Options{NoSync: true, commitHook: func(n int) {
		mu.Lock()
		first := len(sizes) == 0
		sizes = append(sizes, n)
		mu.Unlock()
		if first {
			<-hold
		}
	}}
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), opts)
	results := make(chan uint64, 11)
	go func() {
		last, _ := l.Append(context.Background(), rec(1, 0))
		results <- last
	}()
	waitFor(t, "the first commit to start", func() bool { mu.Lock(); defer mu.Unlock(); return len(sizes) == 1 })
	for i := range 10 {
		go func() {
			last, _ := l.Append(context.Background(), rec(2, uint64(i)))
			results <- last
		}()
	}
	waitFor(t, "10 appends to queue", func() bool { return l.Depth() == 11 })
	close(hold)
	seen := map[uint64]bool{}
	for range 11 {
		seen[<-results] = true
	}
	if len(seen) != 11 || !seen[1] || !seen[11] {
		t.Fatalf("appenders got seqs %v, want 1..11 each once", seen)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 2 || sizes[1] != 10 {
		t.Fatalf("commits of %v requests, want [1 10]: the queued appends were not grouped", sizes)
	}
	if st := l.Stats(); st.Commits != 2 || st.Appended != 11 {
		t.Fatalf("stats %+v", st)
	}
}

// Enqueue returns once queued: records enqueued while the first commit is
// held are committed in their order, in one transaction, and Wait returns
// each one's last seq.
func TestLogEnqueue(t *testing.T) {
	hold := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	opts := Options{NoSync: true, MaxDepth: 6, commitHook: func(n int) {
		mu.Lock()
		first := len(sizes) == 0
		sizes = append(sizes, n)
		mu.Unlock()
		if first {
			<-hold
		}
	}}
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), opts)
	p1, err := l.TryEnqueue(rec(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first commit to start", func() bool { mu.Lock(); defer mu.Unlock(); return len(sizes) == 1 })
	p2, err := l.Enqueue(context.Background(), rec(2, 0), rec(3, 0))
	if err != nil {
		t.Fatal(err)
	}
	p3, err := l.TryEnqueue(rec(4, 0), rec(5, 0))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p2.Done():
		t.Fatal("second append done while the first commit is held")
	default:
	}
	if _, err := l.TryEnqueue(rec(6, 0), rec(7, 0)); !errors.Is(err, ErrFull) {
		t.Fatalf("TryEnqueue beyond MaxDepth: %v, want ErrFull", err)
	}
	close(hold)
	for i, want := range []struct {
		p    *Pending
		last uint64
	}{{p3, 5}, {p1, 1}, {p2, 3}} {
		if last, err := want.p.Wait(); err != nil || last != want.last {
			t.Errorf("wait %d: last %d, %v; want %d", i, last, err, want.last)
		}
	}
	recs, err := l.Read(1, 10)
	if err != nil || len(recs) != 5 {
		t.Fatalf("read %d records, %v; want 5", len(recs), err)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || r.File.ID != uint64(i+1) {
			t.Errorf("record %d: seq %d file %d", i, r.Seq, r.File.ID)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 2 || sizes[1] != 2 {
		t.Fatalf("commits of %v requests, want [1 2]", sizes)
	}
}

func TestLogReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	l, err := Open(path, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	id := l.ID()
	if id == 0 {
		t.Fatal("zero log ID")
	}
	if err := l.SetEpoch(4); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := l.Append(context.Background(), rec(1, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Trim(2); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), rec(1, 9)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}

	l = openLog(t, path, Options{})
	if l.ID() != id || l.Epoch() != 4 || l.First() != 3 || l.Last() != 5 || l.Depth() != 3 {
		t.Fatalf("reopened: id %x/%x epoch %d first %d last %d depth %d", l.ID(), id, l.Epoch(), l.First(), l.Last(), l.Depth())
	}
	recs, err := l.Read(3, 10)
	if err != nil || len(recs) != 3 || recs[0].Size != 2 || recs[2].Size != 4 || recs[0].Epoch != 4 {
		t.Fatalf("Read after reopen = %+v, %v", recs, err)
	}
	// Trim everything, reopen: numbering continues, never restarts.
	if err := l.Trim(5); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = openLog(t, path, Options{})
	if l.First() != 6 || l.Last() != 5 {
		t.Fatalf("reopened empty log: first %d last %d", l.First(), l.Last())
	}
	if last, err := l.Append(context.Background(), rec(1, 0)); err != nil || last != 6 {
		t.Fatalf("Append after full trim = %d, %v; want 6", last, err)
	}
	if _, err := l.Read(5, 1); !errors.Is(err, ErrTrimmed) {
		t.Fatalf("Read of a trimmed record: %v", err)
	}
}

func TestLogTrim(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true})
	for i := range 10 {
		if _, err := l.Append(context.Background(), rec(1, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Trim(4); err != nil {
		t.Fatal(err)
	}
	if l.First() != 5 || l.Depth() != 6 {
		t.Fatalf("after Trim(4): first %d depth %d", l.First(), l.Depth())
	}
	if _, err := l.Read(4, 1); !errors.Is(err, ErrTrimmed) || !strings.Contains(err.Error(), "first retained 5") {
		t.Fatalf("Read(4): %v", err)
	}
	if err := l.Trim(3); err != nil || l.First() != 5 {
		t.Fatalf("Trim below first: %v, first %d", err, l.First())
	}
	if err := l.Trim(11); err == nil || !strings.Contains(err.Error(), "beyond the last record 10") {
		t.Fatalf("Trim past last: %v", err)
	}
	if err := l.Trim(10); err != nil || l.Depth() != 0 || l.First() != 11 {
		t.Fatalf("Trim(10): %v, depth %d first %d", err, l.Depth(), l.First())
	}
	if _, err := l.Read(10, 1); !errors.Is(err, ErrTrimmed) {
		t.Fatalf("Read(10) after trimming all: %v", err)
	}
	if recs, err := l.Read(11, 1); err != nil || len(recs) != 0 {
		t.Fatalf("Read(11) = %v, %v", recs, err)
	}
	if st := l.Stats(); st.Trimmed != 10 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLogBackPressure(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true, MaxDepth: 3})
	if _, err := l.Append(context.Background(), rec(1, 0), rec(1, 1), rec(1, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.TryAppend(rec(1, 3)); !errors.Is(err, ErrFull) {
		t.Fatalf("TryAppend at MaxDepth: %v", err)
	}
	type result struct {
		last uint64
		err  error
	}
	held := make(chan result, 1)
	go func() {
		last, err := l.Append(context.Background(), rec(1, 3), rec(1, 4))
		held <- result{last, err}
	}()
	// A cancelled appender gives up with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan error, 1)
	go func() {
		_, err := l.Append(ctx, rec(2, 0))
		cancelled <- err
	}()
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled appender: %v", err)
	}
	select {
	case r := <-held:
		t.Fatalf("appender not held at MaxDepth: %+v", r)
	default:
	}
	if err := l.Trim(1); err != nil { // room for 1: still not enough for 2
		t.Fatal(err)
	}
	select {
	case r := <-held:
		t.Fatalf("appender of 2 let in with room for 1: %+v", r)
	default:
	}
	if err := l.Trim(2); err != nil {
		t.Fatal(err)
	}
	r := <-held
	if r.err != nil || r.last != 5 {
		t.Fatalf("released appender: %+v, want last 5", r)
	}
	if l.Depth() != 3 {
		t.Fatalf("depth %d", l.Depth())
	}
	// An append bigger than MaxDepth gets in when the log is empty.
	if err := l.Trim(5); err != nil {
		t.Fatal(err)
	}
	if last, err := l.TryAppend(rec(3, 0), rec(3, 1), rec(3, 2), rec(3, 3), rec(3, 4)); err != nil || last != 10 {
		t.Fatalf("oversized append into an empty log = %d, %v", last, err)
	}
	// Close releases a held appender with ErrClosed.
	go func() {
		_, err := l.Append(context.Background(), rec(4, 0))
		held <- result{0, err}
	}()
	l.Close()
	if r := <-held; !errors.Is(r.err, ErrClosed) {
		t.Fatalf("held appender at Close: %v", r.err)
	}
}

func TestLogEpoch(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true})
	if _, err := l.Append(context.Background(), rec(1, 0)); err != nil {
		t.Fatal(err)
	}
	if err := l.SetEpoch(7); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), rec(1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := l.SetEpoch(6); !errors.Is(err, ErrEpoch) {
		t.Fatalf("SetEpoch down: %v", err)
	}
	if err := l.SetEpoch(7); err != nil {
		t.Fatalf("SetEpoch same: %v", err)
	}
	recs, err := l.Read(1, 2)
	if err != nil || recs[0].Epoch != 0 || recs[1].Epoch != 7 || l.Epoch() != 7 {
		t.Fatalf("epochs %+v, %v, log epoch %d", recs, err, l.Epoch())
	}
}

func TestLogWait(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "j.db"), Options{NoSync: true})
	got := make(chan uint64, 1)
	go func() {
		last, _ := l.Wait(context.Background(), 0)
		got <- last
	}()
	if _, err := l.Append(context.Background(), rec(1, 0), rec(1, 1)); err != nil {
		t.Fatal(err)
	}
	if last := <-got; last != 2 {
		t.Fatalf("Wait = %d, want 2", last)
	}
	if last, err := l.Wait(context.Background(), 1); err != nil || last != 2 {
		t.Fatalf("Wait(1) with records past it = %d, %v", last, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Wait(ctx, 2); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Wait: %v", err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := l.Wait(context.Background(), 2)
		errc <- err
	}()
	l.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait at Close: %v", err)
	}
}

func TestLogOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing", "j.db"), Options{}); err == nil || !strings.Contains(err.Error(), "journal: open") {
		t.Fatalf("Open in a missing dir: %v", err)
	}
}

func benchAppend(b *testing.B, noSync bool) {
	l := openLog(b, filepath.Join(b.TempDir(), "j.db"), Options{NoSync: noSync, MaxDepth: 1 << 40})
	r := Record{Op: OpWrite, Share: 1, File: fileid.Stamp{ID: 12345, Gen: 1}, Off: 4096, Len: 65536}
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(context.Background(), r); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := l.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(st.Appended)/float64(max(st.Commits, 1)), "records/commit")
}

// BenchmarkAppend: 64×GOMAXPROCS goroutines each appending one record at a
// time and waiting for durability.
func BenchmarkAppend(b *testing.B) {
	b.Run("fsync", func(b *testing.B) { benchAppend(b, false) })
	b.Run("nosync", func(b *testing.B) { benchAppend(b, true) })
}

// BenchmarkAppendSerial is the baseline without grouping: one appender, so
// one transaction (and one fsync) per record.
func BenchmarkAppendSerial(b *testing.B) {
	l := openLog(b, filepath.Join(b.TempDir(), "j.db"), Options{MaxDepth: 1 << 40})
	r := Record{Op: OpWrite, Share: 1, File: fileid.Stamp{ID: 12345, Gen: 1}, Off: 4096, Len: 65536}
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.Append(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// TestLogContinue: a new file that continues another log has its ID and
// numbers on from its last record; reopened, it stays that log; an
// existing file of another log is refused.
func TestLogContinue(t *testing.T) {
	dir := t.TempDir()
	cont := Continuation{ID: 0xfeedface, After: 41}
	l := openLog(t, filepath.Join(dir, "j.db"), Options{Continue: cont})
	if l.ID() != cont.ID || l.First() != 42 || l.Last() != 41 || l.Depth() != 0 {
		t.Fatalf("continued log: id %x first %d last %d depth %d", l.ID(), l.First(), l.Last(), l.Depth())
	}
	if last, err := l.Append(context.Background(), rec(1, 0)); err != nil || last != 42 {
		t.Fatalf("first Append = %d, %v; want 42", last, err)
	}
	if _, err := l.Read(41, 1); !errors.Is(err, ErrTrimmed) {
		t.Fatalf("Read of the continued log's record: %v", err)
	}
	l.Close()
	l = openLog(t, filepath.Join(dir, "j.db"), Options{Continue: cont})
	if l.ID() != cont.ID || l.First() != 42 || l.Last() != 42 {
		t.Fatalf("reopened: id %x first %d last %d", l.ID(), l.First(), l.Last())
	}
	l.Close()
	if _, err := Open(filepath.Join(dir, "j.db"), Options{Continue: Continuation{ID: 7, After: 41}, Logger: quietLogger()}); err == nil || !strings.Contains(err.Error(), "continue log 0000000000000007") {
		t.Fatalf("Open of another log's file to continue log 7: %v", err)
	}
}
