//go:build !linux

package replica

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"time"

	"ftnas/journal"
	"ftnas/journal/capture"
	"ftnas/kernel/changelog"
)

// ErrUnsupported is returned where replication cannot run.
var ErrUnsupported = errors.New("replica: needs Linux")

// MasterConfig configures a Master (see the Linux version).
type MasterConfig struct {
	Volume    string
	Tree      any // *fileid.Tree on Linux
	Shares    []changelog.Share
	LogPath   string
	MaxDepth  int
	NoSync    bool
	Epoch     uint64
	ClusterID string
	NodeID    string
	Listener  net.Listener
	Addr      string
	TLS       *tls.Config
	Gate      bool
	Ignore    func(pid int) bool
	Tune      func(*capture.Config)
	Logger    *slog.Logger
	Now       func() time.Time
}

// MasterStats is what a Master reports.
type MasterStats struct {
	Running   bool
	Epoch     uint64
	LogID     uint64
	Depth     int
	LastSeq   uint64
	Acked     uint64
	Sent      uint64
	Connected bool
	Peer      string
	Lag       time.Duration
	Sessions  uint64
	Capture   capture.Stats
	LastError string
}

// Master captures and ships changes (Linux only).
type Master struct{}

// NewMaster fails: replication needs Linux.
func NewMaster(MasterConfig) (*Master, error) { return nil, ErrUnsupported }

// SetEpoch fails.
func (*Master) SetEpoch(uint64) error { return ErrUnsupported }

// Stats reports nothing.
func (*Master) Stats() MasterStats { return MasterStats{} }

// Sync fails.
func (*Master) Sync(context.Context) (uint64, error) { return 0, ErrUnsupported }

// WaitAcked fails.
func (*Master) WaitAcked(context.Context, uint64) error { return ErrUnsupported }

// Run fails.
func (*Master) Run(context.Context) error { return ErrUnsupported }

// StandbyConfig configures a Standby (see the Linux version).
type StandbyConfig struct {
	Tree                   any // *fileid.Tree on Linux
	PositionPath           string
	MasterAddr             string
	Dial                   func(ctx context.Context) (net.Conn, error)
	TLS                    *tls.Config
	ClusterID              string
	NodeID                 string
	Window                 int
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
	Now                    func() time.Time
}

// StandbyStats is what a Standby reports.
type StandbyStats struct {
	Running     bool
	Connected   bool
	Peer        string
	Position    journal.Position
	Applied     uint64
	Reapplied   uint64
	Lag, MaxLag time.Duration
	LastApply   time.Time
	Sessions    uint64
	Reconnects  uint64
	LastError   string
	NeedResync  bool
	Apply       struct{} // journal.FSApplyStats on Linux
}

// Standby applies the master's changes (Linux only).
type Standby struct{}

// NewStandby fails: replication needs Linux.
func NewStandby(StandbyConfig) (*Standby, error) { return nil, ErrUnsupported }

// Stats reports nothing.
func (*Standby) Stats() StandbyStats { return StandbyStats{} }

// Run fails.
func (*Standby) Run(context.Context) error { return ErrUnsupported }
