// Package configsync carries a master's configuration (shares and users,
// with their FSIDs, UIDs and password hashes) to its standby, so the
// standby's exports, Samba shares, accounts and passdb match the master's
// at any moment.
//
// The stream is framed: a 4-byte big-endian length, then a versioned JSON
// Snapshot; a new frame whenever the configuration changes. Read
// validates everything it accepts (it reads the network). PlanFor
// compares a standby's configuration with the master's and says what to
// change; the master's FSIDs and UIDs win, so file handles and owners
// agree on both nodes. The appliance runs it over TLS pinned to the pair,
// beside the journal.
package configsync
