// Package store keeps ftnas's configuration and state — shares, users,
// settings and ID counters — in one bbolt file in the state directory.
//
// Open refuses, without writing a byte, a file that is not a ftnas state
// database, is corrupt, was written by a newer schema, or is locked by
// another nasd. Counters (share FSIDs, user UIDs, file IDs) only grow, so an
// ID is never handed out twice, even after the thing that held it is gone.
//
// The validation functions (ValidateShareName, CleanSharePath,
// ValidateClients, ValidateUserName, ValidatePassword) are pure and are also
// used by callers that want to reject bad input before it reaches the store.
// Errors carry one of the sentinels ErrInvalid, ErrNotFound or ErrExists so
// an API can map them to status codes with errors.Is.
package store
