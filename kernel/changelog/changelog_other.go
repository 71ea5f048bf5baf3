//go:build !linux

package changelog

import (
	"context"
	"errors"
)

// ErrUnsupported is returned where fanotify does not exist.
var ErrUnsupported = errors.New("changelog: fanotify needs Linux")

// Filter is the change-log filter of one volume (Linux only).
type Filter struct{}

// New fails: fanotify needs Linux.
func New(Options) (*Filter, error) { return nil, ErrUnsupported }

// SetShares fails: fanotify needs Linux.
func (*Filter) SetShares([]Share) error { return ErrUnsupported }

// Run fails: fanotify needs Linux.
func (*Filter) Run(context.Context, chan<- Change) error { return ErrUnsupported }

// Close does nothing.
func (*Filter) Close() error { return nil }

// Gate holds writers of a volume back (Linux only).
type Gate struct{}

// OpenGate fails: fanotify needs Linux.
func OpenGate(GateOptions) (*Gate, error) { return nil, ErrUnsupported }

// Hold does nothing.
func (*Gate) Hold() {}

// Release does nothing.
func (*Gate) Release() {}

// Holding reports false.
func (*Gate) Holding() bool { return false }

// Held reports 0.
func (*Gate) Held() int { return 0 }

// Close does nothing.
func (*Gate) Close() error { return nil }
