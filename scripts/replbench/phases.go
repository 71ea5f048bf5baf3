package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// phaseOrder is the workload's parts in the order it runs them; "after"
// is what a trace holds past its end.
var phaseOrder = []string{"creates", "writes", "overwrites", "renames", "deletes", "after"}

// phaseRow is the lag of one part of the workload.
type phaseRow struct {
	Phase   string  `json:"phase"`
	Seconds float64 `json:"seconds"`
	Status  summary `json:"status_lag"`
	Marker  summary `json:"marker_lag"`
	LinkMBs float64 `json:"link_mb_s"` // mean rx+tx of the dedicated link over the part, MB/s
	// CPUBusy is the share of the machine's CPU time that was busy over
	// the part (all CPUs; idle and iowait are not busy), in percent; -1
	// if the trace has no cpu samples for it.
	CPUBusy float64 `json:"cpu_busy_pct"`
}

// phases splits a watch trace by the part of the workload (w.PhaseEndNS)
// its samples fall in: markers by when they were written.
func phases(trace io.Reader, w workloadResult) ([]phaseRow, error) {
	type bound struct {
		name string
		end  int64
	}
	var bounds []bound
	for _, p := range phaseOrder[:len(phaseOrder)-1] {
		if e, ok := w.PhaseEndNS[p]; ok {
			bounds = append(bounds, bound{p, e})
		}
	}
	slices.SortFunc(bounds, func(a, b bound) int { return int(a.end - b.end) })
	which := func(t int64) string {
		for _, b := range bounds {
			if t <= b.end {
				return b.name
			}
		}
		return "after"
	}
	status, marker := map[string][]float64{}, map[string][]float64{}
	type linkSpan struct{ t0, t1, b0, b1 int64 }
	link := map[string]*linkSpan{}
	type cpuSpan struct{ busy0, busy1, total0, total1 int64 }
	cpu := map[string]*cpuSpan{}
	sc := bufio.NewScanner(trace)
	for n := 1; sc.Scan(); n++ {
		var e traceEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("trace line %d: %w", n, err)
		}
		if e.T < w.StartNS {
			continue
		}
		p := which(e.T)
		switch e.Ev {
		case "status":
			status[p] = append(status[p], e.LagMS)
		case "marker":
			marker[p] = append(marker[p], e.LagMS)
		case "link":
			if s := link[p]; s == nil {
				link[p] = &linkSpan{e.T, e.T, e.Bytes, e.Bytes}
			} else {
				s.t1, s.b1 = e.T, e.Bytes
			}
		case "cpu":
			if s := cpu[p]; s == nil {
				cpu[p] = &cpuSpan{e.Busy, e.Busy, e.Total, e.Total}
			} else {
				s.busy1, s.total1 = e.Busy, e.Total
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	var rows []phaseRow
	start := w.StartNS
	for _, p := range phaseOrder {
		if len(status[p])+len(marker[p]) == 0 && link[p] == nil {
			continue
		}
		r := phaseRow{Phase: p, Status: summarize(status[p]), Marker: summarize(marker[p]), CPUBusy: -1}
		if e, ok := w.PhaseEndNS[p]; ok {
			r.Seconds = float64(e-start) / 1e9
			start = e
		}
		if s := link[p]; s != nil && s.t1 > s.t0 {
			r.LinkMBs = float64(s.b1-s.b0) / (float64(s.t1-s.t0) / 1e9) / 1e6
		}
		if s := cpu[p]; s != nil && s.total1 > s.total0 {
			r.CPUBusy = 100 * float64(s.busy1-s.busy0) / float64(s.total1-s.total0)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// printPhases writes rows as a table.
func printPhases(out io.Writer, rows []phaseRow) error {
	if _, err := fmt.Fprintf(out, "%-11s %7s %10s %10s %10s %10s %10s %9s\n", "part", "secs", "status_p50", "status_p99", "marker_p50", "marker_p99", "link_MB/s", "cpu_busy%"); err != nil {
		return err
	}
	ms := func(s summary, v float64) string {
		if s.N == 0 {
			return "-" // no samples (lsyncd has no status lag)
		}
		return fmt.Sprintf("%.0f", v)
	}
	for _, r := range rows {
		busy := "-"
		if r.CPUBusy >= 0 {
			busy = fmt.Sprintf("%.0f", r.CPUBusy)
		}
		if _, err := fmt.Fprintf(out, "%-11s %7.2f %10s %10s %10s %10s %10.1f %9s\n", r.Phase, r.Seconds,
			ms(r.Status, r.Status.P50), ms(r.Status, r.Status.P99), ms(r.Marker, r.Marker.P50), ms(r.Marker, r.Marker.P99), r.LinkMBs, busy); err != nil {
			return err
		}
	}
	return nil
}
