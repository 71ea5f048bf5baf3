// Package smb runs Samba's smbd for nasd.
//
// It has four parts:
//
//   - Render (pure) turns plain share and listener data into a private,
//     deterministic smb.conf whose pid, lock, state, cache, private and
//     ncalrpc directories all live under the caller's state directory, so
//     this smbd never touches the system Samba installation.
//   - Passdb keeps Samba's tdbsam password database equal to a set of
//     users and NT hashes. Hashes are handed to pdbedit through an
//     anonymous in-memory file (memfd), never through argv or a file on
//     disk; plaintext passwords never reach this package except in NTHash.
//   - Supervisor runs `smbd --foreground --no-process-group` in its own
//     session, restarts it with exponential back-off, reloads its config,
//     stops a stale smbd left by an earlier nasd, and makes sure no smbd
//     (nor the samba-dcerpcd/rpcd_* helpers smbd spawns) with this config
//     survives Run returning.
//   - Probe is the health check: an NTLM login over SMB2 with go-smb2 that
//     mounts a share and lists it.
//
// The Supervisor can hold smbd back until its listen address is up
// (SupervisorConfig.Ready, ListenUp): on a cluster member smbd binds only
// the virtual IP, and an smbd that finds no address to bind panics and
// dumps core, so a standby would crash-loop. nasd kicks the Supervisor
// when the VIP comes up and smbd starts at once.
//
// # What a client gets across a reconnect and a failover
//
// Render enables SMB2 durable handles the way Samba grants them: smb.conf
// says "durable handles = yes" with "kernel oplocks = no", "kernel share
// modes = no" and "posix locking = no" (set in [global], inherited by
// every share; smb.conf(5): Samba grants durable handles only with all
// three off). The price is that SMB locks, share modes and oplocks/leases
// live in smbd alone: an NFS client or local process of the same folder
// neither sees nor breaks them.
//
// A durable handle survives the loss of the client's TCP connection to
// the same smbd: a client that implements durable reconnect (Windows,
// macOS, the Linux kernel client; not go-smb2 or smbclient) connects
// again, sets up a new session and reclaims its open files, with their
// locks and lease, before smbd's durable timeout, and the application
// sees no error. It does not survive a failover. The handle lives in the
// smbd that granted it (its smbXsrv_open_global and locking TDBs, which
// only a CTDB cluster would share), and that smbd was on the node that
// failed. Nothing stronger is on offer: Samba does not implement
// persistent handles (SMB3 continuous availability) at all (smb.conf(5)
// of 4.17, "smb2 disable lock sequence checking": "Samba does not
// implement Open.IsResilient and Open.IsPersistent yet").
//
// After a failover the client's durable reconnect is refused; it opens
// its files anew by path on the new master and finds what the journal
// and config sync brought: the share, its user and password, and the
// files as of the last journal record the standby acknowledged. It does
// not wait for a TCP timeout to notice the failover: the new master
// tickles the connections the old master had, and the client, reset,
// reconnects at once (appliance/clustertest: an SMB client reset, logged
// in again and reading back its data).
//
// The package takes plain data from its caller and imports no other ftnas
// package.
package smb
