package raid

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"
)

// Manager reacts to disks coming and going: on every evaluation it reads
// the arrays and the block devices present, asks Decide what to do and
// applies it with mdadm. Run evaluates on each trigger (uevents, see
// RunUevents on Linux) and every Interval.
type Manager struct {
	Mdadm *Mdadm
	// Block is /sys/block and ClassBlock /sys/class/block (os.DirFS on a
	// live system).
	Block, ClassBlock fs.FS
	// DevDir holds the device nodes; "" means /dev.
	DevDir string
	// Interval between evaluations without a trigger; 0 means 30 s.
	Interval time.Duration
	// RetryDelay is how soon an evaluation whose actions failed is
	// repeated (md refuses to remove a member still busy with I/O);
	// 0 means 2 s.
	RetryDelay time.Duration
	Logger     *slog.Logger
	// OnAction, when set, is told about every action applied and its
	// outcome.
	OnAction func(Action, error)
	// After is time.After; tests replace it.
	After func(time.Duration) <-chan time.Time
	// AutoAdopt, off by default, adopts a blank whole disk (Adopter,
	// from the healthiest member disk) while some array is degraded;
	// see AdoptCandidate. A disk the Adopter refuses (too small, not
	// quite blank) or fails on is not tried again while present.
	AutoAdopt bool
	// Adopter adopts for AutoAdopt; nil means an Adopter over Mdadm,
	// Block, ClassBlock and DevDir.
	Adopter DiskAdopter
	// ESPSyncer brings the ESPs of disks whose members were re-added up
	// to date; nil means an Adopter as for Adopter.
	ESPSyncer ESPSyncer

	lastBlank, lastForeign, lastFaulty, lastWithheld string
	adoptSkip                                        map[string]bool
	// kicked are devices seen faulty in an array while present (see
	// HotplugDevice.Kicked), until they go away.
	kicked map[string]bool
}

func (m *Manager) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (m *Manager) devDir() string {
	if m.DevDir != "" {
		return m.DevDir
	}
	return "/dev"
}

func (m *Manager) after(d time.Duration) <-chan time.Time {
	if m.After != nil {
		return m.After(d)
	}
	return time.After(d)
}

// Run evaluates at once, then after every trigger, every Interval and,
// after a failed action, after RetryDelay, until ctx ends. Failures are
// logged, not returned: the next evaluation tries again. It returns
// ctx's error.
func (m *Manager) Run(ctx context.Context, triggers <-chan struct{}) error {
	interval, retryDelay := m.Interval, m.RetryDelay
	if interval <= 0 {
		interval = 30 * time.Second
	}
	if retryDelay <= 0 {
		retryDelay = 2 * time.Second
	}
	next := m.after(interval)
	for {
		var retry <-chan time.Time
		rep, err := m.Evaluate(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			m.logger().Warn("raid: hotplug evaluation incomplete", "err", err)
		}
		if len(rep.Failed) > 0 {
			// A device that cannot be examined waits for the next
			// trigger; a failed action is retried soon.
			retry = m.after(retryDelay)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-triggers:
		case <-next:
			next = m.after(interval)
		case <-retry:
		}
	}
}

// Evaluate reads the state, decides and applies the actions once. The
// error joins whatever failed; the report is Decide's.
func (m *Manager) Evaluate(ctx context.Context) (HotplugReport, error) {
	arrays, devices, gatherErr := m.Gather(ctx)
	rep := Decide(arrays, devices)
	log := m.logger()
	var errs []error
	if gatherErr != nil {
		errs = append(errs, gatherErr)
	}
	for _, a := range rep.Actions {
		err := m.apply(ctx, a)
		if err != nil {
			log.Error("raid: hotplug action failed", "action", string(a.Kind), "array", a.Array, "device", a.Device, "reason", a.Reason, "err", err)
			errs = append(errs, err)
			rep.Failed = append(rep.Failed, a)
		} else {
			log.Info("raid: hotplug action", "action", string(a.Kind), "array", a.Array, "device", a.Device, "reason", a.Reason)
		}
		if m.OnAction != nil {
			m.OnAction(a, err)
		}
	}
	m.syncReturned(ctx, rep)
	if m.AutoAdopt {
		if err := m.autoAdopt(ctx, arrays, devices, rep); err != nil {
			errs = append(errs, err)
		}
	}
	if s := strings.Join(rep.Blank, ","); s != m.lastBlank {
		m.lastBlank = s
		if s != "" {
			log.Info("raid: blank devices present; replacing a member with one is an operator action", "devices", rep.Blank)
		}
	}
	m.noteKicked(arrays, devices, rep)
	if s := strings.Join(rep.Faulty, ","); s != m.lastFaulty {
		m.lastFaulty = s
		if s != "" {
			log.Warn("raid: md kicked members whose disks are still present (I/O errors); the arrays run without them until the disks are replaced",
				"members", rep.Faulty)
		}
	}
	if s := strings.Join(rep.Withheld, ","); s != m.lastWithheld {
		m.lastWithheld = s
		if s != "" {
			log.Warn("raid: not re-adding devices md kicked for I/O errors", "devices", rep.Withheld)
		}
	}
	if s := strings.Join(rep.Foreign, ","); s != m.lastForeign {
		m.lastForeign = s
		if s != "" {
			log.Warn("raid: devices carry md superblocks of no array missing them; left alone", "devices", rep.Foreign)
		}
	}
	return rep, errors.Join(errs...)
}

// noteKicked remembers the devices of rep.Faulty and forgets those no
// longer present or detached (pulled: a disk plugged in later, even
// under the same name, is a new chance).
func (m *Manager) noteKicked(arrays []HotplugArray, devices []HotplugDevice, rep HotplugReport) {
	if m.kicked == nil {
		m.kicked = map[string]bool{}
	}
	present := map[string]bool{}
	for _, d := range devices {
		present[d.Name] = true
	}
	for _, a := range arrays {
		for _, d := range a.Detached {
			present[d] = false
		}
	}
	for d := range m.kicked {
		if !present[d] {
			delete(m.kicked, d)
		}
	}
	for _, f := range rep.Faulty {
		m.kicked[f[strings.IndexByte(f, '/')+1:]] = true
	}
}

// ESPSyncer brings the ESPs of returned member disks up to date (see
// Adopter.SyncESPReturned).
type ESPSyncer interface {
	SyncESPReturned(ctx context.Context, parts []string) ([]ESPSync, error)
}

var _ ESPSyncer = (*Adopter)(nil)

// syncReturned copies the ESP onto the disks whose members rep re-added
// (they missed any update or bless made while away). A failure is
// logged, not retried: the arrays are whole again either way, and the
// next update's or bless's ESP sync covers the disk.
func (m *Manager) syncReturned(ctx context.Context, rep HotplugReport) {
	var parts []string
	for _, a := range rep.Actions {
		if a.Kind == ActReAdd && !slices.Contains(rep.Failed, a) && !slices.Contains(parts, a.Device) {
			parts = append(parts, a.Device)
		}
	}
	if len(parts) == 0 {
		return
	}
	s := m.ESPSyncer
	if s == nil {
		s = &Adopter{Mdadm: m.Mdadm, Block: m.Block, ClassBlock: m.ClassBlock, DevDir: m.DevDir, Logger: m.Logger}
	}
	log := m.logger()
	res, err := s.SyncESPReturned(ctx, parts)
	switch {
	case errors.Is(err, ErrAdoptRefused):
		log.Info("raid: members re-added; no ESP to bring up to date", "members", parts, "why", err)
	case err != nil:
		log.Warn("raid: members re-added, but their disks' ESPs were not brought up to date", "members", parts, "err", err)
	default:
		var copied []string
		for _, r := range res {
			if r.Copied {
				copied = append(copied, r.Disk)
			}
		}
		log.Info("raid: ESPs checked after members returned", "members", parts, "recopied", copied)
	}
}

// autoAdopt adopts AdoptCandidate's disk, if any.
func (m *Manager) autoAdopt(ctx context.Context, arrays []HotplugArray, devices []HotplugDevice, rep HotplugReport) error {
	if m.adoptSkip == nil {
		m.adoptSkip = map[string]bool{}
	}
	present := map[string]bool{}
	for _, d := range devices {
		present[d.Name] = true
	}
	for d := range m.adoptSkip {
		if !present[d] {
			delete(m.adoptSkip, d) // unplugged: a new disk may take its name
		}
	}
	disk := AdoptCandidate(arrays, devices, rep, m.adoptSkip)
	if disk == "" {
		return nil
	}
	ad := m.Adopter
	if ad == nil {
		ad = &Adopter{Mdadm: m.Mdadm, Block: m.Block, ClassBlock: m.ClassBlock, DevDir: m.DevDir, Logger: m.Logger}
	}
	log := m.logger()
	log.Info("raid: blank disk present while an array is degraded; adopting it", "disk", disk)
	res, err := ad.Adopt(ctx, disk, "")
	if err != nil {
		m.adoptSkip[disk] = true
		if errors.Is(err, ErrAdoptRefused) {
			log.Warn("raid: blank disk not adopted", "disk", disk, "err", err)
			return nil
		}
		log.Error("raid: adopting blank disk failed", "disk", disk, "added", len(res.Added), "err", err)
		return err
	}
	log.Info("raid: disk adopted; md rebuilds it", "disk", disk, "from", res.From, "added", len(res.Added))
	return nil
}

func (m *Manager) apply(ctx context.Context, a Action) error {
	array := path.Join(m.devDir(), a.Array)
	switch a.Kind {
	case ActFail:
		// mdadm takes a member's kernel name for --fail and --remove and
		// finds it through sysfs, which works when /dev/NAME is gone.
		return m.Mdadm.Fail(ctx, array, a.Device)
	case ActRemove:
		return m.Mdadm.Remove(ctx, array, a.Device)
	case ActReAdd:
		return m.Mdadm.ReAdd(ctx, array, path.Join(m.devDir(), a.Device))
	}
	return fmt.Errorf("raid: hotplug: unknown action %q", a.Kind)
}

// Gather reads the arrays from Block and the present block devices from
// ClassBlock, examining every device that is not an array member. A
// device that cannot be examined is left out (and the error returned
// with what could be read).
func (m *Manager) Gather(ctx context.Context) ([]HotplugArray, []HotplugDevice, error) {
	if m.Mdadm == nil || m.Block == nil || m.ClassBlock == nil {
		return nil, nil, errors.New("raid: hotplug: Manager needs Mdadm, Block and ClassBlock")
	}
	var errs []error
	names, err := ListArrays(m.Block)
	if err != nil {
		return nil, nil, err
	}
	var arrays []HotplugArray
	members := map[string]bool{}
	for _, n := range names {
		st, err := ReadArray(m.Block, n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		uuid, err := readAttr(m.Block, path.Join(n, "md", "uuid"))
		if err != nil {
			errs = append(errs, fmt.Errorf("raid: read array %s: uuid: %w", n, err))
		}
		a := HotplugArray{Status: st, UUID: uuid}
		for _, mem := range st.Members {
			// md links each member to its block device; the link stops
			// resolving when the device is deleted.
			if _, err := fs.Stat(m.Block, path.Join(n, "md", "dev-"+mem.Name, "block", "dev")); err != nil {
				a.Detached = append(a.Detached, mem.Name)
			}
			members[mem.Name] = true
		}
		arrays = append(arrays, a)
	}
	entries, err := fs.ReadDir(m.ClassBlock, ".")
	if err != nil {
		return arrays, nil, errors.Join(append(errs, fmt.Errorf("raid: hotplug: list block devices: %w", err))...)
	}
	var devices []HotplugDevice
	for _, e := range entries {
		name := e.Name()
		if skipDevice(name) {
			continue
		}
		if members[name] {
			devices = append(devices, HotplugDevice{Name: name})
			continue
		}
		if !m.candidate(name) {
			continue
		}
		sb, err := m.Mdadm.Examine(ctx, path.Join(m.devDir(), name))
		if err != nil {
			errs = append(errs, fmt.Errorf("raid: hotplug: examine %s: %w", name, err))
			continue
		}
		_, perr := fs.Stat(m.ClassBlock, path.Join(name, "partition"))
		devices = append(devices, HotplugDevice{Name: name, Superblock: sb, Partition: perr == nil, Kicked: m.kicked[name]})
	}
	return arrays, devices, errors.Join(errs...)
}

// skipDevice reports block devices that are never md members here.
func skipDevice(name string) bool {
	for _, p := range [...]string{"md", "loop", "ram", "zram", "sr", "fd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// candidate reports whether a non-member device could be (or become) an
// array member: it has a size, nothing holds it (device mapper, another
// array) and it is not a disk divided into partitions.
func (m *Manager) candidate(name string) bool {
	if s, err := readAttr(m.ClassBlock, path.Join(name, "size")); err != nil || s == "" || s == "0" {
		return false
	}
	if hs, err := fs.ReadDir(m.ClassBlock, path.Join(name, "holders")); err == nil && len(hs) > 0 {
		return false
	}
	sub, err := fs.ReadDir(m.ClassBlock, name)
	if err != nil {
		return false
	}
	for _, e := range sub {
		if strings.HasPrefix(e.Name(), name) {
			if _, err := fs.Stat(m.ClassBlock, path.Join(name, e.Name(), "partition")); err == nil {
				return false
			}
		}
	}
	return true
}
