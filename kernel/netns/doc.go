// Package netns creates sockets and starts processes inside a named Linux
// network namespace (one made by `ip netns add`, `scripts/lab up`, or a
// test), without moving the caller.
//
// Socket families that bind to a namespace at creation — TCP/UDP, AF_PACKET,
// TAP, netlink — must be created by a thread that has entered the namespace.
// Do is the one place that does it: it runs a function on a fresh goroutine
// locked to its OS thread, switches that thread into the namespace
// (setns(CLONE_NEWNET)), and switches it back afterwards. If the switch back
// fails, the thread stays locked and the Go runtime discards it when the
// goroutine exits, so no other goroutine ever runs in the wrong namespace.
//
// A socket keeps its namespace for its whole life, so the listeners and
// connections Listen, ListenPacket and Dial return may be used from any
// goroutine. A process started inside Do (Start, Exec) inherits the
// namespace. Code inside Do must not expect goroutines it starts to share
// the namespace: they run on other threads.
//
// Namespaces are named as `ip netns` names them (resolved under
// /run/netns), or by an absolute path to a namespace file such as
// /proc/PID/ns/net. The empty name means the caller's own namespace.
//
// Subpackage labtest brings the repository's network lab (scripts/lab) up
// and down from Go tests.
package netns
