package main

import (
	"math"
	"sort"
)

// summary is p50/p99/max of a set of samples, in ms.
type summary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// summarize uses the nearest-rank percentile; no samples: zeros.
func summarize(ms []float64) summary {
	if len(ms) == 0 {
		return summary{}
	}
	s := append([]float64(nil), ms...)
	sort.Float64s(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(i, 0)]
	}
	return summary{N: len(s), P50: rank(0.50), P99: rank(0.99), Max: s[len(s)-1]}
}
