//go:build !linux

package update

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"ftnas/images/boot"
	"ftnas/images/guest"
	"ftnas/raid"
)

var errUnsupported = errors.New("update: only on Linux")

// Updater updates the running box's inactive root slot (Linux only).
type Updater struct {
	Mdadm                           *raid.Mdadm
	Adopter                         *raid.Adopter
	SysBlock, SysClassBlock, DevDir string
	Cmdline                         func() ([]guest.Param, error)
	LoaderVars                      func() (boot.LoaderVars, bool, error)
	KeysDir, ReleaseFile            string
	Logger                          *slog.Logger
}

// Options tune an update.
type Options struct {
	Tries                         int
	AllowUnsigned, AllowDowngrade bool
}

// Result is what Update did.
type Result struct {
	Version, SignedBy    string
	Serial               uint64
	RunningVersion       string
	RunningSerial        uint64
	Downgrade            bool
	Unverified           bool
	Running, Slot, Array string
	Bytes                int64
	SHA256               string
	BootFiles            bool
	Entry                string
	Tries                int
	ESPFrom              string
	ESPs                 []raid.ESPSync
}

// BlessResult is what Bless did.
type BlessResult struct {
	Slot, Booted, Found, Entry string
	State                      BlessState
	ESPFrom                    string
	ESPs                       []raid.ESPSync
}

// Update is Linux only.
func (u *Updater) Update(context.Context, io.Reader, Options) (Result, error) {
	return Result{}, errUnsupported
}

// Bless is Linux only.
func (u *Updater) Bless(context.Context) (BlessResult, error) { return BlessResult{}, errUnsupported }
