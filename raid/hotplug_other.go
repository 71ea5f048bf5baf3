//go:build !linux

package raid

import (
	"context"
	"errors"
)

// RunUevents needs Linux's uevent socket; elsewhere it fails.
func (m *Manager) RunUevents(ctx context.Context) error {
	return errors.New("raid: uevents need Linux")
}
