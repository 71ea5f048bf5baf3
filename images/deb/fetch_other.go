//go:build !linux

package deb

import (
	"context"
	"errors"
)

var errUnsupported = errors.New("deb: fetching packages needs Linux")

// Show is Linux-only.
func Show(ctx context.Context, pkg string) (Stanza, error) { return nil, errUnsupported }

// Fetch is Linux-only.
func Fetch(ctx context.Context, pkg string, opts Options) (Package, error) {
	return Package{}, errUnsupported
}

// FindCached is Linux-only.
func FindCached(cacheDir, pkg string) (Package, error) { return Package{}, errUnsupported }
