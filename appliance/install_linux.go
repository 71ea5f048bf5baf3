package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"

	"ftnas/appliance/api"
	"ftnas/appliance/store"
	"ftnas/images/install"
	"ftnas/images/update"
	"ftnas/raid"
)

var _ api.InstallBackend = (*backend)(nil)

// Install implements api.InstallBackend: the bundle is installed onto
// blank disks (package install), which then boot a box of their own. It
// holds the RAID manager's lock, like an update.
func (b *backend) Install(ctx context.Context, r io.Reader, req api.InstallRequest) (api.InstallResult, error) {
	rm := b.raidManager()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	level, err := install.ParseLevel(req.DataLevel)
	if err != nil {
		return api.InstallResult{}, fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	if req.AllowUnsigned {
		rm.log.Warn("install: the operator allows an unsigned bundle (allow_unsigned): honoured only if this box trusts no update key", "keys_dir", update.DefaultKeysDir)
	}
	in := &install.Installer{Mdadm: &raid.Mdadm{Logger: rm.log}, Logger: rm.log}
	// Once the bundle is being read, the install finishes regardless of
	// the client.
	res, err := in.Install(context.WithoutCancel(ctx), r, install.Options{Disks: req.Disks, DataLevel: level, AllowUnsigned: req.AllowUnsigned})
	if err != nil {
		if errors.Is(err, update.ErrFormat) || errors.Is(err, install.ErrRefused) {
			return api.InstallResult{}, fmt.Errorf("%w: %w", store.ErrInvalid, err)
		}
		return api.InstallResult{}, err
	}
	out := api.InstallResult{ID: res.ID, Version: res.Version, SignedBy: res.SignedBy, Unverified: res.Unverified, Disks: res.Disks,
		Bytes: res.Bytes, SHA256: res.SHA256, BootFiles: res.BootFiles, ESPHash: res.ESPHash, Cmdline: res.Cmdline}
	for _, a := range res.Arrays {
		out.Arrays = append(out.Arrays, api.InstallArray{Role: a.Role, Name: a.Name, UUID: a.UUID, Level: string(a.Level), Members: a.Members, Size: a.Size})
	}
	return api.NormInstallResult(out), nil
}
