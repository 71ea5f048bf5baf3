// Package rpc is an ONC RPC version 2 server (RFC 5531) for ftnas's
// in-process NFSv3, MOUNT and portmapper services.
//
// ftnas owns this layer because go-nfs v0.0.4 cannot be fixed from
// outside: its HandleFunc takes an unexported type, its handlers register
// in init(), its connection loop serves one request at a time, it does not
// reassemble multi-fragment records, it has no portmapper, and its MOUNT
// ignores the requested path.
//
// A Server speaks TCP with record marking (RFC 5531 §11), reassembling
// multi-fragment records up to Options.MaxRecord, and UDP with one
// datagram per call. Calls on one TCP connection are decoded in order and
// dispatched concurrently (at most Options.MaxInFlight at a time); each
// reply is written whole, one at a time, in completion order. Request and
// reply buffers come from a pool, so the steady state allocates almost
// nothing per call.
//
// The server answers the RPC layer itself: RPC version mismatches, unknown
// programs and versions, and malformed or unsupported credentials never
// reach a Handler. AUTH_NONE and AUTH_SYS are accepted; AUTH_SYS
// credentials are decoded into Call.Unix. Replies carry an AUTH_NONE
// verifier.
package rpc
