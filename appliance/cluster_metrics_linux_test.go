package appliance

import (
	"testing"

	"ftnas/appliance/api"

	"github.com/prometheus/client_golang/prometheus"
)

func TestClusterCollector(t *testing.T) {
	st := api.ClusterStatus{
		Configured: true, State: "master", Serving: true, Epoch: 4, PeerAlive: true,
		Paths:       []api.ClusterPath{{Name: "public", Alive: true, LastHeardMS: 120}, {Name: "dedicated", Alive: false, LastHeardMS: -1}},
		Witness:     api.ClusterWitness{Reachable: true},
		Heartbeats:  api.ClusterHeartbeats{Accepted: 10, BadMAC: 2},
		Replication: api.ClusterReplication{Role: "master", Connected: true, LastSeq: 12, AckedSeq: 9, Depth: 3, LagMS: 250},
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newClusterCollector(func() (api.ClusterStatus, bool) { return st, true }))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.Gauge != nil:
				got[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				got[key] = m.GetCounter().GetValue()
			}
		}
	}
	for key, want := range map[string]float64{
		"ftnas_cluster_state,state=master":                        1,
		"ftnas_cluster_state,state=slave":                         0,
		"ftnas_cluster_epoch":                                     4,
		"ftnas_cluster_path_alive,path=dedicated":                 0,
		"ftnas_cluster_path_last_heartbeat_seconds,path=public":   0.12,
		"ftnas_cluster_heartbeats_received_total,result=bad_mac":  2,
		"ftnas_cluster_heartbeats_received_total,result=accepted": 10,
		"ftnas_journal_depth":                                     3,
		"ftnas_journal_lag_seconds,role=master":                   0.25,
		"ftnas_journal_seq,which=last":                            12,
		"ftnas_journal_seq,which=acked":                           9,
		"ftnas_journal_connected,role=master":                     1,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
	if _, ok := got["ftnas_cluster_path_last_heartbeat_seconds,path=dedicated"]; ok {
		t.Error("a path never heard has a last-heartbeat age")
	}
	// Stand-alone: no series at all.
	reg = prometheus.NewRegistry()
	reg.MustRegister(newClusterCollector(func() (api.ClusterStatus, bool) { return api.ClusterStatus{}, false }))
	if mfs, err := reg.Gather(); err != nil || len(mfs) != 0 {
		t.Fatalf("stand-alone node exports %d cluster families (%v)", len(mfs), err)
	}
}
