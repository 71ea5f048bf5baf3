package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"ftnas/images/boot"
	"ftnas/images/esp"
	"ftnas/images/guest"
	"ftnas/raid"
)

// Updater updates the running box's inactive root slot and blesses the
// running one.
type Updater struct {
	Mdadm *raid.Mdadm
	// Adopter copies the edited ESP to the other member disks
	// (raid.Adopter.SyncESP).
	Adopter *raid.Adopter
	// SysBlock is /sys/block and SysClassBlock /sys/class/block ("" for
	// those), DevDir /dev ("" for it).
	SysBlock, SysClassBlock, DevDir string
	// Cmdline returns the kernel command line; nil reads /proc/cmdline.
	Cmdline func() ([]guest.Param, error)
	// LoaderVars returns systemd-boot's variables (ok false without
	// UEFI); nil reads efivarfs.
	LoaderVars func() (boot.LoaderVars, bool, error)
	// KeysDir holds the public keys whose signature a bundle needs
	// (LoadKeys); "" means DefaultKeysDir.
	KeysDir string
	// ReleaseFile is the running slot's release (ReadRelease), whose
	// serial a bundle must not be below; "" means DefaultReleaseFile.
	ReleaseFile string
	Logger      *slog.Logger

	mu sync.Mutex // one update or bless at a time
}

// Options tune an update.
type Options struct {
	// Tries is how many boots the new slot gets; 0 means DefaultTries.
	Tries int
	// AllowUnsigned writes a bundle without a signature check on a box
	// that trusts no key (no KeysDir, or none in it: a development
	// machine). A box that trusts keys ignores it.
	AllowUnsigned bool
	// AllowDowngrade writes a bundle older than the running release (a
	// lower serial, CheckDowngrade).
	AllowDowngrade bool
}

// Result is what Update did.
type Result struct {
	Version string
	// Serial is the bundle's; RunningVersion and RunningSerial the
	// running release's. Downgrade is set when the bundle is older and
	// was written because the operator allowed it.
	Serial         uint64
	RunningVersion string
	RunningSerial  uint64
	Downgrade      bool
	// SignedBy is the trusted key whose signature was checked; empty
	// when Unverified.
	SignedBy string
	// Unverified is set when the box trusts no key and the bundle was
	// written unchecked (Options.AllowUnsigned).
	Unverified bool
	// Running is the slot the box runs; Slot the one written.
	Running, Slot string
	// Install is the installation id the box booted with (ftnas.install=);
	// only its arrays are written. Empty on a box installed before ids.
	Install string
	// Array is the md device written (/dev/md126).
	Array string
	Bytes int64
	// SHA256 is the squashfs's hash, as read back from the array.
	SHA256 string
	// BootFiles is set when the slot's kernel and initrd were replaced.
	BootFiles bool
	// Entry is the target's loader entry now (ftnas-1-b+3.conf).
	Entry string
	Tries int
	// ESPFrom is the disk whose ESP was edited and copied to the others.
	ESPFrom string
	ESPs    []raid.ESPSync
}

// BlessResult is what Bless did.
type BlessResult struct {
	Slot string
	// Booted is the entry systemd-boot booted (its name when the loader
	// started: LoaderEntrySelected), Found the slot's entry on the ESP
	// before the bless (the loader has counted the try down: +3 became
	// +2-1), Entry the slot's entry now.
	Booted, Found, Entry string
	State                BlessState
	ESPFrom              string
	ESPs                 []raid.ESPSync
}

func (u *Updater) log() *slog.Logger {
	if u.Logger != nil {
		return u.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (u *Updater) devDir() string        { return or(u.DevDir, "/dev") }
func (u *Updater) sysBlock() string      { return or(u.SysBlock, "/sys/block") }
func (u *Updater) sysClassBlock() string { return or(u.SysClassBlock, "/sys/class/block") }

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

func (u *Updater) running() (string, error) {
	o, err := u.bootOptions()
	return o.Slot, err
}

// bootOptions reads the running slot and installation id from the kernel
// command line.
func (u *Updater) bootOptions() (boot.Options, error) {
	read := u.Cmdline
	if read == nil {
		read = guest.Cmdline
	}
	params, err := read()
	if err != nil {
		return boot.Options{}, fmt.Errorf("update: kernel command line: %w", err)
	}
	if _, ok := guest.Lookup(params, boot.ParamSlot); !ok {
		return boot.Options{}, fmt.Errorf("update: the kernel command line has no %s=: %w", boot.ParamSlot, ErrNotSlot)
	}
	o, err := boot.ParseOptions(params)
	if err != nil {
		return boot.Options{}, fmt.Errorf("update: %w", err)
	}
	return o, nil
}

func (u *Updater) loaderVars() (boot.LoaderVars, bool, error) {
	if u.LoaderVars != nil {
		return u.LoaderVars()
	}
	return boot.ReadLoaderVars()
}

// espDisk is a disk's ESP.
type espDisk struct {
	Disk   string
	Device string // /dev/vda1
	GUID   string // upper case
	Size   int64
}

// findESP returns the ESP to edit: the one systemd-boot was read from
// when it says so (LoaderDevicePartUUID), else the first disk's.
func (u *Updater) findESP(wantGUID string) (espDisk, error) {
	ents, err := os.ReadDir(u.sysBlock())
	if err != nil {
		return espDisk{}, fmt.Errorf("update: list disks: %w", err)
	}
	var found []espDisk
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if skipDisk(name) {
			continue
		}
		d, err := u.readESP(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		found = append(found, d)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Disk < found[j].Disk })
	for _, d := range found {
		if wantGUID != "" && d.GUID == strings.ToUpper(wantGUID) {
			return d, nil
		}
	}
	if len(found) > 0 {
		if wantGUID != "" {
			u.log().Warn("update: the ESP the loader was read from is not here; using another", "partuuid", wantGUID, "disk", found[0].Disk)
		}
		return found[0], nil
	}
	return espDisk{}, fmt.Errorf("update: no disk with an ESP found: %w", errors.Join(errs...))
}

func skipDisk(name string) bool {
	for _, p := range []string{"md", "loop", "ram", "zram", "sr", "fd", "dm-", "nbd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func (u *Updater) readESP(disk string) (espDisk, error) {
	b, err := os.ReadFile(filepath.Join(u.sysBlock(), disk, "queue", "logical_block_size"))
	if err != nil {
		return espDisk{}, fmt.Errorf("update: %s: %w", disk, err)
	}
	ss, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || ss <= 0 {
		return espDisk{}, fmt.Errorf("update: %s: logical block size %q", disk, b)
	}
	f, err := os.Open(filepath.Join(u.devDir(), disk))
	if err != nil {
		return espDisk{}, fmt.Errorf("update: %w", err)
	}
	defer f.Close()
	t, err := raid.ReadDiskTable(f, disk, ss)
	if err != nil {
		return espDisk{}, err
	}
	e, err := raid.ESPEntry(t)
	if err != nil {
		return espDisk{}, err
	}
	dev := filepath.Join(u.devDir(), strings.TrimPrefix(raid.PartitionDevice(disk, e.Number), "/dev/"))
	return espDisk{Disk: disk, Device: dev, GUID: strings.ToUpper(e.GUID), Size: e.Extent(ss).Size}, nil
}

// editESP opens d's ESP exclusively, runs edit on it and syncs it, then
// copies it to every other member disk.
func (u *Updater) editESP(ctx context.Context, d espDisk, edit func(*ESP) error) ([]raid.ESPSync, error) {
	f, err := os.OpenFile(d.Device, os.O_RDWR|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("update: open the ESP %s: %w", d.Device, err)
	}
	e, err := OpenESP(f, 0, d.Size)
	if err == nil {
		err = edit(e)
	}
	if serr := f.Sync(); err == nil && serr != nil {
		err = fmt.Errorf("update: sync the ESP %s: %w", d.Device, serr)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("update: close the ESP %s: %w", d.Device, cerr)
	}
	if err != nil {
		return nil, err
	}
	if u.Adopter == nil {
		return nil, nil
	}
	res, err := u.Adopter.SyncESP(ctx, d.Disk)
	if err != nil {
		return res, fmt.Errorf("update: copy the ESP of %s to the other disks: %w", d.Disk, err)
	}
	return res, nil
}

// Update writes the bundle r to the slot the box is not running and
// switches the boot entries to it (see the package documentation). It
// reads r once, in order.
func (u *Updater) Update(ctx context.Context, r io.Reader, o Options) (Result, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if o.Tries == 0 {
		o.Tries = DefaultTries
	}
	if o.Tries < 1 || o.Tries > MaxTries {
		return Result{}, fmt.Errorf("update: %d tries: want 1-%d", o.Tries, MaxTries)
	}
	h, err := ReadBundleHeader(r)
	if err != nil {
		return Result{}, err
	}
	m := h.Manifest
	res := Result{Version: m.Version, Serial: m.Serial, Tries: o.Tries, BootFiles: m.HasBootFiles()}
	// 0. The signature, before anything is touched.
	dir := or(u.KeysDir, DefaultKeysDir)
	keys, err := LoadKeysOrNone(dir)
	if err != nil {
		return res, err
	}
	trust, err := keys.Check(h, dir, o.AllowUnsigned)
	if err != nil {
		return res, err
	}
	if trust.Signed {
		res.SignedBy = trust.By.String()
		u.log().Info("update: bundle signature verified", "version", m.Version, "key", res.SignedBy)
	} else {
		res.Unverified = true
		u.log().Warn("update: WRITING AN UNVERIFIED BUNDLE: this box trusts no update key and the operator allowed an unsigned bundle",
			"version", m.Version, "keys_dir", dir, "signatures", len(h.Signatures), "format", h.Format)
	}
	// The serial, signed with the manifest: no replayed older bundle.
	if err := u.checkRelease(&res, m, o.AllowDowngrade); err != nil {
		return res, err
	}
	bo, err := u.bootOptions()
	if err != nil {
		return res, err
	}
	res.Running, res.Install = bo.Slot, bo.Install
	if res.Slot, err = Target(res.Running); err != nil {
		return res, err
	}
	lv, efi, err := u.loaderVars()
	if err != nil {
		return res, fmt.Errorf("update: %w", err)
	}
	if !efi {
		return res, errors.New("update: not booted by UEFI: the boot entries on the ESP do not decide what boots")
	}
	d, err := u.findESP(lv.ESP)
	if err != nil {
		return res, err
	}
	res.ESPFrom = d.Disk
	log := u.log().With("version", m.Version, "running", res.Running, "slot", res.Slot)

	// 1. Nothing boots the target while it is written.
	if _, err := u.editESP(ctx, d, func(e *ESP) error {
		es, err := e.Entries()
		if err != nil {
			return err
		}
		plan, err := PlanPrepare(es, res.Running, res.Slot)
		if err != nil {
			return err
		}
		if _, err := e.FixLoaderConf(); err != nil {
			return err
		}
		return e.Apply(plan)
	}); err != nil {
		return res, err
	}
	log.Info("update: slot disabled for writing", "esp", d.Disk)

	// 2. The squashfs onto the target's array, read back.
	dev, err := u.assemble(ctx, res.Slot, res.Install)
	if err != nil {
		return res, err
	}
	res.Array = dev
	rootfs, _ := m.Part(PartRootfs)
	if res.SHA256, err = writeVerify(r, rootfs, dev); err != nil {
		return res, err
	}
	res.Bytes = rootfs.Size
	log.Info("update: slot written and verified", "array", dev, "bytes", rootfs.Size, "sha256", res.SHA256)

	// 3. Kernel and initrd, when the bundle has them.
	var bootFiles []bootFile
	defer func() {
		for _, b := range bootFiles {
			os.Remove(b.tmp)
		}
	}()
	for _, name := range []string{PartKernel, PartInitrd} {
		p, ok := m.Part(name)
		if !ok {
			continue
		}
		tmp, err := spool(r, p)
		if err != nil {
			return res, err
		}
		dst := esp.KernelPath(res.Slot)
		if name == PartInitrd {
			dst = esp.InitrdPath(res.Slot)
		}
		bootFiles = append(bootFiles, bootFile{tmp: tmp, dst: dst, size: p.Size})
	}

	// 4. Switch.
	res.ESPs, err = u.editESP(ctx, d, func(e *ESP) error {
		for _, b := range bootFiles {
			f, err := os.Open(b.tmp)
			if err != nil {
				return fmt.Errorf("update: %w", err)
			}
			err = e.WriteFile(b.dst, f, b.size)
			f.Close()
			if err != nil {
				return err
			}
		}
		es, err := e.Entries()
		if err != nil {
			return err
		}
		plan, err := PlanSwitch(es, res.Running, res.Slot, o.Tries)
		if err != nil {
			return err
		}
		res.Entry = es[res.Slot].String()
		return e.Apply(plan)
	})
	if err != nil {
		return res, err
	}
	log.Info("update: slot boots next", "entry", res.Entry, "tries", o.Tries)
	return res, nil
}

// checkRelease refuses a bundle older than the running release unless
// allow (CheckDowngrade). An unreadable release file refuses every
// bundle unless allow: the box cannot tell what is older.
func (u *Updater) checkRelease(res *Result, m Manifest, allow bool) error {
	path := or(u.ReleaseFile, DefaultReleaseFile)
	running, found, err := ReadRelease(path)
	if err != nil {
		if !allow {
			return fmt.Errorf("update: cannot tell whether bundle %s is %w: %w (allow it with nasctl update --allow-downgrade)", Release{Version: m.Version, Serial: m.Serial}, ErrDowngrade, err)
		}
		u.log().Warn("update: the running release is unreadable; writing the bundle as the operator allowed a downgrade", "err", err)
		res.Downgrade = true
		return nil
	}
	res.RunningVersion, res.RunningSerial = running.Version, running.Serial
	d, err := CheckDowngrade(running, m, allow)
	if err != nil {
		return err
	}
	if !found {
		u.log().Info("update: the running slot has no release file (built before serials): any serial is newer", "file", path)
	}
	if d.Older {
		res.Downgrade = true
		u.log().Warn("update: DOWNGRADE allowed by the operator", "running", running.String(), "bundle", d.Bundle.String())
	}
	return nil
}

type bootFile struct {
	tmp, dst string
	size     int64
}

// spool copies part p from r into a temporary file, checked.
func spool(r io.Reader, p Part) (string, error) {
	f, err := os.CreateTemp("", "ftnas-update-"+p.Name+"-*")
	if err != nil {
		return "", fmt.Errorf("update: %w", err)
	}
	err = ReadPart(r, p, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// assemble returns the device of slot's root array, assembling it from
// the partitions named for it when it is not running. With install set
// (the box booted with ftnas.install=), only that installation's array
// counts: another box's disks attached here (a moved disk, an installer
// medium) carry arrays of the same names, and writing the update onto
// one of them would leave this box's slot as it was and wreck theirs.
func (u *Updater) assemble(ctx context.Context, slot, install string) (string, error) {
	name := boot.ArrayName(slot)
	link := filepath.Join(u.devDir(), "md", name)
	if dev, err := filepath.EvalSymlinks(link); err == nil {
		if install != "" {
			st, err := raid.ReadArray(os.DirFS(u.sysBlock()), filepath.Base(dev))
			if err != nil {
				return "", fmt.Errorf("update: %s (%s): cannot tell whose array it is: %w", name, dev, err)
			}
			if err := boot.CheckInstall(ctx, u.Mdadm, u.devDir(), st, name, install); err != nil {
				return "", fmt.Errorf("update: refusing to write %s: %w", dev, err)
			}
		}
		return dev, nil
	}
	devs, err := boot.ScanPartitions(u.sysClassBlock(), name)
	if err != nil {
		return "", fmt.Errorf("update: %w", err)
	}
	var cands []boot.Candidate
	for _, d := range devs {
		sb, err := u.Mdadm.Examine(ctx, d)
		if err != nil {
			u.log().Warn("update: examine", "device", d, "err", err)
			continue
		}
		cands = append(cands, boot.Candidate{Device: d, SB: sb})
	}
	g, ok := boot.ChooseIn(cands, name, install)
	if !ok {
		of := ""
		if install != "" {
			of = " of installation " + install
		}
		return "", fmt.Errorf("update: no member of %s%s found (partitions named %s: %v)", name, of, name, devs)
	}
	if err := u.Mdadm.Assemble(ctx, link, g.Devices, true); err != nil {
		return "", fmt.Errorf("update: assemble %s from %v: %w", name, g.Devices, err)
	}
	dev, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", fmt.Errorf("update: %s assembled, but %w", name, err)
	}
	u.log().Info("update: array assembled", "array", name, "device", dev, "members", g.Devices)
	return dev, nil
}

// writeVerify writes part p from r onto dev (opened exclusively: never a
// mounted slot), syncs, drops the cached copy and hashes what the device
// returns.
func writeVerify(r io.Reader, p Part, dev string) (string, error) {
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("update: open %s: %w", dev, err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", fmt.Errorf("update: size of %s: %w", dev, err)
	}
	if p.Size > size {
		return "", fmt.Errorf("update: the bundle's %s of %d bytes does not fit %s (%d bytes)", p.Name, p.Size, dev, size)
	}
	if err := ReadPart(r, p, io.NewOffsetWriter(f, 0)); err != nil {
		return "", fmt.Errorf("%w (written to %s, which now holds no bootable slot)", err, dev)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("update: sync %s: %w", dev, err)
	}
	_ = unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0)
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, p.Size)); err != nil {
		return "", fmt.Errorf("update: read back %s: %w", dev, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != p.SHA256 {
		return "", fmt.Errorf("update: read back %s: sha256 %s, wrote %s", dev, got, p.SHA256)
	}
	return got, nil
}

// Bless is called by the running slot once it works: its entry loses
// its boot counter, and the ESP the loader booted from (where
// systemd-boot counted) is copied to every member disk, so all ESPs are
// identical again.
func (u *Updater) Bless(ctx context.Context) (BlessResult, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var res BlessResult
	var err error
	if res.Slot, err = u.running(); err != nil {
		return res, err
	}
	lv, efi, err := u.loaderVars()
	if err != nil {
		return res, fmt.Errorf("update: bless: %w", err)
	}
	if !efi {
		return res, errors.New("update: bless: not booted by UEFI")
	}
	res.Booted = lv.Entry
	d, err := u.findESP(lv.ESP)
	if err != nil {
		return res, err
	}
	res.ESPFrom = d.Disk
	res.ESPs, err = u.editESP(ctx, d, func(e *ESP) error {
		es, err := e.Entries()
		if err != nil {
			return err
		}
		plan, state, err := PlanBless(es, res.Slot)
		if err != nil {
			return err
		}
		res.State, res.Found = state, es[res.Slot].String()
		if len(plan) > 0 {
			res.Found = plan[0].From
		}
		res.Entry = es[res.Slot].String()
		return e.Apply(plan)
	})
	if err != nil {
		return res, err
	}
	u.log().Info("update: bless", "slot", res.Slot, "booted", res.Booted, "entry", res.Entry, "state", res.State)
	return res, nil
}

// Status reads the firmware's state: the running slot (from the kernel
// command line), the entry the loader booted, and every slot's loader
// entry on the ESP the loader was read from (SlotStates). It changes
// nothing; the ESP is opened read-only.
func (u *Updater) Status() (Status, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	bo, err := u.bootOptions()
	if err != nil {
		return Status{}, err
	}
	running := bo.Slot
	lv, efi, err := u.loaderVars()
	if err != nil {
		return Status{}, fmt.Errorf("update: status: %w", err)
	}
	if !efi {
		lv = boot.LoaderVars{}
	}
	d, err := u.findESP(lv.ESP)
	if err != nil {
		return Status{}, err
	}
	f, err := os.Open(d.Device)
	if err != nil {
		return Status{}, fmt.Errorf("update: status: open the ESP %s: %w", d.Device, err)
	}
	defer f.Close()
	e, err := OpenESP(f, 0, d.Size)
	if err != nil {
		return Status{}, fmt.Errorf("update: status: %w", err)
	}
	es, err := e.Entries()
	if err != nil {
		return Status{}, fmt.Errorf("update: status: %w", err)
	}
	st := SlotStates(es, running, lv.Entry)
	st.ESP, st.Install = d.Disk, bo.Install
	if rel, _, err := ReadRelease(or(u.ReleaseFile, DefaultReleaseFile)); err != nil {
		st.ReleaseErr = err.Error()
	} else {
		st.Version, st.Serial = rel.Version, rel.Serial
	}
	return st, nil
}
