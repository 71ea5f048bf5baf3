package main

import (
	"strings"
	"testing"
)

func TestParseIperf(t *testing.T) {
	good := `{"start":{},"intervals":[],"end":{"sum_sent":{"seconds":5,"bits_per_second":9.2e8,"retransmits":17},
	"sum_received":{"seconds":5.01,"bits_per_second":9.157e8},"cpu_utilization_percent":{"host_total":18.5,"remote_total":16.25}}}`
	r, err := parseIperf([]byte(good))
	if err != nil || r.mbit != 915.7 || r.retransmits != 17 || r.hostCPU != 18.5 || r.remoteCPU != 16.25 {
		t.Fatalf("parseIperf = %+v, %v", r, err)
	}
	for in, want := range map[string]string{
		`{"start":{},"end":{},"error":"unable to connect to server: Connection refused"}`: "iperf3: unable to connect",
		`{"end":{}}`: "no sum_received",
		`not json`:   "iperf3 -J output",
		``:           "iperf3 -J output",
	} {
		if _, err := parseIperf([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseIperf(%q) = %v, want %q", in, err, want)
		}
	}
}
