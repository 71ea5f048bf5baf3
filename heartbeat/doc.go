// Package heartbeat decides which node of an ftnas pair serves the file
// services, and carries the heartbeats that decision rests on.
//
// It has four parts:
//
//   - Machine (pure) is the failover state machine, in the style of etcd
//     raft: Step(Event) []Action. Time enters only as Tick events; the
//     machine starts no goroutines, opens no sockets and reads no clock.
//     States: Alone (the default: no peer configured, or the peer never
//     seen), Master (the configured primary, serving), Slave (not serving,
//     watching the peer) and PrimarySlave (the configured standby, serving
//     after a takeover; the primary later rejoins as Slave and gets its
//     role back by failback).
//   - Msg, Encode, Decode and Receiver (pure) are the wire format: a fixed
//     84-byte, versioned, HMAC-SHA256-authenticated datagram, and the
//     receive-side filter that drops and counts malformed datagrams, bad
//     MACs, unknown senders and replays.
//   - Timing and the functions in timeouts.go (pure) are the timeout
//     formulas: dead interval, jitter, stall credit, epoch numbering.
//   - Adapters execute the machine's actions: Transport (UDP, one socket
//     per path bound with IP_FREEBIND, or MemNetwork in tests), VIP with
//     AddAddress/RemoveAddress (netlink) and SendGratuitousARP (AF_PACKET,
//     a hand-built 28-byte ARP payload), and Node, a thin driver that
//     runs a Machine against a ticker, a Transport and the caller's
//     callbacks.
//
// # Rules of the machine
//
// A node serves (holds the VIP) only in Master or PrimarySlave, or in Alone
// when no peer is configured. The peer is alive while any path delivered
// an authenticated heartbeat within Timing.Dead; losing one path raises
// AlarmPathDown and changes nothing else.
//
// Promotion. A node that does not serve promotes when it is healthy, not
// yielding, and either
//
//   - the peer is alive, does not serve, and this node is preferred: the
//     peer yields (FlagYield) and this node has applied the peer's journal
//     up to the position the peer announces (or Promote was given here),
//     or only this node requests the role (FlagRequest), or else the
//     higher epoch, then the node that promoted into the current epoch
//     (it served last: its data is the newest), then (epoch 0) the higher
//     journal position, then the configured primary, then the lower node
//     id; or
//   - the peer is dead (both paths silent past Dead), or was never seen
//     and the pair never served (epoch 0: a node that restarts into an
//     epoch waits for its peer, which may have served after it),
//     the master's lease is over (promotion no earlier than last heard +
//     max(Dead, Lease + Stall), or start + StartupWait if never seen),
//     and a witness probe made after the master's lease ended says the
//     witness is reachable (the probe goes out then, while the peer is
//     not yet dead, so its answer is in when it is). A node that cannot
//     reach the witness never promotes this way, nor does one that was
//     not synced when its serving peer died: synced means it caught up
//     with the journal position the master announces since this process
//     started or its own position last went back (a resync from the
//     master's new log); until then its data is no copy of the master's
//     (FlagSynced tells the master, whose status shows "degraded"), and
//     only Promote{Force} takes over. A node that handed the service
//     over had every record then: it stays synced where the new
//     master's log continues its own (JournalPosition.Continues: no
//     description rewrites its volume), and is no copy until caught up
//     where the new log describes the volume anew. A master that goes on without
//     its standby's journal while the standby is alive (the journal's
//     link cut, heartbeats still heard) outdates it first: Outdate{On}
//     makes its heartbeats carry FlagOutdate, a standby that hears it
//     is no longer synced (and cannot become so while the flag stays),
//     and Status.PeerOutdated tells the master once a heartbeat that
//     acknowledges one of its flagged beats says so; only then may it
//     acknowledge changes alone (DRBD's outdating of the peer). So a
//     standby cut off from the journal never takes over without what
//     the master acknowledged meanwhile. For the same reason a standby
//     stops counting itself synced when its master was dead to it and is
//     heard again (it may have gone on alone meanwhile), and on VIPHeld
//     (a host answers for the VIP while no heartbeat is heard: split
//     heartbeat paths); it is synced again once caught up. A node that
//     just promoted announces JournalUnknown until its journal layer
//     reports a position in the new term's log, and a serving node that
//     starts a new log within its term takes a new epoch for it (Renew),
//     so positions are only ever compared within one log.
//
// Every promotion takes a new epoch (a fencing token), reported as
// EpochChanged before AddVIP; the caller must persist it before executing
// the later actions and pass it back as Config.Epoch after a restart.
//
// Epochs are disjoint: the node with the lower id promotes only into even
// epochs, the other only into odd ones (NextEpoch), each time above every
// epoch it has seen. So two nodes can never serve in the same epoch, even
// when both promote during a partition. When a partition heals and both
// serve, the higher epoch wins and the other releases the VIP and becomes
// Slave. Equal epochs cannot happen by construction (only if persisted
// state was lost); the machine still resolves them deterministically: the
// configured primary wins, then the lower node id.
//
// Release. A serving node releases (RemoveVIP first, then StopServices) and
// becomes Slave when its services fail (it then also stops heartbeats
// until the services are healthy again, so the peer takes over), when it
// has lost the peer and the witness, when its lease expired (its own
// process stalled longer than the lease), when a serving peer wins, on
// Demote, and on handover.
//
// Fencing. Every heartbeat carries an ack: the newest sequence the sender
// heard from its peer, and a standby answers each heartbeat of a serving
// peer at once. A serving node renews its lease (RenewLease) to the send
// time of its newest heartbeat the peer acknowledged plus Timing.Lease, so
// its lease ends no later than the standby's last heard + Lease (+ Stall
// for tick granularity), a bound the standby computes without a clock in
// common: it promotes only after that and after Dead. When acks stop
// (AckStale) while the peer is still heard, or the peer is dead, the
// serving node keeps its lease only through fresh witness probes; then the
// standby's own witness check finds it answering for the VIP. Version 1
// peers send no acks: with one, a master renews at every heartbeat it
// sends while it hears the peer, and the standby waits last heard + Dead
// + Lease, as version 1 did. A node acts on the peer's view only when that
// view acknowledges one of its own heartbeats sent since its last release
// and within Dead: heartbeats queued while it was stalled are history (a
// master thawed after a freeze must not read its old standby as a slave
// and promote above the node that took over).
//
// Handover and failback. A serving node hands over (releases, yields for
// Dead+Lease, and tells the peer with FlagYield so it promotes at once, no
// witness needed since the peer is reachable) when the alive, Slave peer
// has caught up (its journal position is at least ours) and either it
// requests the role (Promote or Failback on that node), or this node is
// PrimarySlave, the peer is the configured primary, and Failback was
// requested here or the policy is FailbackAuto and the peer has stayed
// caught up for Timing.FailbackDelay. The outage is one takeover.
//
// # Split brain
//
// Heartbeats run on two paths, so one cut link changes nothing but an
// alarm. When both paths fall silent while both nodes still reach the
// witness, the witness cannot pick a winner: it only answers pings. The
// master cannot tell "the standby died" from "the paths are cut", and it
// keeps serving (a rule that made it step down would stop the service
// whenever the standby dies, the commoner fault; a chaos run of that rule
// lost data when the stale node came back and took over). The standby's
// view is arbitrated on the data path instead: the witness check the
// caller supplies (NodeConfig.Witness; nasd's) also asks the LAN who has
// the VIP (ProbeVIP, an RFC 5227 ARP probe). A master that is alive holds
// its lease and answers; one that is dead, frozen or released does not
// (its fence drops the VIP's ARP once the lease ran out, and the standby
// asks only after that), so the standby promotes only when nothing
// answers for the VIP. What this cannot arbitrate: a LAN cut between the
// two nodes only, with the witness and the clients still reaching both;
// then both serve in different epochs until the cut heals (a witness that
// grants leases, like corosync's qdevice or CTDB's recovery lock, would
// close it).
package heartbeat
