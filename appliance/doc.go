// Package appliance is ftnas's composition root: it opens the state store and
// the volume, and runs the services of a single node — the in-process NFSv3
// server with MOUNT and a portmapper, Samba's smbd under supervision, the
// local API that nasctl talks to, and Prometheus metrics — until its context
// ends, then stops every one of them (smbd included) before it returns.
//
// Everything that touches the operating system beyond files (system accounts,
// smbd) is done here or in the packages it wires; the packages below it hold
// the logic.
//
// In a pair (cluster_linux.go, replication_linux.go) heartbeat decides who
// serves. A node that starts serving takes over before NFS answers on the
// VIP (NFS calls wait at a gate until then): after a handover it lets the
// old master's journal run to its hand-off, so it has everything the old
// master logged; it sets the NFS write verifier; it becomes the journal's
// master. A node that stops serving lets the NFS calls in flight finish and
// hands off to its standby. The write verifier belongs to the pair
// (writegen.go): it is kept across a clean restart and a handover with a
// hand-off, and changes after a takeover from a dead peer and after a
// restart that followed a crash while serving, so clients resend exactly
// when uncommitted writes may have been lost.
package appliance
