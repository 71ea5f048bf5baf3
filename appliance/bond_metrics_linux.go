package appliance

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"ftnas/bonding"
)

// What the bond reports: the datapath's actions and the controller's
// changes, counted for the status and the metrics.

// observed is a datapath that reports the actions it carried out.
type observed struct {
	bonding.Datapath
	applied func(bonding.Action)
}

func (o observed) Apply(a bonding.Action) error {
	err := o.Datapath.Apply(a)
	if err == nil {
		o.applied(a)
	}
	return err
}

// applied and changed run on the agent's goroutine.
func (s *bondService) applied(a bonding.Action) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch a := a.(type) {
	case bonding.SetActive:
		s.stats.setActive(a.NICs)
	case bonding.CreateBond:
		s.stats.bonded = true
	case bonding.DestroyBond:
		s.stats.bonded = false
	}
}

func (s *bondService) changed(c bonding.Changed) {
	s.mu.Lock()
	s.stats.change(c)
	s.mu.Unlock()
}

// bondStats counts what the metrics and the status report: each member's
// state, failures (a member taken out of rotation) and failovers (a member
// that was carrying traffic taken out).
type bondStats struct {
	bonded    bool
	states    map[string]bonding.State
	active    []string
	failures  map[string]uint64
	failovers uint64
}

func newBondStats() bondStats {
	return bondStats{states: map[string]bonding.State{}, failures: map[string]uint64{}}
}

// change takes a controller state change. The controller reports a change
// before the new active set, so active still holds the old one here.
func (b *bondStats) change(c bonding.Changed) {
	if c.To == bonding.Gone {
		delete(b.states, c.NIC)
	} else {
		b.states[c.NIC] = c.To
	}
	if c.From == bonding.Up && c.To == bonding.Down {
		b.failures[c.NIC]++
		if slices.Contains(b.active, c.NIC) {
			b.failovers++
		}
	}
}

func (b *bondStats) setActive(nics []string) { b.active = slices.Clone(nics) }

// reset forgets the running bond (its agent stopped); counters stay.
func (b *bondStats) reset() {
	clear(b.states)
	b.active, b.bonded = nil, false
}

// bondCollector exports the bond's state at scrape time.
type bondCollector struct {
	s                                 *bondService
	bonded, memberUp, members, active *prometheus.Desc
	failures, failovers               *prometheus.Desc
}

func newBondCollector(s *bondService) bondCollector {
	return bondCollector{
		s:        s,
		bonded:   prometheus.NewDesc("ftnas_bond_bonded", "1 while the bond interface exists.", nil, nil),
		memberUp: prometheus.NewDesc("ftnas_bond_member_up", "1 while a configured bond member is up (healthy, in rotation); 0 when down, recovering, being checked or missing.", []string{"nic"}, nil),
		members:  prometheus.NewDesc("ftnas_bond_members", "Configured bond members by state (up, down, recovering, checking, missing).", []string{"state"}, nil),
		active:   prometheus.NewDesc("ftnas_bond_active_members", "Bond members carrying outgoing traffic.", nil, nil),
		failures: prometheus.NewDesc("ftnas_bond_member_failures_total", "Times a member was taken out of rotation (carrier lost, or silent) since nasd started.", []string{"nic"}, nil),
		failovers: prometheus.NewDesc("ftnas_bond_failovers_total",
			"Times a member carrying traffic was taken out of rotation since nasd started.", nil, nil),
	}
}

func (c bondCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bonded, c.memberUp, c.members, c.active, c.failures, c.failovers} {
		ch <- d
	}
}

func (c bondCollector) Collect(ch chan<- prometheus.Metric) {
	var out []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...))
	}
	s := c.s
	s.mu.Lock()
	names := slices.Clone(s.cfg.Members)
	for n := range s.stats.states {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	counts := map[string]int{"up": 0, "down": 0, "recovering": 0, "checking": 0, "missing": 0}
	for _, n := range names {
		state := "missing"
		if st, ok := s.stats.states[n]; ok {
			state = st.String()
		}
		counts[state]++
		up := 0.0
		if state == "up" {
			up = 1
		}
		gauge(c.memberUp, up, n)
		counter(c.failures, float64(s.stats.failures[n]), n)
	}
	for state, n := range counts {
		gauge(c.members, float64(n), state)
	}
	bonded := 0.0
	if s.stats.bonded {
		bonded = 1
	}
	gauge(c.bonded, bonded)
	gauge(c.active, float64(len(s.stats.active)))
	counter(c.failovers, float64(s.stats.failovers))
	s.mu.Unlock()
	for _, m := range out {
		ch <- m
	}
}
