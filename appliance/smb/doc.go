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
// The package takes plain data from its caller and imports no other ftnas
// package.
package smb
