//go:build !linux

package raid

import (
	"context"
	"errors"
)

// Adopt needs Linux's block devices; elsewhere it fails.
func (a *Adopter) Adopt(ctx context.Context, disk, from string) (AdoptResult, error) {
	return AdoptResult{Disk: disk, From: from}, errors.New("raid: adopt needs Linux")
}

// SyncESP needs Linux's block devices; elsewhere it fails.
func (a *Adopter) SyncESP(ctx context.Context, from string) ([]ESPSync, error) {
	return nil, errors.New("raid: ESP sync needs Linux")
}

// SyncESPReturned needs Linux's block devices; elsewhere it fails.
func (a *Adopter) SyncESPReturned(ctx context.Context, parts []string) ([]ESPSync, error) {
	return nil, errors.New("raid: ESP sync needs Linux")
}
