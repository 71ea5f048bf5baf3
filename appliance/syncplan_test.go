package appliance

import (
	"testing"
	"time"

	"ftnas/heartbeat"
)

func TestPlanSync(t *testing.T) {
	alive := heartbeat.Status{PeerAlive: true}
	outdated := heartbeat.Status{PeerAlive: true, Outdating: true, PeerOutdated: true}
	legacy := heartbeat.Status{PeerAlive: true, Peer: heartbeat.Msg{Legacy: true}}
	long := syncGrace + time.Second
	for _, c := range []struct {
		name      string
		connected bool
		since     time.Duration
		hs        heartbeat.Status
		want      syncPlan
	}{
		{"standby connected", true, long, alive, syncWait},
		{"standby connected, peer dead", true, long, heartbeat.Status{}, syncWait},
		{"peer dead", false, long, heartbeat.Status{}, syncAlone},
		{"new master, standby on its way", false, time.Second, alive, syncWait},
		{"alive standby cut off from the journal", false, long, alive, syncOutdate},
		{"alive standby that says it is synced", false, long, heartbeat.Status{PeerAlive: true, Peer: heartbeat.Msg{Flags: heartbeat.FlagSynced}}, syncOutdate},
		{"outdating, not yet acknowledged", false, long, heartbeat.Status{PeerAlive: true, Outdating: true}, syncOutdate},
		{"standby acknowledged it is no copy", false, long, outdated, syncAlone},
		{"version 1 peer", false, long, legacy, syncAlone},
	} {
		if got := planSync(c.connected, c.since, c.hs); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
