package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// faultEvent is one line of a trial's fault log.
type faultEvent struct {
	Start  int64  `json:"start"` // unix ns: the action began
	T      int64  `json:"t"`     // unix ns: the action was done`
	Fault  Fault  `json:"fault"`
	Node   string `json:"node,omitempty"`
	Action string `json:"action"`
	Err    string `json:"err,omitempty"`
}

// Timeline writes a trial's story in time order, in seconds from t0: the
// fault actions, every change of what the watcher saw of the nodes, and
// the client ops that did not simply succeed on their first try.
func Timeline(w io.Writer, t0 int64, samples []Sample, events []faultEvent, ops []Op) error {
	type line struct {
		t int64
		s string
	}
	var lines []line
	for _, e := range events {
		s := fmt.Sprintf("fault %s %s %s (took %d ms)", e.Action, e.Fault.String(), e.Node, (e.T-e.Start)/1e6)
		if e.Err != "" {
			s += ": " + e.Err
		}
		at := e.Start
		if at == 0 {
			at = e.T
		}
		lines = append(lines, line{at, s})
	}
	prev := ""
	for _, smp := range samples {
		var parts []string
		for _, n := range smp.Nodes {
			st := "down"
			switch {
			case n.Frozen:
				st = "frozen"
			case n.Running && !n.Up:
				st = "no-answer"
			case n.Up:
				st = n.State
				if n.Serving {
					st += "*"
				}
				st += fmt.Sprintf("/e%d", n.Epoch)
			}
			if n.VIP {
				st += "+vip"
			}
			parts = append(parts, n.Name+"="+st)
		}
		if s := strings.Join(parts, " "); s != prev {
			lines = append(lines, line{smp.T, "nodes " + s})
			prev = s
		}
	}
	for _, o := range ops {
		if o.Result == ResultOK && o.Tries == 1 && o.Stale == 0 && o.Stall() < 500e6 {
			continue
		}
		s := fmt.Sprintf("op w%d seq %d %s %s %s after %d ms, %d tries", o.Worker, o.Seq, o.Kind, o.File, o.Result, o.Stall()/1e6, o.Tries)
		if o.Stale > 0 {
			s += fmt.Sprintf(", %d STALE", o.Stale)
			if o.StaleID != 0 {
				s += fmt.Sprintf(" (fileid now %d)", o.StaleID)
			}
		}
		if o.Err != "" {
			s += ": " + o.Err
		}
		lines = append(lines, line{o.Invoke, s})
	}
	slices.SortStableFunc(lines, func(a, b line) int {
		switch {
		case a.t < b.t:
			return -1
		case a.t > b.t:
			return 1
		}
		return 0
	})
	for _, l := range lines {
		if _, err := fmt.Fprintf(w, "%8.2f %s\n", float64(l.t-t0)/1e9, l.s); err != nil {
			return err
		}
	}
	return nil
}
