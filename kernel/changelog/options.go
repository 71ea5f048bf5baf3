package changelog

import (
	"log/slog"
	"time"
)

// Options configure a Filter.
type Options struct {
	// Volume is a directory of the volume's filesystem, normally its mount
	// point. The whole filesystem is watched; it must not be the host's
	// root filesystem.
	Volume string
	// Shares are the trees whose changes are reported; changes elsewhere
	// on the volume are not. SetShares replaces them later.
	Shares []Share
	// Ignore, if set, drops changes made by the processes it returns true
	// for — the applier's own writes, e.g. func(pid int) bool { return pid
	// == os.Getpid() }. pid is the thread-group ID (the process).
	Ignore func(pid int) bool
	Log    *slog.Logger
	// Now stamps Changes; time.Now if nil.
	Now func() time.Time
}

// GateOptions configure a Gate.
type GateOptions struct {
	// Volume is a directory of the volume's filesystem, normally its mount
	// point. While the gate is held, every open on that filesystem is
	// gated; it must not be the host's root filesystem.
	Volume string
	// Ignore, if set, lets the processes it returns true for through even
	// while held. The gate's own process is never held.
	Ignore func(pid int) bool
	// MaxHold bounds how long one open is held (default 30s); then it is
	// allowed, and logged.
	MaxHold time.Duration
	// MaxHeld bounds how many opens are held at once (default 1024, each
	// costs a descriptor); opens beyond it are allowed, and logged.
	MaxHeld int
	// OnHold, if set, is called from the gate's goroutine for each open it
	// starts holding. It must not block.
	OnHold func(Held)
	Log    *slog.Logger
}

// Held describes an open the gate is holding.
type Held struct {
	Pid  int    // the process
	Tid  int    // the thread blocked in open
	Path string // the file
}
