//go:build !linux

package smb

import (
	"context"
	"errors"
)

// runState holds nothing where Run is not implemented.
type runState struct{}

// Run is only implemented on Linux.
func (s *Supervisor) Run(ctx context.Context) error {
	err := errors.New("smb: supervisor needs Linux")
	s.mu.Lock()
	s.run = runState{}
	s.mu.Unlock()
	s.setError(err)
	s.setPhase(PhaseStopped, 0)
	return err
}

// Reload is only implemented on Linux.
func (s *Supervisor) Reload(ctx context.Context) error {
	return errors.New("smb: reload needs Linux")
}
