package appliance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/store"
	"ftnas/raid"

	"github.com/prometheus/client_golang/prometheus"
)

// raidManager serves the md arrays: their state from sysfs, scrubs by
// writing md/sync_action, member replacement through mdadm.
type raidManager struct {
	sys   fs.FS      // rooted at /sys
	attrs attrWriter // writes sysfs attributes, names relative to /sys
	md    raidAdmin
	// adopter partitions blank disks and adds them (nil: not available).
	adopter diskAdopter
	log     *slog.Logger
	mu      sync.Mutex // one change at a time

	schedMu  sync.Mutex
	checking map[string]bool // arrays the schedule last saw checking
}

// attrWriter writes a sysfs attribute; name is relative to /sys
// ("block/md0/md/sync_action").
type attrWriter interface {
	WriteAttr(name, value string) error
}

// sysfsWriter writes attributes below root (/sys on a live system). It
// never creates a file: an attribute that is missing is an error.
type sysfsWriter struct{ root string }

func (w sysfsWriter) WriteAttr(name, value string) error {
	if !fs.ValidPath(name) || name == "." {
		return fmt.Errorf("write sysfs attribute %q: bad name", name)
	}
	p := filepath.Join(w.root, filepath.FromSlash(name))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	return nil
}

// raidAdmin is the part of raid.Mdadm the manager uses.
type raidAdmin interface {
	Add(ctx context.Context, array, dev string) error
	Remove(ctx context.Context, array, dev string) error
	Replace(ctx context.Context, array, old, new string) error
}

var _ raidAdmin = (*raid.Mdadm)(nil)

// diskAdopter is the part of raid.Adopter the manager uses.
type diskAdopter interface {
	Adopt(ctx context.Context, disk, from string) (raid.AdoptResult, error)
	SyncESP(ctx context.Context, from string) ([]raid.ESPSync, error)
	SyncESPReturned(ctx context.Context, parts []string) ([]raid.ESPSync, error)
}

var _ diskAdopter = (*raid.Adopter)(nil)

// lockedAdopter is the hot-plug manager's adopter: rm's, under rm's lock,
// so an automatic adoption never runs beside an install, an update or a
// replacement (nasctl install onto blank disks attached while an array
// is degraded: the adoption would take a target disk half-way through
// its install, or the install one being adopted). The one that waited
// finds the disk no longer blank and leaves it.
type lockedAdopter struct{ rm *raidManager }

func (l lockedAdopter) Adopt(ctx context.Context, disk, from string) (raid.AdoptResult, error) {
	if l.rm.adopter == nil {
		return raid.AdoptResult{}, errors.New("raid: adopt: no adopter on this machine")
	}
	l.rm.mu.Lock()
	defer l.rm.mu.Unlock()
	return l.rm.adopter.Adopt(ctx, disk, from)
}

// SyncESPReturned is the hot-plug manager's ESP sync after a disk came
// back, under rm's lock like an update's.
func (l lockedAdopter) SyncESPReturned(ctx context.Context, parts []string) ([]raid.ESPSync, error) {
	if l.rm.adopter == nil {
		return nil, errors.New("raid: ESP sync: no adopter on this machine")
	}
	l.rm.mu.Lock()
	defer l.rm.mu.Unlock()
	return l.rm.adopter.SyncESPReturned(ctx, parts)
}

// newRaidManager serves the arrays of the sysfs mounted at root.
func newRaidManager(root string, md raidAdmin, log *slog.Logger) *raidManager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &raidManager{sys: os.DirFS(root), attrs: sysfsWriter{root: root}, md: md, log: log}
}

// raidManager returns the backend's RAID manager, made on first use over
// /sys and mdadm. runOnce calls it before serving, so that later calls
// only read the field.
func (b *backend) raidManager() *raidManager {
	if b.raid == nil {
		log := slog.Default()
		if b.cfg != nil && b.cfg.Log != nil {
			log = b.cfg.Log
		}
		md := &raid.Mdadm{Logger: log}
		b.raid = newRaidManager("/sys", md, log)
		b.raid.adopter = &raid.Adopter{Mdadm: md, Block: os.DirFS("/sys/block"), ClassBlock: os.DirFS("/sys/class/block"), Logger: log}
	}
	return b.raid
}

var _ api.RaidBackend = (*backend)(nil)

// RaidStatus implements api.RaidBackend.
func (b *backend) RaidStatus(context.Context) (api.RaidStatus, error) {
	arrays, err := b.raidManager().arrays()
	if err != nil {
		return api.RaidStatus{}, err
	}
	st := api.RaidStatus{Arrays: make([]api.RaidArray, 0, len(arrays))}
	for _, a := range arrays {
		out := apiRaidArray(a)
		if b.st != nil && redundant(a) {
			if t, ok := lastScrub(b.st, a.Name); ok {
				out.LastCheck = t
				if every := b.cfg.scrubEvery(); every > 0 {
					out.NextCheck = t.Add(every)
				}
			}
		}
		st.Arrays = append(st.Arrays, out)
	}
	return st, nil
}

// ScrubRaid implements api.RaidBackend. A check started by hand counts
// for the schedule too.
func (b *backend) ScrubRaid(ctx context.Context, array string) (api.RaidArray, error) {
	a, err := b.raidManager().scrub(ctx, array)
	if err == nil && b.st != nil {
		b.raidManager().noteScrub(b.st, array, time.Now())
	}
	return a, err
}

// ReplaceRaidMember implements api.RaidBackend.
func (b *backend) ReplaceRaidMember(ctx context.Context, array string, r api.RaidReplaceRequest) (api.RaidArray, error) {
	return b.raidManager().replace(ctx, array, r)
}

var _ api.RaidDiskBackend = (*backend)(nil)

// AdoptRaidDisk implements api.RaidDiskBackend.
func (b *backend) AdoptRaidDisk(ctx context.Context, r api.RaidAdoptRequest) (api.RaidAdoptResult, error) {
	return b.raidManager().adopt(ctx, r)
}

// SyncRaidESP implements api.RaidDiskBackend.
func (b *backend) SyncRaidESP(ctx context.Context, r api.RaidESPSyncRequest) (api.RaidESPSyncResult, error) {
	return b.raidManager().espSync(ctx, r)
}

// block is sysfs's block directory.
func (r *raidManager) block() (fs.FS, error) {
	return fs.Sub(r.sys, "block")
}

// arrays reads every md array. A system without md (or without
// /sys/block) has none; an array stopped while being read is left out.
func (r *raidManager) arrays() ([]raid.ArrayStatus, error) {
	block, err := r.block()
	if err != nil {
		return nil, fmt.Errorf("raid status: %w", err)
	}
	names, err := raid.ListArrays(block)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]raid.ArrayStatus, 0, len(names))
	for _, n := range names {
		a, err := raid.ReadArray(block, n)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// checkArrayName refuses names that are not md devices.
func checkArrayName(op, name string) error {
	if !strings.HasPrefix(name, "md") || len(name) > 32 || strings.ContainsAny(name, "/\\ \t\n") || strings.Contains(name, "..") {
		return fmt.Errorf("%w raid %s %q: not an md array name (like md0)", store.ErrInvalid, op, name)
	}
	return nil
}

// read reads one array for operation op; a missing array is ErrNotFound.
func (r *raidManager) read(op, name string) (raid.ArrayStatus, error) {
	if err := checkArrayName(op, name); err != nil {
		return raid.ArrayStatus{}, err
	}
	block, err := r.block()
	if err != nil {
		return raid.ArrayStatus{}, fmt.Errorf("raid %s %s: %w", op, name, err)
	}
	if _, err := fs.Stat(block, path.Join(name, "md")); errors.Is(err, fs.ErrNotExist) {
		return raid.ArrayStatus{}, fmt.Errorf("raid %s %s: %w: no such md array", op, name, store.ErrNotFound)
	}
	a, err := raid.ReadArray(block, name)
	if errors.Is(err, fs.ErrNotExist) {
		return raid.ArrayStatus{}, fmt.Errorf("raid %s %s: %w: the array was stopped: %v", op, name, store.ErrNotFound, err)
	}
	return a, err
}

// redundant reports whether md can check or rebuild the array's level.
func redundant(a raid.ArrayStatus) bool {
	switch a.Level {
	case "raid1", "raid4", "raid5", "raid6", "raid10":
		return true
	}
	return false
}

// scrub starts a check: md reads every copy and counts the sectors that
// differ (mismatch_cnt) without changing any.
func (r *raidManager) scrub(_ context.Context, name string) (api.RaidArray, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, err := r.read("scrub", name)
	if err != nil {
		return api.RaidArray{}, err
	}
	switch {
	case !a.State.Running():
		return api.RaidArray{}, fmt.Errorf("%w raid scrub %s: the array is not running (state %q)", store.ErrInvalid, name, a.State)
	case !redundant(a):
		return api.RaidArray{}, fmt.Errorf("%w raid scrub %s: %s keeps one copy of the data; there is nothing to compare", store.ErrInvalid, name, levelName(a))
	case a.Degraded > 0:
		return api.RaidArray{}, fmt.Errorf("%w raid scrub %s: the array is degraded (%d of %d members missing); replace the failed member first",
			store.ErrInvalid, name, a.Degraded, a.RaidDisks)
	case a.SyncAction != raid.SyncIdle:
		return api.RaidArray{}, fmt.Errorf("%w raid scrub %s: busy with %s%s; try again when it is idle",
			store.ErrInvalid, name, a.SyncAction, progressNote(a))
	}
	if err := r.attrs.WriteAttr(path.Join("block", name, "md", "sync_action"), string(raid.SyncCheck)); err != nil {
		return api.RaidArray{}, fmt.Errorf("raid scrub %s: %w", name, err)
	}
	r.log.Info("raid check started", "array", name, "level", a.Level)
	if a, err = r.read("scrub", name); err != nil {
		return api.RaidArray{}, err
	}
	return apiRaidArray(a), nil
}

func levelName(a raid.ArrayStatus) string {
	if a.Level == "" {
		return "the array's level"
	}
	return a.Level
}

func progressNote(a raid.ArrayStatus) string {
	if a.SyncCompleted.Running && !a.SyncCompleted.Delayed {
		return fmt.Sprintf(" (%.1f%% done)", 100*a.SyncCompleted.Fraction())
	}
	return ""
}

// devName accepts sdb2 or /dev/sdb2 and returns sdb2.
func devName(op, array, what, s string) (string, error) {
	n := strings.TrimPrefix(s, "/dev/")
	if n == "" || n == "." || n == ".." || len(n) > 64 || strings.ContainsAny(n, "/\\ \t\n") {
		return "", fmt.Errorf("%w raid %s %s: %s %q: want a block device name like sdb2", store.ErrInvalid, op, array, what, s)
	}
	return n, nil
}

// replace moves member old's data to the unused device new. A working
// member is replaced online (new is added as a spare and mdadm --replace
// copies old to it, then fails old); a faulty member or a spare is
// removed and new added in its place, which md rebuilds from the others.
func (r *raidManager) replace(ctx context.Context, name string, req api.RaidReplaceRequest) (api.RaidArray, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := checkArrayName("replace", name); err != nil {
		return api.RaidArray{}, err
	}
	old, err := devName("replace", name, "old", req.Old)
	if err != nil {
		return api.RaidArray{}, err
	}
	nw, err := devName("replace", name, "new", req.New)
	if err != nil {
		return api.RaidArray{}, err
	}
	if old == nw {
		return api.RaidArray{}, fmt.Errorf("%w raid replace %s: old and new are both %s", store.ErrInvalid, name, old)
	}
	a, err := r.read("replace", name)
	if err != nil {
		return api.RaidArray{}, err
	}
	if !a.State.Running() {
		return api.RaidArray{}, fmt.Errorf("%w raid replace %s: the array is not running (state %q)", store.ErrInvalid, name, a.State)
	}
	if !redundant(a) {
		return api.RaidArray{}, fmt.Errorf("%w raid replace %s: %s keeps one copy of the data; md cannot rebuild a member", store.ErrInvalid, name, levelName(a))
	}
	m, ok := a.Member(old)
	if !ok {
		return api.RaidArray{}, fmt.Errorf("raid replace %s: %w: %s is not a member (members: %s)", name, store.ErrNotFound, old, memberNames(a))
	}
	if _, ok := a.Member(nw); ok {
		return api.RaidArray{}, fmt.Errorf("%w raid replace %s: %s is already a member", store.ErrInvalid, name, nw)
	}
	for _, o := range a.Members {
		if o.Has("want_replacement") || o.Has("replacement") {
			return api.RaidArray{}, fmt.Errorf("%w raid replace %s: %s is already being replaced; wait until that finishes", store.ErrInvalid, name, o.Name)
		}
	}
	if _, err := fs.Stat(r.sys, path.Join("class", "block", nw)); errors.Is(err, fs.ErrNotExist) {
		return api.RaidArray{}, fmt.Errorf("raid replace %s: new device %s: %w: no such block device", name, nw, store.ErrNotFound)
	} else if err != nil {
		return api.RaidArray{}, fmt.Errorf("raid replace %s: new device %s: %w", name, nw, err)
	}
	all, err := r.arrays()
	if err != nil {
		return api.RaidArray{}, err
	}
	for _, o := range all {
		if _, ok := o.Member(nw); ok && o.Name != name {
			return api.RaidArray{}, fmt.Errorf("%w raid replace %s: %s is a member of %s", store.ErrInvalid, name, nw, o.Name)
		}
	}
	working := m.Slot >= 0 && !m.Faulty()
	if working && a.Degraded > 0 {
		// Added to a degraded array, new would fill the empty slot at once
		// instead of waiting as a spare for --replace.
		return api.RaidArray{}, fmt.Errorf("%w raid replace %s: the array is degraded (%d of %d members missing) and %s is working; replace the failed member first",
			store.ErrInvalid, name, a.Degraded, a.RaidDisks, old)
	}
	dev, oldDev, newDev := "/dev/"+name, "/dev/"+old, "/dev/"+nw
	if working {
		if err := r.md.Add(ctx, dev, newDev); err != nil {
			return api.RaidArray{}, fmt.Errorf("raid replace %s %s with %s: add %s as a spare: %w", name, old, nw, nw, err)
		}
		if err := r.md.Replace(ctx, dev, oldDev, newDev); err != nil {
			err = fmt.Errorf("raid replace %s %s with %s: %w", name, old, nw, err)
			if rerr := r.md.Remove(ctx, dev, newDev); rerr != nil {
				err = errors.Join(err, fmt.Errorf("and taking the spare %s out again failed: %w", nw, rerr))
			}
			return api.RaidArray{}, err
		}
	} else {
		if err := r.md.Remove(ctx, dev, oldDev); err != nil {
			return api.RaidArray{}, fmt.Errorf("raid replace %s %s with %s: remove %s: %w", name, old, nw, old, err)
		}
		if err := r.md.Add(ctx, dev, newDev); err != nil {
			return api.RaidArray{}, fmt.Errorf("raid replace %s %s with %s: %s was removed, but adding %s failed: %w", name, old, nw, old, nw, err)
		}
	}
	r.log.Info("raid member replacement started", "array", name, "old", old, "new", nw, "online", working)
	if a, err = r.read("replace", name); err != nil {
		return api.RaidArray{}, err
	}
	return apiRaidArray(a), nil
}

// diskName accepts sdc or /dev/sdc and returns sdc.
func diskName(op, what, s string) (string, error) {
	n := strings.TrimPrefix(s, "/dev/")
	if n == "" || n == "." || n == ".." || len(n) > 64 || strings.ContainsAny(n, "/\\ \t\n") {
		return "", fmt.Errorf("%w raid %s: %s %q: want a disk name like sdc", store.ErrInvalid, op, what, s)
	}
	return n, nil
}

// adopt makes the blank disk r.Disk a member disk like r.From (see
// raid.Adopter.Adopt): partitioned the same, the ESP copied, each RAID
// partition added to its array, which md rebuilds online. Refusals are
// ErrInvalid and have written nothing; a missing disk is ErrNotFound.
func (r *raidManager) adopt(ctx context.Context, req api.RaidAdoptRequest) (api.RaidAdoptResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	disk, err := diskName("adopt", "disk", req.Disk)
	if err != nil {
		return api.RaidAdoptResult{}, err
	}
	from := ""
	if req.From != "" {
		if from, err = diskName("adopt", "from", req.From); err != nil {
			return api.RaidAdoptResult{}, err
		}
	}
	if r.adopter == nil {
		return api.RaidAdoptResult{}, errors.New("raid adopt: not available on this system")
	}
	// A client that goes away must not cut the adoption short between
	// two steps: every step is bounded, and half an adoption helps no one.
	res, err := r.adopter.Adopt(context.WithoutCancel(ctx), disk, from)
	out := api.RaidAdoptResult{Disk: res.Disk, From: res.From, ESPSHA256: res.ESPHash}
	for _, j := range res.Added {
		out.Added = append(out.Added, api.RaidAdoptJoin{Partition: strings.TrimPrefix(j.Device, "/dev/"), Array: j.Array})
	}
	switch {
	case errors.Is(err, raid.ErrAdoptRefused):
		return api.RaidAdoptResult{}, fmt.Errorf("%w %w", store.ErrInvalid, err)
	case errors.Is(err, fs.ErrNotExist):
		return api.RaidAdoptResult{}, fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case err != nil:
		if len(out.Added) > 0 {
			var done []string
			for _, j := range out.Added {
				done = append(done, j.Partition+" to "+j.Array)
			}
			err = fmt.Errorf("%w (already added and rebuilding: %s)", err, strings.Join(done, ", "))
		}
		r.log.Error("raid adopt failed", "disk", disk, "from", res.From, "added", len(out.Added), "err", err)
		return api.RaidAdoptResult{}, err
	}
	for _, j := range out.Added {
		a, err := r.read("adopt", j.Array)
		if err != nil {
			return api.RaidAdoptResult{}, err
		}
		out.Arrays = append(out.Arrays, apiRaidArray(a))
	}
	r.log.Info("raid disk adopted", "disk", disk, "from", res.From, "added", len(out.Added), "esp_sha256", res.ESPHash)
	return out, nil
}

// espSync makes every member disk's ESP a copy of req.From's (see
// raid.Adopter.SyncESP).
func (r *raidManager) espSync(ctx context.Context, req api.RaidESPSyncRequest) (api.RaidESPSyncResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	from := ""
	if req.From != "" {
		var err error
		if from, err = diskName("esp-sync", "from", req.From); err != nil {
			return api.RaidESPSyncResult{}, err
		}
	}
	if r.adopter == nil {
		return api.RaidESPSyncResult{}, errors.New("raid esp-sync: not available on this system")
	}
	res, err := r.adopter.SyncESP(context.WithoutCancel(ctx), from)
	switch {
	case errors.Is(err, raid.ErrAdoptRefused):
		return api.RaidESPSyncResult{}, fmt.Errorf("%w %w", store.ErrInvalid, err)
	case errors.Is(err, fs.ErrNotExist) && len(res) == 0:
		return api.RaidESPSyncResult{}, fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case err != nil:
		r.log.Error("raid ESP sync failed", "from", from, "disks_done", len(res), "err", err)
		return api.RaidESPSyncResult{}, err
	}
	out := api.RaidESPSyncResult{Disks: []api.RaidESPDisk{}}
	for _, d := range res {
		if out.From == "" {
			out.From = d.Disk
		}
		out.Disks = append(out.Disks, api.RaidESPDisk{Disk: d.Disk, Before: d.Before, After: d.After, Copied: d.Copied})
		if d.Copied {
			r.log.Info("raid ESP re-copied", "disk", d.Disk, "from", out.From, "sha256", d.After)
		}
	}
	return out, nil
}

func memberNames(a raid.ArrayStatus) string {
	if len(a.Members) == 0 {
		return "none"
	}
	names := make([]string, 0, len(a.Members))
	for _, m := range a.Members {
		names = append(names, m.Name)
	}
	return strings.Join(names, ", ")
}

// apiRaidArray is the wire form of an array: progress in percent and the
// time the running sync still needs at its current speed.
func apiRaidArray(a raid.ArrayStatus) api.RaidArray {
	out := api.RaidArray{
		Name: a.Name, Level: a.Level, State: string(a.State), RaidDisks: a.RaidDisks, Degraded: a.Degraded,
		SyncAction: string(a.SyncAction), SyncDelayed: a.SyncCompleted.Delayed, SyncSpeedKiB: a.SyncSpeed,
		ETASeconds: -1, MismatchCount: a.MismatchCnt, Members: make([]api.RaidMember, 0, len(a.Members)),
	}
	p := a.SyncCompleted
	if p.Running && !p.Delayed && p.Total > 0 {
		out.SyncProgress = math.Round(p.Fraction()*10000) / 100
		if a.SyncSpeed > 0 && p.Total >= p.Done {
			// sync_completed counts 512-byte sectors, sync_speed KiB/s.
			left := float64(p.Total-p.Done) / 2
			out.ETASeconds = int64(math.Ceil(left / float64(a.SyncSpeed)))
		}
	}
	for _, m := range a.Members {
		st := m.State
		if st == nil {
			st = []string{}
		}
		out.Members = append(out.Members, api.RaidMember{Name: m.Name, Slot: m.Slot, State: st, Errors: m.Errors})
	}
	return out
}

// --- metrics ---

// raidCollector exports the md arrays' health at scrape time.
type raidCollector struct {
	r                                      *raidManager
	degraded, progress, mismatches, faulty *prometheus.Desc
}

func newRaidCollector(r *raidManager) *raidCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("ftnas_raid_"+name, help, labels, nil)
	}
	return &raidCollector{
		r:          r,
		degraded:   d("array_degraded", "Members the md array is missing (0 when whole).", "array"),
		progress:   d("sync_progress", "Progress (0-1) of the md array's running resync, recovery, check or reshape; absent while idle.", "array", "action"),
		mismatches: d("mismatches", "Sectors the last check or repair found to differ between copies (md mismatch_cnt).", "array"),
		faulty:     d("member_faulty", "1 when md marked the member faulty.", "array", "member"),
	}
}

func (c *raidCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.degraded, c.progress, c.mismatches, c.faulty} {
		ch <- d
	}
}

func (c *raidCollector) Collect(ch chan<- prometheus.Metric) {
	arrays, err := c.r.arrays()
	if err != nil {
		c.r.log.Warn("raid metrics: read md arrays", "err", err)
		return
	}
	g := prometheus.GaugeValue
	for _, a := range arrays {
		ch <- prometheus.MustNewConstMetric(c.degraded, g, float64(a.Degraded), a.Name)
		ch <- prometheus.MustNewConstMetric(c.mismatches, g, float64(a.MismatchCnt), a.Name)
		if a.SyncCompleted.Running && a.SyncAction != raid.SyncIdle && a.SyncAction != "" {
			ch <- prometheus.MustNewConstMetric(c.progress, g, a.SyncCompleted.Fraction(), a.Name, string(a.SyncAction))
		}
		for _, m := range a.Members {
			v := 0.0
			if m.Faulty() {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.faulty, g, v, a.Name, m.Name)
		}
	}
}

// startHotplug runs raid's hot-plug Manager (uevents plus a periodic
// pass: fail and remove vanished members, re-add returning ones) while
// ctx lasts, when this machine has md arrays and mdadm. It returns at
// once otherwise, saying why at debug level.
func startHotplug(ctx context.Context, log *slog.Logger, autoAdopt bool, rm *raidManager) {
	log = log.With("service", "raid")
	arrays, _ := filepath.Glob("/sys/block/md*/md")
	if len(arrays) == 0 {
		log.Debug("raid hot-plug: no md arrays here")
		return
	}
	if _, err := exec.LookPath("mdadm"); err != nil {
		log.Warn("raid hot-plug: md arrays present but no mdadm; disks pulled or returned are not handled", "err", err)
		return
	}
	m := &raid.Manager{
		Mdadm: &raid.Mdadm{Logger: log}, Block: os.DirFS("/sys/block"), ClassBlock: os.DirFS("/sys/class/block"), Logger: log,
		AutoAdopt: autoAdopt, Adopter: lockedAdopter{rm}, ESPSyncer: lockedAdopter{rm},
	}
	go func() {
		if err := m.RunUevents(ctx); err != nil && ctx.Err() == nil {
			log.Error("raid hot-plug stopped", "err", err)
		}
	}()
	log.Info("raid hot-plug watching", "arrays", len(arrays), "auto_adopt", autoAdopt)
}
