package smb

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteConfig atomically replaces path with data: it writes a temporary
// file in the same directory, fsyncs it, renames it over path and fsyncs
// the directory. Readers see the old or the new file, never a mix.
func WriteConfig(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("smb: write config %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("smb: write config %s: %w", path, err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("smb: write config %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("smb: write config %s: fsync: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("smb: write config %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("smb: write config %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("smb: write config %s: open dir: %w", path, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("smb: write config %s: fsync dir: %w", path, err)
	}
	return nil
}

// MakeDirs creates smbd's private tree under c.StateDir (smbd refuses to
// start without it) and c.ProbeDir. The private and log directories are
// owner-only. Share paths are the caller's business.
func MakeDirs(c Config) error {
	if err := checkPath("state dir", c.StateDir); err != nil {
		return err
	}
	type dir struct {
		path string
		mode os.FileMode
	}
	p := PathsFor(c.StateDir)
	dirs := []dir{
		{p.Root, 0o755},
		{p.Pid, 0o755},
		{p.Lock, 0o755},
		{p.State, 0o755},
		{p.Cache, 0o755},
		{p.Private, 0o700},
		{p.Ncalrpc, 0o755},
		{p.Log, 0o700},
	}
	if c.ProbeDir != "" {
		if err := checkPath("probe dir", c.ProbeDir); err != nil {
			return err
		}
		dirs = append(dirs, dir{c.ProbeDir, 0o755})
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return fmt.Errorf("smb: make dir %s: %w", d.path, err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return fmt.Errorf("smb: make dir %s: %w", d.path, err)
		}
	}
	return nil
}
