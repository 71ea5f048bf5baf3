//go:build !linux

package userland

import (
	"errors"
	"log/slog"
	"time"

	"ftnas/bonding"
)

// Options configure a Datapath.
type Options struct {
	Namespace   string
	BondName    string
	Batch       int
	CarrierPoll time.Duration
	Logger      *slog.Logger
}

// Datapath is the userland bond; Linux only.
type Datapath struct{}

var errUnsupported = errors.New("userland: the userland bond datapath needs Linux (TAP, AF_PACKET)")

// New fails: the userland datapath needs Linux.
func New(Options) (*Datapath, error) { return nil, errUnsupported }

// Link fails: the userland datapath needs Linux.
func (*Datapath) Link(string) (bonding.LinkInfo, error) { return bonding.LinkInfo{}, errUnsupported }

// Apply fails: the userland datapath needs Linux.
func (*Datapath) Apply(bonding.Action) error { return errUnsupported }

// Activity returns nothing.
func (*Datapath) Activity() []string { return nil }

// ProbeAnswers returns nothing.
func (*Datapath) ProbeAnswers() []string { return nil }

// Carrier returns a channel that never delivers.
func (*Datapath) Carrier() <-chan bonding.Carrier { return nil }

// Close does nothing.
func (*Datapath) Close() error { return nil }

// Stats returns no counters.
func (*Datapath) Stats() Stats { return Stats{} }
