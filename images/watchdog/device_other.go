//go:build !linux

package watchdog

import (
	"errors"
	"time"
)

// Dev is an open watchdog device (Linux only).
type Dev struct {
	Identity   string
	Timeout    time.Duration
	MagicClose bool
}

// Open is Linux only.
func Open(string, time.Duration) (*Dev, error) { return nil, errors.New("watchdog: only on Linux") }

// Keepalive is Linux only.
func (d *Dev) Keepalive() error { return errors.New("watchdog: only on Linux") }

// Close is Linux only.
func (d *Dev) Close() error { return nil }
