package appliance

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
)

func (c *Config) setDefaults() {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.Volume == "" {
		c.Volume = DefaultVolume
	}
	if c.NFSPort == 0 {
		c.NFSPort = 2049
	}
	if c.PortmapPort == 0 {
		c.PortmapPort = 111
	}
	if c.SMBPort == 0 {
		c.SMBPort = 445
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Version == "" {
		c.Version = "dev"
	}
}

// check validates the configuration before anything is started; errors say
// what is wrong and what to do.
func (c *Config) check() error {
	var err error
	if c.StateDir, err = filepath.Abs(c.StateDir); err != nil {
		return fmt.Errorf("state dir %q: %w", c.StateDir, err)
	}
	if c.Volume, err = filepath.Abs(c.Volume); err != nil {
		return fmt.Errorf("volume %q: %w", c.Volume, err)
	}
	fi, err := os.Stat(c.Volume)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("volume %s is missing: mount or create it first (nasd never creates the volume, so a missing disk is not mistaken for an empty one)", c.Volume)
	case err != nil:
		return fmt.Errorf("volume %s: %w", c.Volume, err)
	case !fi.IsDir():
		return fmt.Errorf("volume %s is not a directory", c.Volume)
	}
	if c.Listen != "" && net.ParseIP(c.Listen) == nil {
		return fmt.Errorf("--listen %q is not an IP address", c.Listen)
	}
	if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
		return fmt.Errorf("state dir %s: %w", c.StateDir, err)
	}
	return nil
}

// hostPort joins the listen address with a port.
func (c *Config) hostPort(port int) string {
	return net.JoinHostPort(c.Listen, fmt.Sprint(port))
}
