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
// files/s and the standby's lag.
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
	p.sync()
	el := time.Since(start)
	b.StopTimer()
	ss := p.standby.Stats()
	b.ReportMetric(float64(b.N)/el.Seconds(), "files/s")
	b.ReportMetric(float64(ss.MaxLag.Milliseconds()), "maxlag-ms")
	b.ReportMetric(float64(p.master.Stats().LastSeq)/float64(b.N), "records/file")
}
