package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"ftnas/appliance/api"
)

type watchOptions struct {
	Src, Dst, StopFile string
	DoneFile           string // after the stop: give up on unseen markers once this exists
	Sockets            sockets
	Every              time.Duration
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
					lags = append(lags, float64(st.Replication.LagMS))
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
				lags = append(lags, float64(time.Since(m.written).Microseconds())/1000)
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
	return res, werr
}
