package main

import (
	"context"
	"fmt"
	"time"

	"ftnas/appliance/api"
)

type convergeOptions struct {
	A, B, Socket   string
	Since          int64
	Timeout, Every time.Duration
}

type convergeResult struct {
	Seconds   float64 `json:"converge_s"`
	Identical bool    `json:"identical"`
	Hash      string  `json:"hash"`
	Entries   int     `json:"entries"`
	Polls     int     `json:"polls"`
	LastSeq   uint64  `json:"last_seq,omitempty"`
}

// converge polls until both trees hash alike (and the master has no
// unacknowledged record). The time is taken when the check that succeeds
// starts, so the hashing of the last poll is not counted.
func converge(ctx context.Context, o convergeOptions) (convergeResult, error) {
	h := newHasher()
	var c *api.Client
	if o.Socket != "" {
		c = api.NewClient(o.Socket)
		defer c.Close()
	}
	deadline := time.Now().Add(o.Timeout)
	var res convergeResult
	var lastA, lastB string
	for {
		res.Polls++
		at := time.Now()
		ok := true
		if c != nil {
			st, err := c.ClusterStatus(ctx)
			if err != nil {
				return res, fmt.Errorf("cluster status: %w", err)
			}
			r := st.Replication
			res.LastSeq = r.LastSeq
			ok = r.AckedSeq == r.LastSeq && r.Depth == 0
		}
		if ok {
			a, n, err := h.tree(o.A)
			if err != nil {
				return res, err
			}
			b, _, err := h.tree(o.B)
			if err != nil {
				lastA, lastB = a, "("+err.Error()+")"
			} else if a == b {
				res.Seconds = float64(at.UnixNano()-o.Since) / 1e9
				res.Identical, res.Hash, res.Entries = true, a, n
				return res, nil
			} else {
				lastA, lastB = a, b
			}
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("trees not identical within %v (last hashes %s / %s)", o.Timeout, lastA, lastB)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(o.Every):
		}
	}
}
