package install

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"ftnas/images/boot"
	"ftnas/images/esp"
	"ftnas/images/guest"
	"ftnas/images/update"
	"ftnas/raid"
)

// Install reads the bundle r once, in order, and installs it onto the
// disks: the signature is checked first (as update.Updater.Update does),
// then the disks (PlanInstall); a refusal wraps ErrRefused or
// update.ErrFormat and has written nothing. Then every disk gets the
// layout's GPT, the arrays are created (/dev/md/ID-ROLE, homehost ID),
// the slot image is written to root A and read back, copied to root B and
// checked, the state and data arrays' first MiB are zeroed, every disk
// gets the same ESP (systemd-boot, both slots' entries with
// ftnas.install=ID, kernel and initrd from the bundle or else the running
// slot's), and the arrays are stopped.
func (in *Installer) Install(ctx context.Context, r io.Reader, o Options) (res Result, err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.Mdadm == nil {
		return res, errors.New("install: Installer needs Mdadm")
	}
	h, err := update.ReadBundleHeader(r)
	if err != nil {
		return res, err
	}
	m := h.Manifest
	res.Version = m.Version
	dir := or(in.KeysDir, update.DefaultKeysDir)
	keys, err := update.LoadKeysOrNone(dir)
	if err != nil {
		return res, err
	}
	trust, err := keys.Check(h, dir, o.AllowUnsigned)
	if err != nil {
		return res, err
	}
	if trust.Signed {
		res.SignedBy = trust.By.String()
	} else {
		res.Unverified = true
		in.log().Warn("install: INSTALLING AN UNVERIFIED BUNDLE: this box trusts no update key and the operator allowed an unsigned bundle",
			"version", m.Version, "keys_dir", dir)
	}
	rootfs, ok := m.Part(update.PartRootfs)
	if !ok {
		return res, fmt.Errorf("install: bundle %s has no %s", m.Version, update.PartRootfs)
	}

	// What the box runs from.
	running, err := in.runningSlot()
	if err != nil {
		return res, err
	}
	runsFrom, err := in.runsFrom()
	if err != nil {
		return res, err
	}
	// The disks, refused before anything else is read.
	var disks []Disk
	for _, n := range o.Disks {
		d, err := in.inspect(strings.TrimPrefix(n, "/dev/"), runsFrom)
		if err != nil {
			return res, err
		}
		disks = append(disks, d)
	}
	if _, err := CheckDisks(disks, o.DataLevel); err != nil {
		return res, err
	}
	src, err := in.runningESP(runsFrom)
	if err != nil {
		return res, err
	}
	for i := range disks {
		if disks[i].Name == src.disk {
			disks[i].RunsFrom = "it holds the ESP the box booted from, " + src.device
		}
	}
	cur, err := in.readRunningESP(src, running)
	if err != nil {
		return res, err
	}

	rnd := in.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	id, err := NewID(rnd)
	if err != nil {
		return res, err
	}
	plan, err := PlanInstall(Request{Disks: disks, DataLevel: o.DataLevel, Layout: LayoutFrom(src.table), ID: id,
		RootfsSize: rootfs.Size, Cmdline: cur.options})
	if err != nil {
		return res, err
	}
	res.ID, res.Cmdline = id, plan.Cmdlines["a"]
	for _, d := range plan.Layout.Disks {
		res.Disks = append(res.Disks, d.Disk)
	}
	log := in.log().With("install", id, "version", m.Version)
	log.Info("install: planned", "disks", res.Disks, "data_level", plan.Layout.Arrays[len(plan.Layout.Arrays)-1].Level)

	// Partition every disk (opened exclusively: nothing holds it). From
	// the first table written on, a failed install leaves the disks
	// blank again (after the arrays are stopped, below), so it can be
	// tried again, or the disks adopted, with no wiping by hand.
	var touched []int
	defer func() {
		if err == nil || len(touched) == 0 {
			return
		}
		var wiped []string
		for _, i := range touched {
			if werr := in.wipe(plan.Layout.Disks[i], disks[i]); werr != nil {
				err = errors.Join(err, werr)
				continue
			}
			wiped = append(wiped, disks[i].Name)
		}
		in.log().Warn("install: failed; disks wiped blank again", "install", id, "wiped", wiped, "err", err)
	}()
	for i, d := range plan.Layout.Disks {
		wrote, err := in.partition(ctx, d, disks[i])
		if wrote {
			touched = append(touched, i)
		}
		if err != nil {
			return res, err
		}
	}
	log.Info("install: disks partitioned")

	// The arrays; stopped again on the way out, whatever happens.
	var made []string
	defer func() {
		for i := len(made) - 1; i >= 0; i-- {
			if serr := in.Mdadm.Stop(context.WithoutCancel(ctx), made[i]); serr != nil {
				err = errors.Join(err, fmt.Errorf("install: stop %s: %w", made[i], serr))
			}
		}
	}()
	devs := map[string]string{}
	for _, a := range plan.Arrays {
		if err := in.Mdadm.Create(ctx, a.Create); err != nil {
			return res, fmt.Errorf("install: create %s on %v: %w", a.Create.Device, a.Members, err)
		}
		made = append(made, a.Create.Device)
		sb, err := in.Mdadm.Examine(ctx, a.Members[0])
		if err != nil {
			return res, fmt.Errorf("install: examine %s: %w", a.Members[0], err)
		}
		if want := id + ":" + a.Name; sb.Name != want {
			return res, fmt.Errorf("install: %s was created with superblock name %q, want %q", a.Create.Device, sb.Name, want)
		}
		dev, err := filepath.EvalSymlinks(a.Create.Device)
		if err != nil {
			return res, fmt.Errorf("install: %s created, but %w", a.Create.Device, err)
		}
		size, err := deviceSize(dev)
		if err != nil {
			return res, err
		}
		devs[a.Role] = dev
		res.Arrays = append(res.Arrays, ArrayResult{Role: a.Role, Name: a.Name, UUID: sb.UUID, Level: a.Level, Members: a.Members, Size: size})
		if a.Zero {
			if err := zeroStart(dev, ZeroBytes); err != nil {
				return res, err
			}
		}
		log.Info("install: array created", "array", a.Create.Device, "device", dev, "uuid", sb.UUID, "level", a.Level, "members", a.Members)
	}

	// The bundle's parts, in order: the slot image onto root A, the boot
	// files spooled.
	tmp, err := os.MkdirTemp("", "ftnas-install-")
	if err != nil {
		return res, fmt.Errorf("install: %w", err)
	}
	defer os.RemoveAll(tmp)
	bootFiles := map[string]string{}
	for _, p := range m.Parts {
		switch p.Name {
		case update.PartRootfs:
			if res.SHA256, err = update.WriteVerify(r, p, devs[raid.RoleRootA]); err != nil {
				return res, err
			}
			res.Bytes = p.Size
			log.Info("install: slot A written and verified", "array", devs[raid.RoleRootA], "bytes", p.Size, "sha256", res.SHA256)
		default:
			f := filepath.Join(tmp, p.Name)
			w, err := os.Create(f)
			if err != nil {
				return res, fmt.Errorf("install: %w", err)
			}
			err = update.ReadPart(r, p, w)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return res, err
			}
			bootFiles[p.Name] = f
		}
	}
	if err := copyVerify(devs[raid.RoleRootA], devs[raid.RoleRootB], rootfs.Size, res.SHA256); err != nil {
		return res, err
	}
	log.Info("install: slot B copied from A and verified", "array", devs[raid.RoleRootB])

	// The ESP, built once and copied to every disk.
	res.BootFiles = "bundle"
	if bootFiles[update.PartKernel] == "" || bootFiles[update.PartInitrd] == "" {
		res.BootFiles = "running ESP"
		bootFiles[update.PartKernel] = filepath.Join(tmp, "running-vmlinuz")
		bootFiles[update.PartInitrd] = filepath.Join(tmp, "running-initrd")
		for name, data := range map[string][]byte{bootFiles[update.PartKernel]: cur.kernel, bootFiles[update.PartInitrd]: cur.initrd} {
			if err := os.WriteFile(name, data, 0o600); err != nil {
				return res, fmt.Errorf("install: %w", err)
			}
		}
	}
	loader := filepath.Join(tmp, "systemd-bootx64.efi")
	if err := os.WriteFile(loader, cur.bootloader, 0o600); err != nil {
		return res, fmt.Errorf("install: %w", err)
	}
	cfg := esp.Config{Bootloader: loader}
	for _, s := range Slots() {
		cfg.Slots = append(cfg.Slots, esp.Slot{Name: s, Kernel: bootFiles[update.PartKernel], Initrd: bootFiles[update.PartInitrd], Options: plan.Cmdlines[s]})
	}
	files, err := esp.Files(cfg)
	if err != nil {
		return res, fmt.Errorf("install: %w", err)
	}
	espPart, _ := plan.Layout.Disks[0].Partition(raid.RoleESP)
	img := filepath.Join(tmp, "esp.img")
	if err := esp.WriteImage(img, espPart.Size, files); err != nil {
		return res, fmt.Errorf("install: %w", err)
	}
	for _, d := range plan.Layout.Disks {
		h, err := copyESP(img, filepath.Join(in.devDir(), strings.TrimPrefix(raid.PartitionDevice(d.Disk, espPart.Number), "/dev/")), espPart.Size)
		if err != nil {
			return res, err
		}
		if res.ESPHash != "" && h != res.ESPHash {
			return res, fmt.Errorf("install: ESP of %s hashes %s, of %s %s", d.Disk, h, plan.Layout.Disks[0].Disk, res.ESPHash)
		}
		res.ESPHash = h
	}
	log.Info("install: ESPs written", "sha256", res.ESPHash, "boot_files", res.BootFiles)
	unix.Sync()
	return res, nil
}

func (in *Installer) runningSlot() (string, error) {
	read := in.Cmdline
	if read == nil {
		read = guest.Cmdline
	}
	params, err := read()
	if err != nil {
		return "", fmt.Errorf("install: kernel command line: %w", err)
	}
	if _, ok := guest.Lookup(params, boot.ParamSlot); !ok {
		return "", fmt.Errorf("install: the kernel command line has no %s=: %w", boot.ParamSlot, update.ErrNotSlot)
	}
	o, err := boot.ParseOptions(params)
	if err != nil {
		return "", fmt.Errorf("install: %w", err)
	}
	return o.Slot, nil
}

// runsFrom maps each disk with a partition (or itself) in a running md
// array to why: the box runs from it.
func (in *Installer) runsFrom() (map[string][]string, error) {
	out := map[string][]string{}
	ents, err := os.ReadDir(in.sysBlock())
	if err != nil {
		return nil, fmt.Errorf("install: list block devices: %w", err)
	}
	for _, e := range ents {
		md := e.Name()
		if !strings.HasPrefix(md, "md") {
			continue
		}
		slaves, err := os.ReadDir(filepath.Join(in.sysBlock(), md, "slaves"))
		if err != nil {
			continue
		}
		for _, s := range slaves {
			disk := in.parentDisk(s.Name())
			out[disk] = append(out[disk], fmt.Sprintf("%s is a member of the running array %s", s.Name(), md))
		}
	}
	return out, nil
}

// parentDisk is the whole disk of the partition name (vda for vda2), or
// name itself.
func (in *Installer) parentDisk(name string) string {
	if _, err := os.Stat(filepath.Join(in.sysClassBlock(), name, "partition")); err != nil {
		return name
	}
	target, err := filepath.EvalSymlinks(filepath.Join(in.sysClassBlock(), name))
	if err != nil {
		return name
	}
	return filepath.Base(filepath.Dir(target))
}

// espSource is the running box's ESP.
type espSource struct {
	disk, device string
	table        raid.DiskTable
	entry        raid.GPTEntry
}

// runningESP finds the ESP the loader was read from (its partition GUID,
// LoaderDevicePartUUID), else the first ESP on a disk the box runs from.
func (in *Installer) runningESP(runsFrom map[string][]string) (espSource, error) {
	read := in.LoaderVars
	if read == nil {
		read = boot.ReadLoaderVars
	}
	lv, efi, err := read()
	if err != nil {
		return espSource{}, fmt.Errorf("install: %w", err)
	}
	want := ""
	if efi {
		want = strings.ToUpper(lv.ESP)
	}
	var disks []string
	for d := range runsFrom {
		disks = append(disks, d)
	}
	sort.Strings(disks)
	var found []espSource
	var errs []error
	for _, d := range disks {
		s, err := in.readESPSource(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if want != "" && strings.ToUpper(s.entry.GUID) == want {
			return s, nil
		}
		found = append(found, s)
	}
	if len(found) > 0 {
		return found[0], nil
	}
	return espSource{}, fmt.Errorf("install: no ESP found on the disks the box runs from (%v): %w", disks, errors.Join(errs...))
}

func (in *Installer) readESPSource(disk string) (espSource, error) {
	ss, err := in.attrInt(disk, "queue/logical_block_size")
	if err != nil {
		return espSource{}, err
	}
	f, err := os.Open(filepath.Join(in.devDir(), disk))
	if err != nil {
		return espSource{}, fmt.Errorf("install: %w", err)
	}
	defer f.Close()
	t, err := raid.ReadDiskTable(f, disk, ss)
	if err != nil {
		return espSource{}, err
	}
	e, err := raid.ESPEntry(t)
	if err != nil {
		return espSource{}, err
	}
	dev := filepath.Join(in.devDir(), strings.TrimPrefix(raid.PartitionDevice(disk, e.Number), "/dev/"))
	return espSource{disk: disk, device: dev, table: t, entry: e}, nil
}

// runningBoot is what the new ESP takes from the running one.
type runningBoot struct {
	bootloader, kernel, initrd []byte
	// options is the running slot's entry's kernel command line.
	options string
}

// readRunningESP reads systemd-boot, the running slot's entry's options
// and its kernel and initrd from the running ESP (read-only, through
// go-diskfs; the device is opened for writing as go-diskfs asks, but
// nothing is written).
func (in *Installer) readRunningESP(s espSource, slot string) (runningBoot, error) {
	var rb runningBoot
	f, err := os.OpenFile(s.device, os.O_RDWR, 0)
	if err != nil {
		return rb, fmt.Errorf("install: open the running ESP %s: %w", s.device, err)
	}
	defer f.Close()
	e, err := update.OpenESP(f, 0, s.entry.Extent(s.table.SectorSize).Size)
	if err != nil {
		return rb, fmt.Errorf("install: %w", err)
	}
	es, err := e.Entries()
	if err != nil {
		return rb, fmt.Errorf("install: %w", err)
	}
	ent, ok := es[slot]
	if !ok {
		return rb, fmt.Errorf("install: the running ESP %s has no loader entry for the running slot %s", s.device, slot)
	}
	text, err := e.ReadFile(ent.Path())
	if err != nil {
		return rb, fmt.Errorf("install: %w", err)
	}
	rb.options = EntryOptions(string(text))
	for _, x := range []struct {
		path string
		dst  *[]byte
	}{{esp.BootloaderPath, &rb.bootloader}, {esp.KernelPath(slot), &rb.kernel}, {esp.InitrdPath(slot), &rb.initrd}} {
		if *x.dst, err = e.ReadFile(x.path); err != nil {
			return rb, fmt.Errorf("install: %w", err)
		}
	}
	return rb, nil
}

func (in *Installer) attrInt(name, attr string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(in.sysClassBlock(), name, attr))
	if err != nil {
		return 0, fmt.Errorf("install: %s: %w", name, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("install: %s: %s=%q is not a number", name, attr, bytes.TrimSpace(b))
	}
	return n, nil
}

// inspect gathers what sysfs and the disk's first and last MiB say.
func (in *Installer) inspect(name string, runsFrom map[string][]string) (Disk, error) {
	d := Disk{Name: name}
	if name == "" || strings.Contains(name, "/") || name == "." || name == ".." {
		return d, refuse("bad disk name %q (want a kernel name such as sdb, or /dev/sdb)", name)
	}
	if _, err := os.Stat(filepath.Join(in.sysClassBlock(), name)); err != nil {
		return d, refuse("%s: no such block device", name)
	}
	if _, err := os.Stat(filepath.Join(in.sysClassBlock(), name, "partition")); err == nil {
		d.Partition = true
		return d, nil
	}
	if strings.HasPrefix(name, "md") || strings.HasPrefix(name, "dm-") || strings.HasPrefix(name, "sr") || strings.HasPrefix(name, "zram") || strings.HasPrefix(name, "ram") {
		return d, refuse("%s is not a disk to install onto", name)
	}
	d.RunsFrom = strings.Join(runsFrom[name], "; ")
	var err error
	if d.SectorSize, err = in.attrInt(name, "queue/logical_block_size"); err != nil {
		return d, err
	}
	sectors, err := in.attrInt(name, "size")
	if err != nil {
		return d, err
	}
	d.Size = sectors * 512
	sub, err := os.ReadDir(filepath.Join(in.sysClassBlock(), name))
	if err != nil {
		return d, fmt.Errorf("install: %s: %w", name, err)
	}
	for _, e := range sub {
		if strings.HasPrefix(e.Name(), name) {
			if _, err := os.Stat(filepath.Join(in.sysClassBlock(), name, e.Name(), "partition")); err == nil {
				d.Partitions = append(d.Partitions, e.Name())
			}
		}
	}
	hs, _ := os.ReadDir(filepath.Join(in.sysClassBlock(), name, "holders"))
	for _, h := range hs {
		d.Holders = append(d.Holders, h.Name())
	}
	f, err := os.Open(filepath.Join(in.devDir(), name))
	if err != nil {
		return d, fmt.Errorf("install: %w", err)
	}
	defer f.Close()
	n := min(raid.MiB, d.Size)
	head, tail := make([]byte, n), make([]byte, n)
	if _, err := f.ReadAt(head, 0); err != nil {
		return d, fmt.Errorf("install: %s: read the first MiB: %w", name, err)
	}
	if _, err := f.ReadAt(tail, d.Size-n); err != nil {
		return d, fmt.Errorf("install: %s: read the last MiB: %w", name, err)
	}
	d.Signatures = Signatures(head, tail, d.Size, d.SectorSize)
	return d, nil
}

// partition writes d's GPT onto the disk (opened exclusively), has the
// kernel re-read it and waits for the partitions. blank is the disk as
// inspected.
// partition writes d's GPT onto the blank disk and waits for the kernel's
// partitions; wrote says whether the disk may have been written to.
func (in *Installer) partition(ctx context.Context, d raid.DiskLayout, blank Disk) (wrote bool, err error) {
	f, err := os.OpenFile(filepath.Join(in.devDir(), d.Disk), os.O_RDWR|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if errors.Is(err, syscall.EBUSY) {
		return false, refuse("%s is in use (mounted, in an array or held open exclusively)", d.Disk)
	}
	if err != nil {
		return false, fmt.Errorf("install: open %s: %w", d.Disk, err)
	}
	defer f.Close()
	return true, in.writeTable(ctx, f, d, blank)
}

func (in *Installer) writeTable(ctx context.Context, f *os.File, d raid.DiskLayout, blank Disk) error {
	ss := blank.SectorSize
	t := raid.DiskTable{Disk: d.Disk, SectorSize: ss, Size: blank.Size}
	for _, p := range d.Partitions {
		t.Partitions = append(t.Partitions, raid.GPTEntry{Number: p.Number, Name: p.Label, Type: p.Type,
			FirstLBA: uint64(p.Start / ss), LastLBA: uint64((p.Start+p.Size)/ss - 1)})
	}
	if err := raid.WriteDiskTable(f, t); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err := unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0); err != nil {
		return fmt.Errorf("install: %s: re-read the partition table (BLKRRPART): %w", d.Disk, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("install: close %s: %w", d.Disk, err)
	}
	wait := in.PartitionWait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	deadline := time.Now().Add(wait)
	for _, p := range d.Partitions {
		name := strings.TrimPrefix(raid.PartitionDevice(d.Disk, p.Number), "/dev/")
		for {
			why := in.partitionReady(name, p)
			if why == "" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("install: %s: partition %s not ready after %v: %s", d.Disk, name, wait, why)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("install: wait for %s: %w", name, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

func (in *Installer) partitionReady(name string, p raid.Partition) string {
	start, err := in.attrInt(name, "start")
	if err != nil {
		return "not in sysfs"
	}
	size, err := in.attrInt(name, "size")
	if err != nil {
		return "no size in sysfs"
	}
	if start*512 != p.Start || size*512 != p.Size {
		return fmt.Sprintf("kernel has it at %d+%d bytes, planned %d+%d", start*512, size*512, p.Start, p.Size)
	}
	st, err := os.Stat(filepath.Join(in.devDir(), name))
	if err != nil {
		return "no device node: " + err.Error()
	}
	if st.Mode()&os.ModeDevice == 0 {
		return "the device node is not a block device"
	}
	return ""
}

func deviceSize(dev string) (int64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, fmt.Errorf("install: %w", err)
	}
	defer f.Close()
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("install: size of %s: %w", dev, err)
	}
	return n, nil
}

// WipeBytes is how much of a failed install's disk is zeroed at its start,
// at its end and at the start of each partition: the protective MBR and
// both GPTs, the md superblocks (1.2: 4 KiB in) and bitmaps, the ESP's
// FAT. What inspect and the adopter look at to call a disk blank.
const WipeBytes = raid.MiB

// wipe makes disk d (blank before the install laid d out on it) blank
// again: the start of every planned partition, then the disk's first and
// last WipeBytes are zeroed through the whole disk (opened exclusively:
// the arrays must be stopped), and the kernel drops the partitions.
func (in *Installer) wipe(d raid.DiskLayout, blank Disk) error {
	f, err := os.OpenFile(filepath.Join(in.devDir(), d.Disk), os.O_RDWR|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("install: wipe %s: %w", d.Disk, err)
	}
	defer f.Close()
	size := blank.Size
	spans := [][2]int64{{0, min(WipeBytes, size)}, {max(size-WipeBytes, 0), size}}
	for _, p := range d.Partitions {
		spans = append(spans, [2]int64{p.Start, min(p.Start+min(WipeBytes, p.Size), size)})
	}
	zero := make([]byte, WipeBytes)
	for _, sp := range spans {
		if _, err := f.WriteAt(zero[:sp[1]-sp[0]], sp[0]); err != nil {
			return fmt.Errorf("install: wipe %s at %d: %w", d.Disk, sp[0], err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("install: wipe %s: sync: %w", d.Disk, err)
	}
	if st, err := f.Stat(); err == nil && st.Mode()&os.ModeDevice != 0 {
		if err := unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0); err != nil {
			return fmt.Errorf("install: wipe %s: re-read the partition table (BLKRRPART): %w", d.Disk, err)
		}
	}
	return nil
}

// zeroStart writes n zero bytes at the start of dev and syncs.
func zeroStart(dev string, n int64) error {
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("install: zero %s: %w", dev, err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, n), 0); err != nil {
		return fmt.Errorf("install: zero %s: %w", dev, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("install: zero %s: sync: %w", dev, err)
	}
	return nil
}

// copyVerify copies size bytes from src to dst (opened exclusively),
// syncs, and checks dst reads back as want.
func copyVerify(src, dst string, size int64, want string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_RDWR|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("install: open %s: %w", dst, err)
	}
	defer out.Close()
	buf := make([]byte, raid.MiB)
	if _, err := io.CopyBuffer(io.NewOffsetWriter(out, 0), io.NewSectionReader(in, 0, size), buf); err != nil {
		return fmt.Errorf("install: copy %s to %s: %w", src, dst, err)
	}
	return syncVerify(out, size, want)
}

// copyESP copies the image file img onto the ESP partition device dev
// (size bytes, opened exclusively) and returns the hash read back, which
// must be the image's.
func copyESP(img, dev string, size int64) (string, error) {
	src, err := os.Open(img)
	if err != nil {
		return "", fmt.Errorf("install: %w", err)
	}
	defer src.Close()
	want, err := hashReader(io.NewSectionReader(src, 0, size))
	if err != nil {
		return "", fmt.Errorf("install: hash the ESP image: %w", err)
	}
	out, err := os.OpenFile(dev, os.O_RDWR|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("install: open the ESP %s: %w", dev, err)
	}
	defer out.Close()
	buf := make([]byte, raid.MiB)
	if _, err := io.CopyBuffer(io.NewOffsetWriter(out, 0), io.NewSectionReader(src, 0, size), buf); err != nil {
		return "", fmt.Errorf("install: write the ESP %s: %w", dev, err)
	}
	return want, syncVerify(out, size, want)
}

// syncVerify syncs f, drops its cached copy and checks its first size
// bytes hash to want.
func syncVerify(f *os.File, size int64, want string) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("install: sync %s: %w", f.Name(), err)
	}
	_ = unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0)
	got, err := hashReader(io.NewSectionReader(f, 0, size))
	if err != nil {
		return fmt.Errorf("install: read back %s: %w", f.Name(), err)
	}
	if got != want {
		return fmt.Errorf("install: read back %s: sha256 %s, wrote %s", f.Name(), got, want)
	}
	return nil
}

func hashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.CopyBuffer(h, r, make([]byte, raid.MiB)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
