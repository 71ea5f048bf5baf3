// Command failoverbench is the measuring side of `scripts/bench failover`:
// the client that times a failover, the watcher that sees who holds the
// virtual IP, and the report.
//
//	read    one NFSv3 read of --file from --export through --server, as a
//	        client does it from scratch (portmapper GETPORT, MOUNT MNT, NFS
//	        FSINFO, LOOKUP, READ, with go-nfs-client); prints the content.
//	probe   warms up with reads until one succeeds (then writes
//	        --ready-file), waits for --fault-file to hold the fault's time
//	        (unix ns, written by the bench right before it applies the
//	        fault), then starts a fresh read every --every, each abandoned
//	        after --attempt, until one returns --want (the standby's name).
//	        Prints one JSON object: the ms from the fault to the end of that
//	        read, and what the other attempts met.
//	watch   subscribes to address changes (netlink) in the named network
//	        namespaces and prints "UNIX_NS MEMBER add|del" whenever --vip
//	        comes or goes; "# ready" once subscribed.
//	timers  prints ftnas's default heartbeat timing (package heartbeat) as
//	        shell assignments, so the bench derives keepalived's tuned
//	        advert interval from the same source.
//	report  reads the bench's trial records and the watcher's events and
//	        prints the table and, as the last line, the JSON summary.
//
// A fresh connection per attempt is what a reconnecting client does; the
// attempt bound (200 ms) and the launch period (10 ms) set the resolution:
// a measured time is at most one period plus one read later than the
// moment the VIP answers. go-nfs-client has no connect or call timeouts,
// so an attempt is abandoned rather than cancelled: its goroutine may
// linger (a SYN the dead node never answers) until the process exits.
package main
