package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"ftnas/appliance/api"
	"ftnas/appliance/store"
	"ftnas/images/update"
	"ftnas/raid"
)

var _ api.UpdateBackend = (*backend)(nil)

// Update implements api.UpdateBackend: the bundle goes to the root slot
// the box is not running, which boots next on trial (package update).
// It holds the RAID manager's lock: no scrub, replacement, adoption or
// ESP sync runs meanwhile.
func (b *backend) Update(ctx context.Context, r io.Reader, req api.UpdateRequest) (api.UpdateResult, error) {
	rm := b.raidManager()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	md := &raid.Mdadm{Logger: rm.log}
	u := &update.Updater{
		Mdadm:   md,
		Adopter: &raid.Adopter{Mdadm: md, Block: os.DirFS("/sys/block"), ClassBlock: os.DirFS("/sys/class/block"), Logger: rm.log},
		Logger:  rm.log,
	}
	// A client that goes away mid-upload fails the read; once the bundle
	// is read, the switch finishes regardless.
	if req.AllowUnsigned {
		rm.log.Warn("update: the operator allows an unsigned bundle (allow_unsigned): honoured only if this box trusts no update key", "keys_dir", update.DefaultKeysDir)
	}
	res, err := u.Update(context.WithoutCancel(ctx), r, update.Options{Tries: req.Tries, AllowUnsigned: req.AllowUnsigned, AllowDowngrade: req.AllowDowngrade})
	if err != nil {
		if errors.Is(err, update.ErrFormat) || errors.Is(err, update.ErrDowngrade) {
			return api.UpdateResult{}, fmt.Errorf("%w: %w", store.ErrInvalid, err)
		}
		return api.UpdateResult{}, err
	}
	out := api.UpdateResult{
		Version: res.Version, Serial: res.Serial, RunningVersion: res.RunningVersion, RunningSerial: res.RunningSerial, Downgrade: res.Downgrade,
		SignedBy: res.SignedBy, Unverified: res.Unverified, RunningSlot: res.Running, Slot: res.Slot, Array: res.Array, Bytes: res.Bytes,
		SHA256: res.SHA256, BootFiles: res.BootFiles, Entry: res.Entry, Tries: res.Tries, ESPFrom: res.ESPFrom,
		ESPs: []api.RaidESPDisk{},
	}
	for _, d := range res.ESPs {
		out.ESPs = append(out.ESPs, api.RaidESPDisk{Disk: d.Disk, Before: d.Before, After: d.After, Copied: d.Copied})
	}
	return out, nil
}

// Firmware implements api.UpdateBackend: the root slots' state as the
// kernel command line and the ESP say. nasd not running from a root slot
// (a development machine) is no error: FromSlot is false and Why says
// why.
func (b *backend) Firmware(context.Context) (api.FirmwareStatus, error) {
	u := &update.Updater{Logger: b.raidManager().log}
	st, err := u.Status()
	if errors.Is(err, update.ErrNotSlot) {
		return api.FirmwareStatus{Why: err.Error()}, nil
	}
	if err != nil {
		return api.FirmwareStatus{}, err
	}
	out := api.FirmwareStatus{FromSlot: true, Running: st.Running, Booted: st.Booted, Next: st.Next, State: st.State, ESP: st.ESP,
		Version: st.Version, Serial: st.Serial, ReleaseError: st.ReleaseErr, Install: st.Install}
	for _, s := range st.Slots {
		out.Slots = append(out.Slots, api.FirmwareSlot{
			Slot: s.Slot, Entry: s.Entry, Preferred: s.Preferred, Trial: s.Trial, TriesLeft: s.TriesLeft,
			TriesDone: s.TriesDone, Failed: s.Failed, Running: s.Running, Next: s.Next,
		})
	}
	return out, nil
}
