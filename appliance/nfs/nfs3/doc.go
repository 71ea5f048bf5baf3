// Package nfs3 is ftnas's NFSv3 server (RFC 1813): the procedures, served
// through ftnas's own ONC RPC layer (package rpc), over the files of one
// volume.
//
// It is written here rather than taken from go-nfs v0.0.4, whose procedure
// handlers cannot be replaced or wrapped from outside (HandleFunc takes an
// unexported type; handlers register in init()), whose handles die on restart
// and on rename, which decodes LINK with the wrong layout, maps OS errors such
// as ENOTEMPTY to NFS3ERR_IO, treats COMMIT as a no-op and re-opens the file on
// every READ and WRITE.
//
// What this server does instead:
//   - Handles are (share fsid, stable file ID, generation) from package fileid:
//     they survive restarts, renames of the file or any parent, and failover to
//     a replica; a deleted file's handle is NFS3ERR_STALE, never another file.
//   - fileid in attributes is the stable ID, fsid is the share's.
//   - Every path is resolved by the kernel beneath the volume with openat2
//     (RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) and every namespace operation is
//     an *at call on that directory, so a symlink planted by another client
//     cannot lead the server outside the volume.
//   - Each request runs with the caller's AUTH_SYS identity: namespace and
//     attribute operations run on a locked OS thread with setfsuid, setfsgid
//     and setgroups (thread-local raw syscalls), so the kernel checks
//     permissions and new files get the caller as owner; root is squashed to
//     nobody unless the share says otherwise. READ and WRITE go through a cache
//     of open descriptors and are checked against the file's mode with the
//     owner override knfsd applies.
//   - WRITE UNSTABLE replies with the server's write verifier and COMMIT
//     fsyncs; DATA_SYNC and FILE_SYNC writes sync before replying. The
//     verifier is the caller's (Options.Verifier, Server.SetVerifier): the
//     appliance derives it from a data-loss generation shared by the pair,
//     so it stays the same across a restart that stopped cleanly and a
//     planned handover, and changes only when uncommitted data may have
//     been lost.
//   - READ, WRITE and COMMIT go through a cache of open descriptors keyed by
//     file identity. A cached descriptor whose inode lost its last name is
//     not taken for a deleted file at once: the handle is resolved again,
//     because a replica's applier replaces a file by renaming a new copy
//     with the same identity over it (a node that served, then followed the
//     other node, then serves again holds descriptors of old copies). Only
//     a handle that no longer resolves is NFS3ERR_STALE.
//   - Metadata operations (CREATE, MKDIR, REMOVE, RENAME, ...) sync the
//     directories they change before replying, as RFC 1813 requires;
//     concurrent requests on one directory share one fsync (group commit).
//
// Every change the server makes to a file's contents (WRITE, a size in
// SETATTR or CREATE) is told to Options.Content, if set, with the bytes
// written: the master's replication ships them with their data.
//
// The server sets the process umask to 0 when it is created: NFS clients apply
// their own umask and send the mode they want.
package nfs3
