package raid

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"golang.org/x/sys/unix"
)

// Adopt makes the blank disk a member disk like from (both kernel names;
// from "" picks the healthiest disk with ChooseAdoptSource):
//
//  1. read from's GPT and the arrays' members;
//  2. check disk is blank: a whole disk, no partitions, no holders, no md
//     superblock (mdadm --examine), no MBR/GPT signature, no md magic at
//     any superblock location of the disk or of the planned partitions,
//     and that it opens exclusively (nothing mounted or held);
//  3. write the planned GPT (PlanAdopt), read it back, BLKRRPART and wait
//     for the partition devices;
//  4. mdadm --add each RAID partition to its array; md rebuilds it online;
//  5. copy the ESP byte for byte from from's ESP and check both hash the
//     same (HashPartition), while md rebuilds: redundancy comes first.
//
// A refusal (step 1-2) wraps ErrAdoptRefused and has written nothing; a
// missing disk wraps fs.ErrNotExist. Later errors name the step and the
// device; the result says what was added before the failure.
func (a *Adopter) Adopt(ctx context.Context, disk, from string) (AdoptResult, error) {
	res := AdoptResult{Disk: disk, From: from}
	if a.Mdadm == nil || a.Block == nil || a.ClassBlock == nil {
		return res, errors.New("raid: adopt: Adopter needs Mdadm, Block and ClassBlock")
	}
	for _, n := range []string{disk, from} {
		if n != "" && (!fs.ValidPath(n) || strings.Contains(n, "/") || n == ".") {
			return res, refuse("bad disk name %q (want a kernel name such as sdb)", n)
		}
	}
	if disk == "" {
		return res, refuse("name the blank disk")
	}
	arrays, err := a.readArrays()
	if err != nil {
		return res, err
	}
	if from == "" {
		disks, err := a.wholeDisks()
		if err != nil {
			return res, err
		}
		if from, err = ChooseAdoptSource(arrays, disks, disk); err != nil {
			return res, err
		}
		res.From = from
	}
	for _, n := range []string{disk, from} {
		if err := a.checkWholeDisk(n); err != nil {
			return res, err
		}
	}
	src, err := a.readTable(from)
	if err != nil {
		return res, err
	}
	blank, err := a.inspect(ctx, disk)
	if err != nil {
		return res, err
	}
	// Exclusive open: fails while anything has the disk or one of its
	// partitions mounted, in an array or otherwise claimed.
	devPath := filepath.Join(a.devDir(), disk)
	f, err := os.OpenFile(devPath, os.O_RDWR|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if errors.Is(err, syscall.EBUSY) {
		return res, refuse("%s is in use (mounted, in an array or held open exclusively)", disk)
	}
	if err != nil {
		return res, fmt.Errorf("raid: adopt %s: open: %w", disk, err)
	}
	defer f.Close()
	head := make([]byte, min(DiskSignatureBytes, blank.Size))
	if _, err := f.ReadAt(head, 0); err != nil {
		return res, fmt.Errorf("raid: adopt %s: read the first sectors: %w", disk, err)
	}
	blank.Signatures = DiskSignatures(head, blank.SectorSize)
	if offs, err := MdMagicAt(f, Partition{Size: blank.Size}); err != nil {
		return res, fmt.Errorf("raid: adopt %s: %w", disk, err)
	} else if len(offs) > 0 {
		blank.Signatures = append(blank.Signatures, fmt.Sprintf("md superblock magic at byte %d", offs[0]))
	}
	plan, err := PlanAdopt(src, blank, arrays, a.Rand)
	if err != nil {
		return res, err
	}
	res.Plan = plan
	for _, e := range plan.Table.Partitions {
		ext := e.Extent(plan.Table.SectorSize)
		offs, err := MdMagicAt(f, ext)
		if err != nil {
			return res, fmt.Errorf("raid: adopt %s: %w", disk, err)
		}
		if len(offs) > 0 {
			return res, refuse("%s is not blank: md superblock magic where partition %d would start its superblock (byte %d of the disk); an old array member was here (wipe it with mdadm --zero-superblock on the partition, or wipefs, if it is really unused)",
				disk, e.Number, ext.Start+offs[0])
		}
	}
	log := a.logger().With("disk", disk, "from", from)
	if err := writeTable(f, plan.Table); err != nil {
		return res, fmt.Errorf("raid: adopt %s: write GPT: %w", disk, err)
	}
	log.Info("raid: adopt: partition table written", "partitions", len(plan.Table.Partitions))
	if err := unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0); err != nil {
		return res, fmt.Errorf("raid: adopt %s: re-read partition table (BLKRRPART): %w", disk, err)
	}
	if err := f.Close(); err != nil {
		return res, fmt.Errorf("raid: adopt %s: close: %w", disk, err)
	}
	if err := a.waitPartitions(ctx, plan.Table); err != nil {
		return res, err
	}
	for _, j := range plan.Joins {
		sb, err := a.Mdadm.Examine(ctx, j.Device)
		if err != nil {
			return res, fmt.Errorf("raid: adopt %s: examine %s before adding it to %s: %w", disk, j.Device, j.Array, err)
		}
		if sb.Populated {
			return res, fmt.Errorf("raid: adopt %s: new partition %s carries an md superblock (%s); not adding it to %s", disk, j.Device, sb.UUID, j.Array)
		}
		if err := a.Mdadm.Add(ctx, path.Join(a.devDir(), j.Array), j.Device); err != nil {
			return res, fmt.Errorf("raid: adopt %s: add %s to %s: %w", disk, j.Device, j.Array, err)
		}
		res.Added = append(res.Added, j)
		log.Info("raid: adopt: partition added; md rebuilds it", "device", j.Device, "array", j.Array)
	}
	// The ESP last: redundancy first (md rebuilds while the ESP is
	// copied; the copy and its check took 10 s under TCG, and md waited
	// for them: scripts/bench raid).
	if plan.ESP != 0 {
		if res.ESPHash, err = a.copyESP(plan, from, disk); err != nil {
			return res, err
		}
		log.Info("raid: adopt: ESP copied", "partition", plan.ESP, "sha256", res.ESPHash)
	}
	return res, nil
}

func (a *Adopter) readArrays() ([]ArrayStatus, error) {
	names, err := ListArrays(a.Block)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("raid: adopt: %w", err)
	}
	var out []ArrayStatus
	for _, n := range names {
		st, err := ReadArray(a.Block, n)
		if errors.Is(err, fs.ErrNotExist) {
			continue // stopped meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("raid: adopt: %w", err)
		}
		out = append(out, st)
	}
	return out, nil
}

// wholeDisks lists the disks that could be members and their partitions.
func (a *Adopter) wholeDisks() (map[string][]string, error) {
	entries, err := fs.ReadDir(a.Block, ".")
	if err != nil {
		return nil, fmt.Errorf("raid: adopt: list disks: %w", err)
	}
	out := map[string][]string{}
	for _, e := range entries {
		if skipDevice(e.Name()) {
			continue
		}
		parts, err := a.partitions(e.Name())
		if err != nil {
			return nil, err
		}
		out[e.Name()] = parts
	}
	return out, nil
}

// partitions are the kernel's partitions of disk.
func (a *Adopter) partitions(disk string) ([]string, error) {
	sub, err := fs.ReadDir(a.ClassBlock, disk)
	if err != nil {
		return nil, fmt.Errorf("raid: adopt: list partitions of %s: %w", disk, err)
	}
	var out []string
	for _, e := range sub {
		if !strings.HasPrefix(e.Name(), disk) {
			continue
		}
		if _, err := fs.Stat(a.ClassBlock, path.Join(disk, e.Name(), "partition")); err == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// checkWholeDisk refuses a name that is not a present whole disk.
func (a *Adopter) checkWholeDisk(name string) error {
	if _, err := fs.Stat(a.ClassBlock, name); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("raid: adopt: %s: %w: no such block device", name, fs.ErrNotExist)
	} else if err != nil {
		return fmt.Errorf("raid: adopt: %s: %w", name, err)
	}
	if _, err := fs.Stat(a.ClassBlock, path.Join(name, "partition")); err == nil {
		return refuse("%s is a partition; name a whole disk", name)
	}
	if skipDevice(name) {
		return refuse("%s is not a disk md members live on", name)
	}
	return nil
}

func (a *Adopter) attrInt(name, attr string) (int64, error) {
	s, err := readAttr(a.ClassBlock, path.Join(name, attr))
	if err != nil {
		return 0, fmt.Errorf("raid: adopt: %s: %w", name, err)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("raid: adopt: %s: %s=%q is not a size", name, attr, s)
	}
	return n, nil
}

// sectorSizes are disk's logical and physical sector sizes.
func (a *Adopter) sectorSizes(disk string) (int64, int64, error) {
	ls, err := a.attrInt(disk, "queue/logical_block_size")
	if err != nil {
		return 0, 0, err
	}
	ps, err := a.attrInt(disk, "queue/physical_block_size")
	if err != nil {
		return 0, 0, err
	}
	return ls, ps, nil
}

// readTable reads disk's GPT.
func (a *Adopter) readTable(disk string) (DiskTable, error) {
	ls, ps, err := a.sectorSizes(disk)
	if err != nil {
		return DiskTable{}, err
	}
	sectors, err := a.attrInt(disk, "size")
	if err != nil {
		return DiskTable{}, err
	}
	f, err := os.Open(filepath.Join(a.devDir(), disk))
	if err != nil {
		return DiskTable{}, fmt.Errorf("raid: adopt: read GPT of source %s: %w", disk, err)
	}
	defer f.Close()
	t, err := gpt.Read(f, int(ls), int(ps))
	if err != nil {
		return DiskTable{}, refuse("source disk %s: no readable GPT: %v", disk, err)
	}
	return fromGPT(disk, sectors*512, ls, t), nil
}

func fromGPT(disk string, size, ss int64, t *gpt.Table) DiskTable {
	out := DiskTable{Disk: disk, GUID: strings.ToUpper(t.GUID), SectorSize: ss, Size: size}
	for _, p := range t.Partitions {
		if p.Type == gpt.Unused {
			continue
		}
		out.Partitions = append(out.Partitions, GPTEntry{
			Number: p.Index, Name: p.Name, Type: strings.ToUpper(string(p.Type)), GUID: strings.ToUpper(p.GUID),
			FirstLBA: p.Start, LastLBA: p.End, Attributes: p.Attributes,
		})
	}
	return out
}

// inspect gathers what sysfs and mdadm know of the would-be blank disk.
func (a *Adopter) inspect(ctx context.Context, disk string) (BlankDisk, error) {
	b := BlankDisk{Name: disk}
	ls, _, err := a.sectorSizes(disk)
	if err != nil {
		return b, err
	}
	sectors, err := a.attrInt(disk, "size")
	if err != nil {
		return b, err
	}
	b.SectorSize, b.Size = ls, sectors*512
	if b.Partitions, err = a.partitions(disk); err != nil {
		return b, err
	}
	hs, err := fs.ReadDir(a.ClassBlock, path.Join(disk, "holders"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return b, fmt.Errorf("raid: adopt: %s: holders: %w", disk, err)
	}
	for _, h := range hs {
		b.Holders = append(b.Holders, h.Name())
	}
	if b.Superblock, err = a.Mdadm.Examine(ctx, filepath.Join(a.devDir(), disk)); err != nil {
		return b, fmt.Errorf("raid: adopt: examine %s: %w", disk, err)
	}
	return b, nil
}

// toGPT is t as go-diskfs writes it.
func toGPT(t DiskTable) *gpt.Table {
	g := &gpt.Table{LogicalSectorSize: int(t.SectorSize), PhysicalSectorSize: int(t.SectorSize), ProtectiveMBR: true, GUID: t.GUID}
	for _, e := range t.Partitions {
		g.Partitions = append(g.Partitions, &gpt.Partition{
			Index: e.Number, Start: e.FirstLBA, End: e.LastLBA, Type: gpt.Type(e.Type), Name: e.Name,
			GUID: e.GUID, Attributes: e.Attributes,
		})
	}
	return g
}

// writeTable writes t's protective MBR and GPTs onto f, syncs, and reads
// the table back to check it.
func writeTable(f *os.File, t DiskTable) error {
	if err := toGPT(t).Write(f, t.Size); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	back, err := gpt.Read(f, int(t.SectorSize), int(t.SectorSize))
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	got := fromGPT(t.Disk, t.Size, t.SectorSize, back)
	if err := sameTable(t, got, true); err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	return nil
}

// waitPartitions waits until the kernel shows every partition of t with
// its planned extent and /dev has its node.
func (a *Adopter) waitPartitions(ctx context.Context, t DiskTable) error {
	wait := a.PartitionWait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	deadline := time.Now().Add(wait)
	for _, e := range t.Partitions {
		name := strings.TrimPrefix(PartitionDevice(t.Disk, e.Number), "/dev/")
		ext := e.Extent(t.SectorSize)
		for {
			why := a.partitionReady(name, ext)
			if why == "" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("raid: adopt %s: wait for partition %s: not ready after %v: %s", t.Disk, name, wait, why)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("raid: adopt %s: wait for partition %s: %w", t.Disk, name, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

func (a *Adopter) partitionReady(name string, ext Partition) string {
	start, err := a.attrInt(name, "start")
	if err != nil {
		return "not in sysfs"
	}
	size, err := a.attrInt(name, "size")
	if err != nil {
		return "no size in sysfs"
	}
	if start*512 != ext.Start || size*512 != ext.Size {
		return fmt.Sprintf("kernel has it at %d+%d bytes, planned %d+%d", start*512, size*512, ext.Start, ext.Size)
	}
	st, err := os.Stat(filepath.Join(a.devDir(), name))
	if err != nil {
		return "no device node: " + err.Error()
	}
	if st.Mode()&os.ModeDevice == 0 {
		return "the device node is not a block device"
	}
	return ""
}

// copyESP copies the ESP from the source disk's partition to the new
// disk's and returns the hash both have.
func (a *Adopter) copyESP(plan AdoptPlan, from, disk string) (string, error) {
	e, _ := plan.Table.Entry(plan.ESP)
	size := e.Extent(plan.Table.SectorSize).Size
	srcPath := filepath.Join(a.devDir(), strings.TrimPrefix(PartitionDevice(from, plan.ESP), "/dev/"))
	dstPath := filepath.Join(a.devDir(), strings.TrimPrefix(PartitionDevice(disk, plan.ESP), "/dev/"))
	h, err := copyPartition(srcPath, dstPath, Partition{Number: plan.ESP, Role: RoleESP, Size: size})
	if err != nil {
		return "", fmt.Errorf("raid: adopt %s: %w", disk, err)
	}
	return h, nil
}

// copyPartition copies the partition device srcPath onto dstPath (opened
// exclusively: never under a mounted file system), both p.Size bytes,
// syncs, and returns the hash both have (HashPartition), failing if they
// differ.
func copyPartition(srcPath, dstPath string, p Partition) (string, error) {
	fail := func(step string, err error) (string, error) {
		return "", fmt.Errorf("%s %s: %s: %w", p.Role, step, dstPath, err)
	}
	src, err := os.Open(srcPath)
	if err != nil {
		return fail("open source "+srcPath, err)
	}
	defer src.Close()
	dst, err := os.OpenFile(dstPath, os.O_RDWR|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail("open", err)
	}
	defer dst.Close()
	for _, f := range []*os.File{src, dst} {
		n, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return fail("size of "+f.Name(), err)
		}
		if n != p.Size {
			return fail("size", fmt.Errorf("%s has %d bytes, the %s %d", f.Name(), n, p.Role, p.Size))
		}
	}
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(io.NewOffsetWriter(dst, 0), io.NewSectionReader(src, 0, p.Size), buf); err != nil {
		return fail("copy from "+srcPath, err)
	}
	if err := dst.Sync(); err != nil {
		return fail("sync", err)
	}
	// Drop the cached copy so the check reads what reached the disk.
	_ = unix.IoctlSetInt(int(dst.Fd()), unix.BLKFLSBUF, 0)
	p.Start = 0
	want, err := HashPartition(src, p)
	if err != nil {
		return fail("hash source "+srcPath, err)
	}
	got, err := HashPartition(dst, p)
	if err != nil {
		return fail("hash", err)
	}
	if got != want {
		return fail("verify", fmt.Errorf("sha256 %s, source %s has %s", got, srcPath, want))
	}
	return got, nil
}

// ReadDiskTable reads the GPT of f, the whole disk disk with logical
// sectors of ss bytes.
func ReadDiskTable(f *os.File, disk string, ss int64) (DiskTable, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return DiskTable{}, fmt.Errorf("raid: read GPT of %s: size: %w", disk, err)
	}
	t, err := gpt.Read(f, int(ss), int(ss))
	if err != nil {
		return DiskTable{}, fmt.Errorf("raid: read GPT of %s: %w", disk, err)
	}
	return fromGPT(disk, size, ss, t), nil
}

// WriteDiskTable writes t (protective MBR, both GPTs) onto f, a whole
// disk of t.Size bytes, and reads it back to check it. Empty GUIDs are
// made up. It does not ask the kernel to re-read the table.
func WriteDiskTable(f *os.File, t DiskTable) error {
	t.Partitions = append([]GPTEntry(nil), t.Partitions...)
	var err error
	if t.GUID == "" {
		if t.GUID, err = newGUID(rand.Reader); err != nil {
			return err
		}
	}
	for i := range t.Partitions {
		if t.Partitions[i].GUID == "" {
			if t.Partitions[i].GUID, err = newGUID(rand.Reader); err != nil {
				return err
			}
		}
	}
	if err := writeTable(f, t); err != nil {
		return fmt.Errorf("raid: write GPT of %s: %w", t.Disk, err)
	}
	return nil
}
