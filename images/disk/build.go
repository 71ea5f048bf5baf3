package disk

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"ftnas/images/boot"
	"ftnas/images/disk/internal/installplan"
	"ftnas/images/esp"
	"ftnas/images/initramfs"
	"ftnas/images/kernel"
	"ftnas/images/qemu"
	"ftnas/images/rootfs"
	"ftnas/raid"
)

// Go main packages an installation is built from.
const (
	BootInitPackage  = "ftnas/images/boot/init"
	RootInitPackage  = "ftnas/images/rootfs/init"
	InstallerPackage = "ftnas/images/disk/internal/installer"
)

// Inputs are the parts of an installation, fetched and built (see
// FetchInputs).
type Inputs struct {
	Kernel kernel.Kernel
	// Bootloader is systemd-bootx64.efi.
	Bootloader string
	// Mdadm is the mdadm executable; its shared libraries are taken from
	// the host, which runs the same Debian release.
	Mdadm string
	// TestInit is the generic /init (initramfs.InitPackage) that runs the
	// installer guest.
	TestInit string
	// BootInit is the firmware initramfs's /init (BootInitPackage).
	BootInit string
	// RootInit is the root slots' /sbin/init (RootInitPackage) in the
	// placeholder slot image (package rootfs).
	RootInit string
	// SlotImage, when set, is a prebuilt squashfs written to every root
	// slot instead of the placeholder (package userland builds one);
	// RootInit is then not needed.
	SlotImage string
	// Installer is the installer guest program (InstallerPackage).
	Installer string
}

func (in Inputs) check() error {
	for _, f := range []struct{ name, path string }{
		{"kernel", in.Kernel.Vmlinuz}, {"Bootloader", in.Bootloader}, {"Mdadm", in.Mdadm},
		{"TestInit", in.TestInit}, {"BootInit", in.BootInit}, {"RootInit or SlotImage", in.RootInit + in.SlotImage}, {"Installer", in.Installer},
	} {
		if f.path == "" {
			return fmt.Errorf("disk: build: inputs lack %s", f.name)
		}
	}
	for _, f := range []struct{ name, path string }{
		{"kernel", in.Kernel.Vmlinuz}, {"Bootloader", in.Bootloader}, {"Mdadm", in.Mdadm},
		{"TestInit", in.TestInit}, {"BootInit", in.BootInit}, {"RootInit", in.RootInit}, {"SlotImage", in.SlotImage}, {"Installer", in.Installer},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("disk: build: input %s: %w", f.name, err)
		}
	}
	return nil
}

// FirmwareModules are what the firmware initramfs loads: virtio disks,
// md RAID1, squashfs and efivarfs (the userland reads the loader's
// variables), and for the slot's userland, which carries no modules of
// its own (the kernel is on the ESP): virtio NICs, overlayfs (its
// writable /etc and /var), RAID5/6 (the data array of three or more
// disks), btrfs (the data volume) and ext4 (the state's: built into the
// cloud kernel, a module in the generic one).
// NVMe disks: nvme (built into Debian's cloud kernel, so nothing to load
// there). The watchdog the slot's init feeds: softdog, the only one the
// cloud kernel has (it has neither i6300esb nor ahci; a kernel flavour
// with them would list them here).
func FirmwareModules() []string {
	return []string{"virtio_pci", "virtio_blk", "nvme", "md_mod", "raid1", "squashfs", "efivarfs", "virtio_net", "overlay", "raid456", "btrfs", "ext4", "softdog"}
}

// HardwareModules are what a real box's firmware adds to FirmwareModules
// with Debian's generic kernel (GenericKernel): SATA disks (ahci and the
// SCSI disk driver), the Intel 6300ESB watchdog (qemu's, and common on
// Intel boards; softdog stays the fallback), the wired NICs of small
// office boxes (Intel e1000e/igb/ixgbe, Realtek r8169) and the kernel's
// bonding driver. The cloud kernel has none of these.
func HardwareModules() []string {
	return []string{"ahci", "sd_mod", "i6300esb", "e1000e", "igb", "ixgbe", "r8169", "bonding"}
}

// GenericKernel is Debian's generic kernel flavour, for real boxes (the
// cloud flavour, kernel.MetaPackage, boots the qemu tests faster).
const GenericKernel = "linux-image-amd64"

// Slots are the root slots; the first is booted by default.
func Slots() []string { return []string{"a", "b"} }

// Options says what to build.
type Options struct {
	// Dir receives disk0.raw, disk1.raw, ... and build/ (the ESP image,
	// initrds and slot images). It must exist; the disk files must not.
	Dir string
	// Disks is the number of disks; 0 means 2.
	Disks int
	// DiskSize is each disk's size in bytes; 0 means the smallest the
	// layout fits in.
	DiskSize int64
	Layout   raid.LayoutOptions
	// Cmdline is added to both slots' kernel command lines.
	Cmdline string
	// InstallID is the installation's id (boot.ParamInstall): the
	// homehost of every array and ftnas.install= on both entries, so
	// the initramfs and the slot's init assemble this installation's
	// arrays, never another box's whose disks are attached (see package
	// install). "" makes a random one.
	InstallID string
	// Modules are loaded by the firmware initramfs; nil means
	// FirmwareModules().
	Modules []string
	// InstallTimeout bounds the installer guest; 0 means 3 minutes.
	InstallTimeout time.Duration
	// Logf gets progress and the installer's console; nil drops them.
	Logf func(format string, args ...any)
}

// Array is one md array the installer made.
type Array struct {
	Role    string
	Name    string
	UUID    string
	Level   string
	Members int
	Size    int64
	// Image is the SHA-256 of the slot image read back from the array.
	Image string
}

// Result is a finished installation.
type Result struct {
	// InstallID is the installation's id (Options.InstallID).
	InstallID string
	Disks     []string
	Layout    raid.Layout
	// ESPHash is the SHA-256 every disk's ESP has (raid.HashESP).
	ESPHash string
	Arrays  []Array
	// Images maps a root role (root-a) to its slot image's SHA-256.
	Images map[string]string
	// Took is how long each step took.
	Took map[string]time.Duration
}

// BaseCmdline starts every slot's kernel command line. panic=-1 reboots
// at once if the initramfs dies.
const BaseCmdline = "console=tty0 console=ttyS0 panic=-1 quiet"

func diskName(i int) string { return "vd" + string(rune('a'+i)) }

// DefaultDiskSize is the smallest disk the layout fits on.
func DefaultDiskSize(lo raid.LayoutOptions) int64 {
	l, err := raid.Plan([]raid.Disk{{Name: "vda", Size: 1 << 50}}, lo)
	if err != nil {
		return 0
	}
	var end int64
	for _, p := range l.Disks[0].Partitions {
		if p.Role != raid.RoleData && p.Start+p.Size > end {
			end = p.Start + p.Size
		}
	}
	min := lo.MinData
	if min == 0 {
		min = raid.GiB
	}
	return end + min + 2*raid.MiB
}

// Build writes an installation. On error the disk files it created are
// removed.
func Build(ctx context.Context, in Inputs, o Options) (res Result, err error) {
	if err := in.check(); err != nil {
		return Result{}, err
	}
	if o.Dir == "" {
		return Result{}, errors.New("disk: build: no Dir")
	}
	n := o.Disks
	if n == 0 {
		n = 2
	}
	if n < 1 || n > 16 {
		return Result{}, fmt.Errorf("disk: build: %d disks (want 1 to 16)", n)
	}
	size := o.DiskSize
	if size == 0 {
		size = DefaultDiskSize(o.Layout)
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var disks []raid.Disk
	for i := 0; i < n; i++ {
		disks = append(disks, raid.Disk{Name: diskName(i), Size: size})
	}
	layout, err := raid.Plan(disks, o.Layout)
	if err != nil {
		return Result{}, fmt.Errorf("disk: build: %w", err)
	}
	id := o.InstallID
	if id == "" {
		var b [boot.MaxInstallID / 2]byte
		if _, err := rand.Read(b[:]); err != nil {
			return Result{}, fmt.Errorf("disk: build: installation id: %w", err)
		}
		id = hex.EncodeToString(b[:])
	}
	if !boot.ValidInstallID(id) {
		return Result{}, fmt.Errorf("disk: build: installation id %q: want 1-%d of a-z, 0-9", id, boot.MaxInstallID)
	}
	res = Result{InstallID: id, Layout: layout, Images: map[string]string{}, Took: map[string]time.Duration{}}
	step := time.Now()
	took := func(name string) {
		res.Took[name] = time.Since(step)
		logf("disk: %s took %v", name, time.Since(step).Round(time.Millisecond))
		step = time.Now()
	}
	work := filepath.Join(o.Dir, "build")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return Result{}, fmt.Errorf("disk: build: %w", err)
	}

	// The firmware initramfs, shared by both slots at install time.
	mods := o.Modules
	if mods == nil {
		mods = FirmwareModules()
	}
	initrd := filepath.Join(work, "initrd.img")
	if err := writeInitramfs(initrd, in.Kernel, mods, initramfs.Spec{
		Init:     in.BootInit,
		Programs: []initramfs.Program{{Source: in.Mdadm, Path: "/sbin/mdadm"}},
	}); err != nil {
		return Result{}, err
	}
	took("initramfs")

	espPart, _ := layout.Disks[0].Partition(raid.RoleESP)
	cfg := esp.Config{Bootloader: in.Bootloader}
	for _, s := range Slots() {
		cfg.Slots = append(cfg.Slots, esp.Slot{
			Name: s, Kernel: in.Kernel.Vmlinuz, Initrd: initrd,
			Options: strings.TrimSpace(BaseCmdline + " " + boot.ParamSlot + "=" + s + " " + boot.ParamInstall + "=" + id + " " + o.Cmdline),
		})
	}
	files, err := esp.Files(cfg)
	if err != nil {
		return Result{}, err
	}
	espImage := filepath.Join(work, "esp.img")
	os.Remove(espImage)
	if err := esp.WriteImage(espImage, espPart.Size, files); err != nil {
		return Result{}, err
	}
	espHash, err := hashFile(espImage)
	if err != nil {
		return Result{}, err
	}
	took("esp")

	var images []installplan.Image
	var imageFiles []string
	for _, s := range Slots() {
		role := "root-" + s
		a, ok := layout.Array(role)
		if !ok {
			return Result{}, fmt.Errorf("disk: build: layout has no %s array", role)
		}
		p := filepath.Join(work, role+".squashfs")
		os.Remove(p)
		var sz int64
		if in.SlotImage != "" {
			sz, err = slotImage(in.SlotImage, p, a.Size-raid.MiB)
		} else {
			sz, err = rootfs.WriteSquashfs(p, a.Size-raid.MiB, rootfs.Spec{Slot: s, Init: in.RootInit})
		}
		if err != nil {
			return Result{}, err
		}
		h, err := hashFile(p)
		if err != nil {
			return Result{}, err
		}
		res.Images[role] = h
		images = append(images, installplan.Image{Role: role, Device: "/dev/" + diskName(n+len(images)), Size: sz, SHA256: h})
		imageFiles = append(imageFiles, p)
	}
	took("rootfs")

	defer func() {
		if err != nil {
			for _, d := range res.Disks {
				os.Remove(d)
			}
			res.Disks = nil
		}
	}()
	for i, d := range layout.Disks {
		p := filepath.Join(o.Dir, fmt.Sprintf("disk%d.raw", i))
		if err := writeDisk(p, size, d, espPart.Start, espImage); err != nil {
			return res, err
		}
		res.Disks = append(res.Disks, p)
	}
	took("disks")

	plan := installplan.Plan{Layout: layout, Images: images, Homehost: id}
	if err := plan.Check(); err != nil {
		return res, err
	}
	planJSON, err := json.Marshal(plan)
	if err != nil {
		return res, err
	}
	instInitrd := filepath.Join(work, "installer.img")
	if err := writeInitramfs(instInitrd, in.Kernel, append([]string{"virtio_pci", "virtio_blk"}, kernel.MDModules()...), initramfs.Spec{
		Init:     in.TestInit,
		Programs: []initramfs.Program{{Source: in.Mdadm, Path: "/sbin/mdadm"}},
		Files: []initramfs.File{
			{Path: "/bin/installer", Source: in.Installer, Mode: 0o755},
			{Path: installplan.Path, Data: planJSON},
		},
		Run: "/bin/installer",
	}); err != nil {
		return res, err
	}
	sum, err := runInstaller(ctx, in.Kernel.Vmlinuz, instInitrd, append(append([]string(nil), res.Disks...), imageFiles...), o.InstallTimeout, logf)
	if err != nil {
		return res, err
	}
	for _, a := range sum.Arrays {
		res.Arrays = append(res.Arrays, Array(a))
	}
	if err := checkArrays(layout, res.Images, res.Arrays); err != nil {
		return res, err
	}
	took("install")

	hashes, err := HashESPs(res.Disks, layout)
	if err != nil {
		return res, err
	}
	for i, h := range hashes {
		if h != espHash {
			return res, fmt.Errorf("disk: build: ESP of %s hashes %s, the ESP image %s", res.Disks[i], h, espHash)
		}
	}
	res.ESPHash = espHash
	return res, nil
}

// checkArrays matches the installer's report against the layout and the
// slot images.
func checkArrays(l raid.Layout, images map[string]string, got []Array) error {
	if len(got) != len(l.Arrays) {
		return fmt.Errorf("disk: installer made %d arrays, the layout has %d", len(got), len(l.Arrays))
	}
	for i, a := range l.Arrays {
		g := got[i]
		if g.Name != a.Name || g.Members != len(a.Members) || g.UUID == "" || g.Size <= 0 {
			return fmt.Errorf("disk: installer made %+v for %s (%d members)", g, a.Name, len(a.Members))
		}
		if want := images[a.Role]; g.Image != want {
			return fmt.Errorf("disk: %s holds image %q, want %q", a.Name, g.Image, want)
		}
	}
	return nil
}

// HashESPs hashes the ESP of each disk image laid out as l's disks.
func HashESPs(paths []string, l raid.Layout) ([]string, error) {
	if len(paths) != len(l.Disks) {
		return nil, fmt.Errorf("disk: hash ESPs: %d images for %d disks", len(paths), len(l.Disks))
	}
	var out []string
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("disk: hash ESP: %w", err)
		}
		h, err := raid.HashESP(f, l.Disks[i])
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("disk: hash ESP of %s: %w", p, err)
		}
		out = append(out, h)
	}
	return out, nil
}

func writeDisk(path string, size int64, d raid.DiskLayout, espStart int64, espImage string) (err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("disk: create: %w", err)
	}
	defer func() {
		err = errors.Join(err, f.Close())
		if err != nil {
			os.Remove(path)
		}
	}()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("disk: create %s: %w", path, err)
	}
	if err := WriteGPT(f, size, d); err != nil {
		return err
	}
	return copyInto(f, espStart, espImage)
}

func writeInitramfs(path string, k kernel.Kernel, modules []string, spec initramfs.Spec) error {
	mods, err := k.Resolve(modules...)
	if err != nil {
		return fmt.Errorf("disk: initramfs %s: %w", path, err)
	}
	for _, m := range mods {
		spec.Modules = append(spec.Modules, m.Path)
	}
	os.Remove(path)
	return initramfs.WriteFile(path, spec)
}

// slotImage copies a prebuilt slot image to p and checks it
// fits in maxSize bytes and is whole 4 KiB blocks.
func slotImage(src, p string, maxSize int64) (int64, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return 0, fmt.Errorf("disk: slot image: %w", err)
	}
	if fi.Size() > maxSize || fi.Size()%4096 != 0 {
		return 0, fmt.Errorf("disk: slot image %s is %d MiB (%d bytes): want whole 4 KiB blocks, at most the slot's %d MiB", src, fi.Size()>>20, fi.Size(), maxSize>>20)
	}
	// A copy, not a link: the installer attaches each slot's image as
	// its own disk, and qemu locks image files.
	if err := copyFile(src, p); err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("disk: copy: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("disk: copy: %w", err)
	}
	defer func() { err = errors.Join(err, out.Close()) }()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("disk: copy %s to %s: %w", src, dst, err)
	}
	return nil
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("disk: hash %s: %w", p, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("disk: hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// runInstaller boots the installer guest with disks attached in order and
// returns its summary.
func runInstaller(ctx context.Context, vmlinuz, initrd string, disks []string, timeout time.Duration, logf func(string, ...any)) (installplan.Summary, error) {
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	o := qemu.Options{Kernel: vmlinuz, Initrd: initrd, Disks: disks, Memory: 384, Timeout: timeout}
	if err := qemu.Available(o); err != nil {
		return installplan.Summary{}, err
	}
	vm, err := qemu.Start(o, logf)
	if err != nil {
		return installplan.Summary{}, err
	}
	defer vm.Kill()
	stop := context.AfterFunc(ctx, vm.Kill)
	defer stop()
	m, err := vm.Expect(regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(installplan.SummaryPrefix) + `(\{.*\})\r?$`))
	if err != nil {
		return installplan.Summary{}, fmt.Errorf("disk: installer: %w", err)
	}
	if err := vm.Result(); err != nil {
		return installplan.Summary{}, fmt.Errorf("disk: installer: %w", err)
	}
	if err := vm.Wait(); err != nil {
		return installplan.Summary{}, fmt.Errorf("disk: installer: %w", err)
	}
	return installplan.ParseSummary(m[1])
}
