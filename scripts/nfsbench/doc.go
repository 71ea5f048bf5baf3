// Command nfsbench is a userspace NFSv3 load generator used by
// `scripts/bench nfs` to measure ftnas's NFS server and its peer
// (NFS-Ganesha) with the very same client.
//
// It speaks ONC RPC over TCP with record marking and hand-written XDR,
// authenticates with AUTH_SYS (uid/gid configurable), asks the server's
// portmapper (port 111) for the MOUNT v3 and NFS v3 TCP ports, mounts the
// export and runs one operation:
//
//	probe   GETPORT, NULL, MNT and FSINFO; prints the transfer sizes.
//	write   CREATE UNCHECKED (truncating) NAME, then WRITE UNSTABLE in
//	        chunks of min(--chunk, wtmax) bytes with --depth requests in
//	        flight on one connection, then COMMIT. The time covers the first
//	        WRITE to the COMMIT reply. Every WRITE verifier must equal the
//	        COMMIT verifier and the final size must match.
//	read    READ NAME in chunks of min(--chunk, rtmax) bytes, --depth in
//	        flight on one connection; every byte is checked against the
//	        pattern `write` stored (the check is a memcmp, cheap next to the
//	        wire).
//	create  MKDIR a fresh directory (untimed), then CREATE GUARDED --count
//	        empty files (mode 0644) in it over --conns connections with
//	        --depth requests in flight on each; a reply without a handle is
//	        followed by a LOOKUP, as a client would. Files carry no data:
//	        the figure is the server's create path, as a `touch` storm or
//	        an untar of empty files would see it.
//
// Each run prints one JSON object on stdout, e.g.
//
//	{"op":"write","bytes":1073741824,"seconds":3.2,"mbs":335.5,...}
//
// where mbs is 10^6 bytes per second. Every RPC and NFS status is checked:
// an error reply, a short write, a changed verifier or a wrong byte ends
// the run with a non-zero exit status and a message naming the operation.
package main
