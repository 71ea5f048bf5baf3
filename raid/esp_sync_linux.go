package raid

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// SyncESP makes every member disk's ESP a copy of from's (from "" picks
// the disk ChooseAdoptSource picks): run after the ESP of from was
// updated, or to check that the ESPs agree. The member disks are those
// with a partition in a running array (ESPSyncTargets); an ESP that
// hashes differently from from's is overwritten (opened exclusively, so
// never while mounted) and checked. Each disk's outcome is in the
// result; the error joins the disks that failed.
func (a *Adopter) SyncESP(ctx context.Context, from string) ([]ESPSync, error) {
	arrays, err := a.readArrays()
	if err != nil {
		return nil, err
	}
	disks, err := a.wholeDisks()
	if err != nil {
		return nil, err
	}
	if from == "" {
		if from, err = ChooseAdoptSource(arrays, disks, ""); err != nil {
			return nil, err
		}
	}
	return a.syncESPFrom(ctx, from, arrays, disks)
}

// syncESPFrom is SyncESP from a chosen disk, with the arrays and disks
// already read.
func (a *Adopter) syncESPFrom(ctx context.Context, from string, arrays []ArrayStatus, disks map[string][]string) ([]ESPSync, error) {
	if err := a.checkWholeDisk(from); err != nil {
		return nil, err
	}
	src, err := a.readTable(from)
	if err != nil {
		return nil, err
	}
	se, err := ESPEntry(src)
	if err != nil {
		return nil, err
	}
	ext := se.Extent(src.SectorSize)
	srcPath := filepath.Join(a.devDir(), strings.TrimPrefix(PartitionDevice(from, se.Number), "/dev/"))
	want, err := hashDevice(srcPath, Partition{Number: se.Number, Role: RoleESP, Size: ext.Size})
	if err != nil {
		return nil, fmt.Errorf("raid: ESP sync: %w", err)
	}
	out := []ESPSync{{Disk: from, Before: want, After: want}}
	var errs []error
	for _, d := range ESPSyncTargets(arrays, disks, from) {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		r, err := a.syncOne(src, d, srcPath, want)
		if err != nil && a.vanished(d) {
			// Pulled while being read: nothing to sync on it now, and
			// no reason to fail the others (an update's bless).
			a.logger().Warn("raid: ESP sync: disk went away; its ESP is left as it was", "disk", d, "from", from, "err", err)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("raid: ESP sync %s from %s: %w", d, from, err))
			continue
		}
		out = append(out, r)
		if r.Copied {
			a.logger().Info("raid: ESP re-copied", "disk", d, "from", from, "before", r.Before, "sha256", r.After)
		}
	}
	return out, errors.Join(errs...)
}

// SyncESPReturned brings the ESPs of member disks that came back (their
// partitions parts were just re-added) up to date: an update or a bless
// while they were away edited the other disks' ESPs only. The source is
// the disk ChooseAdoptSource picks among the others, never a returned
// one: with a write-intent bitmap its members are in sync again at once,
// and as the first name it could win a tie and spread its old ESP.
func (a *Adopter) SyncESPReturned(ctx context.Context, parts []string) ([]ESPSync, error) {
	arrays, err := a.readArrays()
	if err != nil {
		return nil, err
	}
	disks, err := a.wholeDisks()
	if err != nil {
		return nil, err
	}
	back := map[string]bool{}
	for _, p := range parts {
		back[p] = true
	}
	others := map[string][]string{}
	for d, ps := range disks {
		returned := back[d]
		for _, p := range ps {
			returned = returned || back[p]
		}
		if !returned {
			others[d] = ps
		}
	}
	from, err := ChooseAdoptSource(arrays, others, "")
	if err != nil {
		return nil, fmt.Errorf("raid: ESP sync after %v returned: %w", parts, err)
	}
	return a.syncESPFrom(ctx, from, arrays, disks)
}

func (a *Adopter) syncOne(src DiskTable, disk, srcPath, want string) (ESPSync, error) {
	r := ESPSync{Disk: disk}
	t, err := a.readTable(disk)
	if err != nil {
		return r, err
	}
	e, err := CheckESPExtents(src, t)
	if err != nil {
		return r, err
	}
	p := Partition{Number: e.Number, Role: RoleESP, Size: e.Extent(t.SectorSize).Size}
	dstPath := filepath.Join(a.devDir(), strings.TrimPrefix(PartitionDevice(disk, e.Number), "/dev/"))
	if r.Before, err = hashDevice(dstPath, p); err != nil {
		return r, err
	}
	if r.Before == want {
		r.After = want
		return r, nil
	}
	if r.After, err = copyPartition(srcPath, dstPath, p); err != nil {
		return r, err
	}
	r.Copied = true
	return r, nil
}

// hashDevice hashes the partition device path, p.Size bytes.
func hashDevice(path string, p Partition) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// Read what is on the disk, not an older cached copy.
	_ = unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0)
	p.Start = 0
	h, err := HashPartition(f, p)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}
