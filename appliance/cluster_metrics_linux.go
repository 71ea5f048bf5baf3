package appliance

import (
	"ftnas/appliance/api"

	"github.com/prometheus/client_golang/prometheus"
)

// The pair's metrics.

// clusterCollector exports the pair's state at scrape time.
type clusterCollector struct {
	status                                                                      func() (api.ClusterStatus, bool)
	state, serving, epoch, peerAlive, pathAlive, pathHeard, witnessUp, received *prometheus.Desc
	jDepth, jLag, jSeq, jConnected                                              *prometheus.Desc
}

func newClusterCollector(status func() (api.ClusterStatus, bool)) *clusterCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("ftnas_cluster_"+name, help, labels, nil)
	}
	return &clusterCollector{
		status:    status,
		state:     d("state", "1 for this node's failover state.", "state"),
		serving:   d("serving", "1 when this node holds the VIP and serves."),
		epoch:     d("epoch", "The fencing epoch this node is in."),
		peerAlive: d("peer_alive", "1 while any heartbeat path hears the peer."),
		pathAlive: d("path_alive", "1 while the path hears the peer.", "path"),
		pathHeard: d("path_last_heartbeat_seconds", "Age of the peer's newest heartbeat on the path.", "path"),
		witnessUp: d("witness_reachable", "1 when the last witness probe got an answer."),
		received:  d("heartbeats_received_total", "Heartbeat datagrams received, by result (accepted or why dropped).", "result"),
		jDepth:    prometheus.NewDesc("ftnas_journal_depth", "Journal records the standby has not acknowledged (master).", nil, nil),
		jLag: prometheus.NewDesc("ftnas_journal_lag_seconds",
			"Master-slave phase difference: on the master the age of the oldest unacknowledged change, on the standby how long after its capture the last change was applied.", []string{"role"}, nil),
		jSeq:       prometheus.NewDesc("ftnas_journal_seq", "Journal sequence numbers: last logged (master) and acknowledged/applied.", []string{"which"}, nil),
		jConnected: prometheus.NewDesc("ftnas_journal_connected", "1 while the journal stream between the nodes is up.", []string{"role"}, nil),
	}
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.serving, c.epoch, c.peerAlive, c.pathAlive, c.pathHeard, c.witnessUp, c.received, c.jDepth, c.jLag, c.jSeq, c.jConnected} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	s, ok := c.status()
	if !ok {
		return
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	g := prometheus.GaugeValue
	for _, st := range []string{"alone", "master", "slave", "primaryslave"} {
		ch <- prometheus.MustNewConstMetric(c.state, g, b(s.State == st), st)
	}
	ch <- prometheus.MustNewConstMetric(c.serving, g, b(s.Serving))
	ch <- prometheus.MustNewConstMetric(c.epoch, g, float64(s.Epoch))
	ch <- prometheus.MustNewConstMetric(c.peerAlive, g, b(s.PeerAlive))
	for _, p := range s.Paths {
		ch <- prometheus.MustNewConstMetric(c.pathAlive, g, b(p.Alive), p.Name)
		if p.LastHeardMS >= 0 {
			ch <- prometheus.MustNewConstMetric(c.pathHeard, g, float64(p.LastHeardMS)/1000, p.Name)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.witnessUp, g, b(s.Witness.Reachable))
	h := s.Heartbeats
	for result, v := range map[string]uint64{
		"accepted": h.Accepted, "foreign": h.Foreign, "malformed": h.Malformed, "bad_mac": h.BadMAC,
		"wrong_cluster": h.WrongCluster, "unknown_node": h.UnknownNode, "wrong_path": h.WrongPath, "replayed": h.Replayed,
	} {
		ch <- prometheus.MustNewConstMetric(c.received, prometheus.CounterValue, float64(v), result)
	}
	if r := s.Replication; r.Role != "" {
		ch <- prometheus.MustNewConstMetric(c.jLag, g, float64(r.LagMS)/1000, r.Role)
		ch <- prometheus.MustNewConstMetric(c.jConnected, g, b(r.Connected), r.Role)
		ch <- prometheus.MustNewConstMetric(c.jSeq, g, float64(r.AckedSeq), "acked")
		if r.Role == "master" {
			ch <- prometheus.MustNewConstMetric(c.jDepth, g, float64(r.Depth))
			ch <- prometheus.MustNewConstMetric(c.jSeq, g, float64(r.LastSeq), "last")
		}
	}
}
