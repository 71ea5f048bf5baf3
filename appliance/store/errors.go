package store

import "errors"

// Sentinel errors. Store methods wrap them with detail; test with errors.Is.
var (
	// ErrInvalid marks input that breaks a rule (bad name, path, client, ...).
	ErrInvalid = errors.New("invalid")
	// ErrNotFound marks a share, user or setting that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists marks a name or ID that is already taken.
	ErrExists = errors.New("already exists")
)
