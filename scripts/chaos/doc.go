// Command chaos is the Jepsen-style checker behind `scripts/bench chaos`:
// clients in the lab's client namespace run a recorded history of file
// operations through the VIP while a seeded fault schedule kills, freezes,
// restarts, cuts, partitions, drops and throttles the pair's nodes; after
// each trial the history is compared with the final state of both nodes.
//
//	schedule  prints the fault schedule of a seed (reproducible: the same
//	          seed and duration give the same schedule).
//	client    the workload (run inside the client namespace): --workers
//	          per share, each owning its own files, run create, write (at
//	          offset 0), append (a write at the end the worker expects),
//	          read (verified against the worker's model), rename and delete
//	          through go-nfs-client, retrying like a hard-mounted client
//	          (the RPC layer retransmits on a new connection; an attempt
//	          that hangs is abandoned and the mount dialled again). Every
//	          finished operation is one JSON line in --history.
//	run       the trials: for each seed, the pair is brought to n1 master /
//	          n2 slave in sync, the client and a watcher (both nodes'
//	          cluster status and VIP every 50 ms) start, the schedule is
//	          applied with scripts/lab, everything is healed, the pair must
//	          converge, and the checker compares. A failed trial leaves its
//	          seed, schedule, fault log, history, samples and final trees in
//	          --out/SEED; `scripts/bench chaos --seed SEED` replays it.
//	check     runs the checker again on a saved trial folder.
//	timeline  prints a saved trial in time order: fault actions, every
//	          change of the nodes' state as the watcher saw it, and the
//	          client ops that were slow, retried, stale or refused.
//
// The checker (check.go) is pure: it takes the history, the final trees of
// both nodes, the watcher's samples and the fault log, and reports
// acknowledged writes lost (per share mode, with the async loss window),
// stale handles, split brains (both nodes serving in one epoch, or both
// holding the VIP for two samples in a row while neither is frozen),
// standby files that are not the master's once the pair converged (on
// every share, async and SMB ones too: a standby that follows the wrong
// log, or the right one from the wrong place, fails here) and client
// stalls.
package main
