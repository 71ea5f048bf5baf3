//go:build !linux

package kernelbond

import (
	"errors"
	"log/slog"
	"time"

	"ftnas/bonding"
)

// Options configure a Datapath.
type Options struct {
	Namespace string
	BondName  string
	MIIMon    time.Duration
	Logger    *slog.Logger
}

// Datapath is the Linux bonding driver; Linux only.
type Datapath struct{}

var errUnsupported = errors.New("kernelbond: the kernel bond datapath needs Linux")

// New fails: the kernel datapath needs Linux.
func New(Options) (*Datapath, error) { return nil, errUnsupported }

// Link fails: the kernel datapath needs Linux.
func (*Datapath) Link(string) (bonding.LinkInfo, error) { return bonding.LinkInfo{}, errUnsupported }

// Apply fails: the kernel datapath needs Linux.
func (*Datapath) Apply(bonding.Action) error { return errUnsupported }

// Activity returns nothing.
func (*Datapath) Activity() []string { return nil }

// ProbeAnswers returns nothing.
func (*Datapath) ProbeAnswers() []string { return nil }

// Carrier returns a channel that never delivers.
func (*Datapath) Carrier() <-chan bonding.Carrier { return nil }

// Close does nothing.
func (*Datapath) Close() error { return nil }
