package main

import (
	"encoding/json"
	"strings"
	"testing"

	"ftnas/appliance/api"
	"ftnas/appliance/api/apitest"
)

func newClusterCLI(t *testing.T) (*cli, *apitest.ClusterFake) {
	c := newCLI(t)
	f := apitest.NewClusterFake("nas1")
	c.sock = apitest.Serve(t, f, nil)
	return c, f
}

func TestClusterCommands(t *testing.T) {
	c, f := newClusterCLI(t)
	if out := c.ok("", "cluster", "status"); !strings.Contains(out, "Stand-alone node") {
		t.Errorf("stand-alone status %q", out)
	}
	c.fails("not in a cluster", "", "cluster", "promote")
	c.fails("required", "", "cluster", "init", "--vip", "10.0.0.100/24")
	out := c.ok("", "cluster", "init", "--vip", "10.0.0.100/24", "--public", "10.0.0.11", "--peer-public", "10.0.0.12", "--witness", "10.0.0.254")
	for _, w := range []string{"Cluster 77: this node is node 1 (primary)", "nasctl cluster join --token-stdin <<<'ftnas-join-1:fake'"} {
		if !strings.Contains(out, w) {
			t.Errorf("init output %q lacks %q", out, w)
		}
	}
	c.fails("already in a cluster", "", "cluster", "init", "--vip", "10.0.0.100/24", "--public", "10.0.0.11", "--peer-public", "10.0.0.12", "--witness", "10.0.0.254")
	if out := c.ok("", "cluster", "failback"); !strings.Contains(out, "Asked for failback") {
		t.Errorf("failback output %q", out)
	}

	f.Cluster = api.ClusterStatus{
		Configured: true, Protection: api.ProtectionDegraded, ClusterID: 77, NodeID: 1, PeerID: 2, Role: "primary",
		State: "master", Serving: true, Healthy: true, Epoch: 4, VIP: "10.0.0.100/24", Interface: "eth0", Failback: "manual",
		PeerSeen: true, PeerAlive: true, PeerState: "slave", PeerEpoch: 4,
		Paths: []api.ClusterPath{
			{Name: "public", Local: "10.0.0.11", Peer: "10.0.0.12", Alive: true, LastHeardMS: 120},
			{Name: "dedicated", Local: "10.1.0.1", Peer: "10.1.0.2", Alive: false, LastHeardMS: 42_000},
		},
		Witness:     api.ClusterWitness{Addr: "10.0.0.254", Known: true, Reachable: true, AgeMS: 300},
		Alarms:      []string{"path-down(1)"},
		Replication: api.ClusterReplication{Role: "master", Connected: true, LastSeq: 12, AckedSeq: 10, Depth: 2, LagMS: 35, Continued: true},
		Timing:      api.ClusterTiming{IntervalMS: 120, JitterMS: 40, DeadMS: 1500, LeaseMS: 450},
	}
	out = c.ok("", "cluster", "status")
	for _, w := range []string{"Pair DEGRADED: cluster 77, epoch 4", "1 (this)  primary  master", "serving on 10.0.0.100/24, healthy",
		"2 (peer)  standby  slave", "alive", "public     10.0.0.11", "120 ms ago", "DOWN", "42 s ago", "witness", "reachable", "Alarms: path-down(1)",
		"Journal: shipping to the standby (connected); last record 12, acknowledged 10, depth 2, lag 35 ms",
		"Journal: this log continues the one the standby had at the hand-off: it stayed a copy, no resync",
		"Timing: heartbeat every 120ms ± 40ms, peer dead after 1.5s of silence, lease 450ms"} {
		if !strings.Contains(out, w) {
			t.Errorf("status output lacks %q:\n%s", w, out)
		}
	}
	var js api.ClusterStatus
	if err := json.Unmarshal([]byte(c.ok("", "--json", "cluster", "status")), &js); err != nil || js.Epoch != 4 || len(js.Paths) != 2 || js.Timing.DeadMS != 1500 {
		t.Errorf("--json status: %+v, %v", js, err)
	}
	if out := c.ok("", "cluster", "leave"); !strings.Contains(out, "stand-alone") {
		t.Errorf("leave output %q", out)
	}
	c.fails("the token is empty", "\n", "cluster", "join", "--token-stdin")
	c.fails("not a token", "", "cluster", "join", "nonsense")
	if out := c.ok("ftnas-join-1:fake\n", "cluster", "join", "--token-stdin"); !strings.Contains(out, "Joined cluster 77 as node 2 (standby of node 1)") {
		t.Errorf("join output %q", out)
	}
}

func TestClusterInitTiming(t *testing.T) {
	c, f := newClusterCLI(t)
	base := []string{"cluster", "init", "--vip", "10.0.0.100/24", "--public", "10.0.0.11", "--peer-public", "10.0.0.12", "--witness", "10.0.0.254"}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--heartbeat-interval=-150ms"}, "--heartbeat-interval -150ms must not be negative"},
		{[]string{"--dead-interval", "900.5ms"}, "--dead-interval 900.5ms is not a whole number of milliseconds"},
		{[]string{"--lease", "half a second"}, `invalid argument "half a second" for "--lease"`},
		{[]string{"--lease", "500"}, "missing unit"},
	} {
		c.fails(tc.want, "", append(base, tc.flags...)...)
	}
	if f.InitRequest.VIP != "" {
		t.Fatalf("a refused init reached the server: %+v", f.InitRequest)
	}
	// Unset flags send no timing (the server's defaults).
	c.ok("", base...)
	if r := f.InitRequest; r.HeartbeatIntervalMS != 0 || r.DeadIntervalMS != 0 || r.LeaseMS != 0 {
		t.Fatalf("default init sent a timing: %+v", r)
	}
	c.ok("", "cluster", "leave")
	c.ok("", append(base, "--heartbeat-interval", "150ms", "--dead-interval", "1.2s", "--lease", "500ms")...)
	if r := f.InitRequest; r.HeartbeatIntervalMS != 150 || r.DeadIntervalMS != 1200 || r.LeaseMS != 500 {
		t.Fatalf("init request timing %+v", r)
	}
}
