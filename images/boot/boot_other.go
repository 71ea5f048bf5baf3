//go:build !linux

package boot

import (
	"context"
	"errors"

	"ftnas/raid"
)

var errUnsupported = errors.New("boot: needs Linux")

// ScanPartitions is Linux-only.
func ScanPartitions(sysClassBlock, partname string) ([]string, error) { return nil, errUnsupported }

// AssembleRoot is Linux-only.
func AssembleRoot(ctx context.Context, md *raid.Mdadm, opts Options, logf func(string, ...any)) (raid.ArrayStatus, string, error) {
	return raid.ArrayStatus{}, "", errUnsupported
}

// AssembleArray is Linux-only.
func AssembleArray(ctx context.Context, md *raid.Mdadm, name string, opts Options, logf func(string, ...any)) (raid.ArrayStatus, string, error) {
	return raid.ArrayStatus{}, "", errUnsupported
}

// MountRoot is Linux-only.
func MountRoot(dev, dir string) error { return errUnsupported }

// SwitchRoot is Linux-only.
func SwitchRoot(newRoot, init string, argv []string) error { return errUnsupported }

// ReadLoaderVars is Linux-only.
func ReadLoaderVars() (LoaderVars, bool, error) { return LoaderVars{}, false, errUnsupported }

// CheckSlot is Linux-only.
func CheckSlot(imageSlot string) (loader, userland string, err error) {
	return "", "", errUnsupported
}
