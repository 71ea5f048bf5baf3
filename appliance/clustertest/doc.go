// Package clustertest holds the end-to-end failover tests of a pair of
// nasd processes in the network lab (scripts/lab): two nodes on a public
// bridge with a dedicated link and a witness, btrfs volumes replicated by
// the journal, a client namespace that writes and reads through the
// virtual IP with a stock NFS client (libnfs-utils), and faults made by
// the lab (kill, freeze, cut, partition). It has no non-test code.
package clustertest
