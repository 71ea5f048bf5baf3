// Package kernel holds nothing itself; its subpackages are the node's
// Linux-facing primitives, each small, with its pure logic apart from its
// system calls and a stub for other systems. Among them:
//
//   - btrfs: read-only snapshots of a btrfs volume (the journal's
//     consistent initial description) and btrfs file handles.
//   - changelog: the fanotify change-log filter (what changed on a volume's
//     shares, whoever changed it) and the back-pressure gate that holds
//     writers while the journal is full.
//   - netns: sockets and processes inside a named network namespace.
package kernel
