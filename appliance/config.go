package appliance

import (
	"log/slog"
	"time"

	"ftnas/raid"
)

// Defaults of a real box.
const (
	DefaultStateDir = "/var/lib/ftnas"
	DefaultVolume   = "/srv/ftnas"
	DefaultMetrics  = "127.0.0.1:9469"
	DefaultBPFDir   = "/sys/fs/bpf/ftnas"
)

// Config is how nasd runs.
type Config struct {
	StateDir string // holds ftnas.db (config and state), Samba's private tree
	Volume   string // the file data; shares are folders in it
	Listen   string // IP to serve NFS and SMB on; "" for all
	API      string // unix socket of the local API; "" derives it from StateDir
	Metrics  string // TCP address of /metrics; "" disables it

	// Ports; zero means the standard one. Tests move them.
	NFSPort, PortmapPort, SMBPort int

	// NoSMB runs without Samba (for hosts without it).
	NoSMB bool
	// SmbdPath overrides the smbd binary.
	SmbdPath string

	// BondDatapath is the network bond's datapath: "auto" (or ""; the
	// kernel's bonding driver when loaded, else the userland one, and a
	// formed bond keeps its own), "userland" or "kernel".
	BondDatapath string

	// BPFDir is a BPF filesystem (mounted there if it is not one) where
	// the cluster's lease fence is pinned so that it outlives nasd; ""
	// leaves the fence to the process.
	BPFDir string

	// RaidAutoAdopt lets the hot-plug manager adopt a blank whole disk
	// (partition it like a healthy member, copy the ESP, add it to every
	// array) while some array is degraded. Off: an operator runs
	// nasctl raid adopt.
	RaidAutoAdopt bool

	// ScrubEvery is how often each redundant md array is checked; 0 means
	// raid.DefaultScrubEvery, a negative value turns the schedule off.
	ScrubEvery time.Duration

	Log     *slog.Logger
	Version string
}

// scrubEvery is the scrub schedule's period; <= 0 is off.
func (c *Config) scrubEvery() time.Duration {
	switch {
	case c == nil || c.ScrubEvery == 0:
		return raid.DefaultScrubEvery
	case c.ScrubEvery < 0:
		return 0
	}
	return c.ScrubEvery
}
