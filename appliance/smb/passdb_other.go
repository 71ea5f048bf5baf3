//go:build !linux

package smb

import (
	"context"
	"errors"
	"log/slog"
)

func errPassdbUnsupported() error { return errors.New("smb: passdb needs Linux") }

// Passdb manages smbd's passdb; only implemented on Linux.
type Passdb struct{}

// NewPassdb returns a Passdb whose methods fail: Linux only.
func NewPassdb(confPath string, log *slog.Logger) *Passdb { return &Passdb{} }

// SetUser is only implemented on Linux.
func (p *Passdb) SetUser(ctx context.Context, name, ntHashHex string) error {
	return errPassdbUnsupported()
}

// DeleteUser is only implemented on Linux.
func (p *Passdb) DeleteUser(ctx context.Context, name string) error { return errPassdbUnsupported() }

// ListUsers is only implemented on Linux.
func (p *Passdb) ListUsers(ctx context.Context) ([]string, error) {
	return nil, errPassdbUnsupported()
}

// Sync is only implemented on Linux.
func (p *Passdb) Sync(ctx context.Context, want map[string]string) error {
	return errPassdbUnsupported()
}
