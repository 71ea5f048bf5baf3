//go:build !linux

package appliance

import (
	"context"
	"errors"
)

// Ready reports the addresses nasd serves on, once everything is up.
type Ready struct {
	API     string
	Metrics string
}

// Run needs Linux (openat2, fanotify, setfsuid, Samba).
func Run(context.Context, Config, func(Ready)) error {
	return errors.New("nasd runs on Linux only")
}
