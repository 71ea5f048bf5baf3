package appliance

import (
	"time"

	"ftnas/heartbeat"
)

// syncTimeout bounds how long an NFS commit on a sync-replicated share
// waits for the standby before the client is asked to retry.
const syncTimeout = 10 * time.Second

// syncGrace is how long after this node became master a standby that the
// heartbeat hears but that has not connected yet is waited for (a
// handover, a failback: the standby reconnects to the new master's log).
const syncGrace = 30 * time.Second

// syncPlan is what a commit on a sync-replicated share does about the
// standby (see planSync).
type syncPlan int

const (
	// syncWait: wait until the standby has stored the change (or the
	// client retries).
	syncWait syncPlan = iota
	// syncAlone: acknowledge without the standby; the pair is degraded.
	syncAlone
	// syncOutdate: the standby is alive but not receiving the journal:
	// tell it it is no copy (heartbeat.Outdate), and acknowledge alone
	// only once it has acknowledged that (Status.PeerOutdated).
	syncOutdate
)

func (p syncPlan) String() string {
	switch p {
	case syncWait:
		return "wait for the standby"
	case syncAlone:
		return "alone"
	case syncOutdate:
		return "outdate the standby, then alone"
	}
	return "?"
}

// planSync decides a commit on a sync-replicated share from whether the
// standby's journal is connected, how long this node has been master and
// the heartbeat's view of the peer.
//
// A change acknowledged without the standby is on this node alone. That
// is safe only while the peer cannot take over by itself: it is dead (a
// node back from a restart waits for its peer), a version 1 peer (which
// has no outdating; as before), or it has acknowledged FlagOutdate (it
// no longer counts itself a copy). A standby that is alive, synced and
// merely cut off from the journal would otherwise take over when this
// node dies next, without what this node acknowledged alone.
func planSync(connected bool, sinceMaster time.Duration, hs heartbeat.Status) syncPlan {
	switch {
	case connected:
		return syncWait
	case !hs.PeerAlive:
		return syncAlone
	case sinceMaster < syncGrace:
		// A handover or failback: the standby reconnects to this
		// node's new log soon.
		return syncWait
	case hs.Peer.Legacy, hs.PeerOutdated:
		return syncAlone
	}
	return syncOutdate
}
