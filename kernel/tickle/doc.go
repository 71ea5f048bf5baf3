// Package tickle makes TCP clients of a moved service address notice a
// failover at once instead of after their retransmission timeouts.
//
// When the standby takes over the virtual IP (VIP), the clients' kernels
// still hold connections to the old master. Those connections are dead,
// but a client that is only reading (an idle SMB or NFS mount) learns that
// only from TCP keepalive or retransmission timeouts, minutes later. CTDB
// solves this with "tickle ACKs", and so does this package:
//
//  1. The master periodically records its established connections on the
//     VIP (Connections) and replicates the list to the standby.
//  2. After takeover the new master sends, for each recorded connection, a
//     TCP ACK from VIP:port to client:port with sequence and
//     acknowledgement numbers 0 (window 1234, as CTDB, to recognise our own
//     packets). The numbers are outside the client's window, so the
//     client's stack answers with a duplicate ("challenge") ACK carrying
//     its real sequence and acknowledgement numbers (RFC 793/5961).
//  3. Tickle reads that answer on a raw socket and sends an RST whose
//     sequence number is the client's acknowledgement number, the one
//     value RFC 5961 accepts. The client's pending read fails with
//     ECONNRESET and SMB/NFS reconnect to the VIP, now the new master.
//
// The new master's kernel would usually also reset the connection itself
// (it has no socket for the client's ACK), but not when a firewall drops
// its RSTs or SYN cookies are active on a listener; step 3 does not depend
// on it.
//
// Linux rate-limits out-of-window duplicate ACKs per socket
// (net.ipv4.tcp_invalid_ratelimit, 500 ms by default), so Tickle repeats
// every Interval (100 ms) rather than a few milliseconds apart: repeats
// only help when the first ACK or its answer is lost.
//
// The pure parts — /proc/net/tcp{,6} parsing (ParseProcNet), IPv4/TCP
// packet building and parsing with checksums — are OS independent and
// tested against known packets; the socket work is in tickle_linux.go.
// Only IPv4 VIPs can be tickled (IPv4 clients of dual-stack listeners,
// which /proc/net/tcp6 shows as ::ffff:a.b.c.d, are found and unmapped).
package tickle
