// Command replbench is the measuring side of `scripts/bench replicate`:
// the client workload, the lag watcher, the convergence check and the
// tree hash.
//
//	workload  through NFSv3 (go-nfs-client) to --server, with its sockets
//	          made inside --netns (the lab's client): --files small-file
//	          creates, --write-mib MiB of mixed writes (new large files and
//	          64 KiB overwrites at random offsets in them), --renames
//	          renames and --deletes deletes. Prints one JSON object: the
//	          start and end (unix ns), the operations and the bytes.
//	watch     while the workload runs: every --every writes a marker file
//	          (.replbench-mN) into --src and times its appearance in --dst
//	          (polled every 5 ms), then removes it; and samples
//	          replication.lag_ms from each --socket (nasd's API) every
//	          --every. Stops writing and sampling when --stop-file exists,
//	          then keeps timing the markers already written until they
//	          all arrived or --done-file exists; prints one JSON object
//	          with p50/p99/max of both. --trace writes every sample as
//	          a JSON line, with the dedicated link's bytes (--link-pid,
//	          --link-if) every --every.
//	converge  from --since (unix ns): polls until the tree hashes of --a
//	          and --b are equal and, with --socket, the master's
//	          acked_seq equals its last_seq. Prints the seconds taken.
//	phases    splits a watch --trace by the part of the workload each
//	          sample fell in (the workload's phase_end_ns): status and
//	          marker lag p50/p99 and the link's mean MB/s per part.
//	treehash  DIR: the hash of a tree (path, type, size, mode, sha256 of
//	          the content; .ftnas-* and .replbench-* entries skipped).
package main
