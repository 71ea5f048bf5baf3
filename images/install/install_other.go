//go:build !linux

package install

import (
	"context"
	"errors"
	"io"
)

// Install is Linux only.
func (in *Installer) Install(ctx context.Context, r io.Reader, o Options) (Result, error) {
	return Result{}, errors.New("install: only on Linux")
}
