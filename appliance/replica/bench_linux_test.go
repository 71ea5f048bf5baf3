package replica

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkReplicateSmallFiles measures replication of small-file creates
// end to end: b.N files of 4 KiB written on the master (one process, plain
// system calls), until the standby has applied them all (durably: the
// standby syncs every batch; the master's log does not fsync). Reported:
// files/s, the standby's lag, and how long after the last write the standby
// had them all (catchup-ms).
//
//	go test -run '^$' -bench SmallFiles -benchtime 2000x ./appliance/replica/
func BenchmarkReplicateSmallFiles(b *testing.B) {
	p := newPair(b, pairOpts{})
	dir := filepath.Join(p.shares[0].Root, "bench")
	must(b, os.Mkdir(dir, 0o755))
	p.sync()
	data := make([]byte, 4096)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		write(b, filepath.Join(dir, fmt.Sprintf("f%07d", i)), 0, data)
	}
	written := time.Now()
	p.sync()
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(time.Since(written).Milliseconds()), "catchup-ms")
	ss := p.standby.Stats()
	b.ReportMetric(float64(b.N)/el.Seconds(), "files/s")
	b.ReportMetric(float64(ss.MaxLag.Milliseconds()), "maxlag-ms")
	b.ReportMetric(float64(p.master.Stats().LastSeq)/float64(b.N), "records/file")
}

// BenchmarkReplicateLatency measures the lag of a lone change: one 4 KiB
// file written on the master, then waited for until the standby has applied
// it durably (capture, log, ship, fetch, syncfs, commit, ack). ms/change is
// the lag when nothing else is going on.
//
//	go test -run '^$' -bench Latency -benchtime 50x ./appliance/replica/
func BenchmarkReplicateLatency(b *testing.B) {
	p := newPair(b, pairOpts{})
	dir := filepath.Join(p.shares[0].Root, "bench")
	must(b, os.Mkdir(dir, 0o755))
	p.sync()
	data := make([]byte, 4096)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		write(b, filepath.Join(dir, fmt.Sprintf("f%07d", i)), 0, data)
		p.sync()
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(el.Microseconds())/1000/float64(b.N), "ms/change")
}
