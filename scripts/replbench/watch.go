package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"ftnas/appliance/api"
)

type watchOptions struct {
	Src, Dst, StopFile string
	DoneFile           string // after the stop: give up on unseen markers once this exists
	Sockets            sockets
	Every              time.Duration
	// Trace, when set, gets one JSON line per status sample, marker and
	// link sample (see traceEvent).
	Trace io.Writer
	// LinkPID and LinkIf: sample the rx+tx bytes of interface LinkIf in
	// the network namespace of process LinkPID (/proc/PID/net/dev) into
	// the trace every Every.
	LinkPID int
	LinkIf  string
	// CPU, when set, is read every Every (/proc/stat: the machine's, which
	// the lab's namespaces share) into the trace, so the parts of the
	// workload that leave the machine no idle time show as such.
	CPU string
}

// traceEvent is one line of the trace; T is unix ns (for a marker: when it
// was written).
type traceEvent struct {
	T        int64   `json:"t"`
	Ev       string  `json:"ev"` // "status", "marker", "link" or "cpu"
	Node     string  `json:"node,omitempty"`
	LagMS    float64 `json:"lag_ms"`
	Depth    int     `json:"depth,omitempty"`
	LastSeq  uint64  `json:"last_seq,omitempty"`
	AckedSeq uint64  `json:"acked_seq,omitempty"`
	Bytes    int64   `json:"bytes,omitempty"`
	Busy     int64   `json:"busy,omitempty"`  // cpu: jiffies not idle (nor iowait), all CPUs, since boot
	Total    int64   `json:"total,omitempty"` // cpu: all jiffies
}

// tracer writes traceEvents from several goroutines; nil writes nothing.
type tracer struct {
	mu  sync.Mutex
	enc *json.Encoder
	err error
}

func newTracer(w io.Writer) *tracer {
	if w == nil {
		return nil
	}
	return &tracer{enc: json.NewEncoder(w)}
}

func (t *tracer) add(e traceEvent) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil {
		t.err = t.enc.Encode(e)
	}
}

// cpuJiffies reads the busy and total jiffies of all CPUs from a /proc/stat
// text: idle and iowait count as not busy.
func cpuJiffies(statText string) (busy, total int64, err error) {
	for line := range strings.Lines(statText) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 6 {
			return 0, 0, fmt.Errorf("/proc/stat cpu line: %d fields, want at least 6", len(f))
		}
		for i, v := range f[1:] {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("/proc/stat cpu line, field %d: %w", i+1, err)
			}
			if i >= 7 {
				break // guest time is counted in user time already
			}
			total += n
			if i != 3 && i != 4 { // idle, iowait
				busy += n
			}
		}
		return busy, total, nil
	}
	return 0, 0, errors.New("/proc/stat: no cpu line")
}

// linkBytes reads rx+tx bytes of interface name from a /proc/net/dev text.
func linkBytes(devText, name string) (int64, error) {
	for line := range strings.Lines(devText) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) != name {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 9 {
			return 0, fmt.Errorf("net/dev line of %s: %d fields, want 16", name, len(f))
		}
		rx, err1 := strconv.ParseInt(f[0], 10, 64)
		tx, err2 := strconv.ParseInt(f[8], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, fmt.Errorf("net/dev line of %s: %w", name, err)
		}
		return rx + tx, nil
	}
	return 0, fmt.Errorf("net/dev: no interface %s", name)
}

type watchResult struct {
	Marker     summary            `json:"marker"`
	Unseen     int                `json:"markers_unseen"` // still missing at the done file; counted in Marker at their age then
	StatusLag  map[string]summary `json:"status_lag"`
	StatusErrs map[string]int     `json:"status_errors"`
}

const markerPoll = 5 * time.Millisecond

// watch writes markers and samples the status lag until the stop file
// exists.
func watch(ctx context.Context, o watchOptions) (watchResult, error) {
	res := watchResult{StatusLag: map[string]summary{}, StatusErrs: map[string]int{}}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	tr := newTracer(o.Trace)
	if o.LinkPID > 0 {
		wg.Go(func() {
			t := time.NewTicker(o.Every)
			defer t.Stop()
			for {
				if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", o.LinkPID)); err == nil {
					if n, err := linkBytes(string(b), o.LinkIf); err == nil {
						tr.add(traceEvent{T: time.Now().UnixNano(), Ev: "link", Bytes: n})
					}
				}
				select {
				case <-sctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	if o.CPU != "" {
		wg.Go(func() {
			t := time.NewTicker(o.Every)
			defer t.Stop()
			for {
				if b, err := os.ReadFile(o.CPU); err == nil {
					if busy, total, err := cpuJiffies(string(b)); err == nil {
						tr.add(traceEvent{T: time.Now().UnixNano(), Ev: "cpu", Busy: busy, Total: total})
					}
				}
				select {
				case <-sctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	for name, sock := range o.Sockets {
		wg.Go(func() {
			c := api.NewClient(sock)
			defer c.Close()
			var lags []float64
			errs := 0
			t := time.NewTicker(o.Every)
			defer t.Stop()
			for {
				cctx, ccancel := context.WithTimeout(sctx, time.Second)
				st, err := c.ClusterStatus(cctx)
				ccancel()
				if err != nil {
					if sctx.Err() == nil {
						errs++
					}
				} else {
					r := st.Replication
					lags = append(lags, float64(r.LagMS))
					tr.add(traceEvent{T: time.Now().UnixNano(), Ev: "status", Node: name, LagMS: float64(r.LagMS),
						Depth: r.Depth, LastSeq: r.LastSeq, AckedSeq: r.AckedSeq})
				}
				select {
				case <-sctx.Done():
					mu.Lock()
					res.StatusLag[name] = summarize(lags)
					res.StatusErrs[name] = errs
					mu.Unlock()
					return
				case <-t.C:
				}
			}
		})
	}

	type marker struct {
		name    string
		written time.Time
	}
	var pending []marker
	var lags []float64
	next := time.Now()
	k := 0
	var werr error
	stopped := false
	for {
		now := time.Now()
		if ctx.Err() != nil {
			break
		}
		if !stopped {
			if _, err := os.Stat(o.StopFile); err == nil {
				// No more markers and no more status samples; the ones
				// written are timed until they arrive or the done file.
				stopped = true
				cancel()
			}
		}
		if stopped {
			if len(pending) == 0 {
				break
			}
			if _, err := os.Stat(o.DoneFile); o.DoneFile == "" || err == nil {
				break
			}
		}
		if !stopped && !now.Before(next) {
			name := ".replbench-m" + strconv.Itoa(k)
			k++
			if err := os.WriteFile(filepath.Join(o.Src, name), []byte(strconv.FormatInt(now.UnixNano(), 10)), 0o644); err != nil {
				werr = fmt.Errorf("write marker: %w", err)
				break
			}
			pending = append(pending, marker{name, time.Now()})
			next = next.Add(o.Every)
		}
		kept := pending[:0]
		for _, m := range pending {
			if _, err := os.Stat(filepath.Join(o.Dst, m.name)); err == nil {
				lag := float64(time.Since(m.written).Microseconds()) / 1000
				lags = append(lags, lag)
				tr.add(traceEvent{T: m.written.UnixNano(), Ev: "marker", LagMS: lag})
				if err := os.Remove(filepath.Join(o.Src, m.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
					werr = fmt.Errorf("remove marker: %w", err)
				}
				continue
			}
			kept = append(kept, m)
		}
		pending = kept
		time.Sleep(markerPoll)
	}
	for _, m := range pending {
		lags = append(lags, float64(time.Since(m.written).Microseconds())/1000)
		os.Remove(filepath.Join(o.Src, m.name))
	}
	res.Unseen = len(pending)
	res.Marker = summarize(lags)
	cancel()
	wg.Wait()
	if tr != nil && werr == nil && tr.err != nil {
		werr = fmt.Errorf("trace: %w", tr.err)
	}
	return res, werr
}
