//go:build !linux

package capture

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"ftnas/journal"
	"ftnas/kernel/changelog"
)

// ErrUnsupported is returned where fanotify does not exist.
var ErrUnsupported = errors.New("capture: needs Linux")

// Config configures a Capture (see the Linux version).
type Config struct {
	Volume       string
	Tree         any // *fileid.Tree on Linux
	Shares       []changelog.Share
	Log          *journal.Log
	Gate         bool
	ReleaseDepth int
	GateMaxHold  time.Duration
	OnHold       func(changelog.Held)
	Ignore       func(pid int) bool
	QueueLen     int
	MaxBatch     int
	MaxAppend    int
	Retry        time.Duration
	NoSnapshot   bool
	Hints        *WriteHints
	HintPid      int
	Logger       *slog.Logger
	Now          func() time.Time
}

// Stats is what a Capture reports.
type Stats struct {
	TranslateStats
	Batches  uint64
	LastSeq  uint64
	Holds    uint64
	Holding  bool
	Held     int
	Queued   int
	LastTime int64
	// Described: the description of every share is committed.
	Described   bool
	Description string
}

// Capture is the capture of one volume (Linux only).
type Capture struct{}

// New fails: fanotify needs Linux.
func New(Config) (*Capture, error) { return nil, ErrUnsupported }

// SetShares fails.
func (*Capture) SetShares([]changelog.Share) error { return ErrUnsupported }

// Stats reports nothing.
func (*Capture) Stats() Stats { return Stats{} }

// Run fails.
func (*Capture) Run(context.Context) error { return ErrUnsupported }

// Sync fails.
func (*Capture) Sync(context.Context) error { return ErrUnsupported }

// Close does nothing.
func (*Capture) Close() error { return nil }
