//go:build !linux

package guest

import (
	"errors"
	"time"
)

var errUnsupported = errors.New("guest: needs Linux")

// MountBasics is Linux-only.
func MountBasics() error { return errUnsupported }

// LoadModules is Linux-only.
func LoadModules(paths []string) error { return errUnsupported }

// ReadList is Linux-only.
func ReadList(path string) ([]string, error) { return nil, errUnsupported }

// Cmdline is Linux-only.
func Cmdline() ([]Param, error) { return nil, errUnsupported }

// WaitBlockDevices is Linux-only.
func WaitBlockDevices(names []string, timeout time.Duration) error { return errUnsupported }

// PowerOff is Linux-only.
func PowerOff() error { return errUnsupported }

// Reboot is Linux-only.
func Reboot() error { return errUnsupported }
