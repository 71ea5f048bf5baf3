// Package fence enforces a serving node's lease in the kernel: tcx BPF
// programs on the VIP's interface drop, once the lease's deadline has
// passed, IPv4 packets to the virtual IP (ingress) or from it (egress),
// ARP asking for it (ingress: the node does not answer) and ARP claiming
// it (egress). Other hosts' ARP about the VIP passes, so a fenced standby
// can still ask who holds the VIP (heartbeat.ProbeVIP) and hear the
// answer.
//
// A master stopped by SIGSTOP (or stalled) cannot remove its own VIP, and
// the kernel would go on answering ARP and TCP for it while the standby
// takes over: two hosts would own the address. The failover machine
// (heartbeat) renews the lease at every heartbeat it sends while it hears
// the peer or the witness, and the standby promotes only after the lease
// has run out; this package makes "run out" true at the wire even when
// nasd itself no longer runs. The deadline lives in a one-element BPF
// array map (CLOCK_MONOTONIC nanoseconds, as bpf_ktime_get_ns reads it,
// and the VIP), and the program checks it per packet; renewing is one map
// update, no syscall per packet and no timer.
//
// The program is attached at tcx ingress and egress through BPF links
// (cilium/ebpf). With Attach the process holds them, so a killed process
// detaches the fence and the supervisor must remove the VIP (DESIGN:
// "Fencing a frozen or killed master"). AttachPinned pins the links and
// the lease map in a BPF filesystem: the fence outlives the process, so
// after kill -9 the lease simply runs out at the wire, and the next
// AttachPinned in the same directory (the restarted nasd) replaces it.
// Linux-only; elsewhere Attach fails.
package fence
