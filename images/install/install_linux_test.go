package install

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ftnas/images/boot"
	"ftnas/images/guest"
	"ftnas/images/update"
	"ftnas/raid"
)

// loopDisk attaches a 16 MiB image holding marks (offset -> bytes; a
// negative offset counts from the end) as a loop device and returns its
// kernel name and the image's path.
func loopDisk(t *testing.T, marks map[int64][]byte) (string, string) {
	t.Helper()
	return attachLoop(t, marks, "--find", "--show")
}

// attachLoop is loopDisk with losetup's flags.
func attachLoop(t *testing.T, marks map[int64][]byte, flags ...string) (string, string) {
	t.Helper()
	const size = 16 * raid.MiB
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, b := range marks {
		if off < 0 {
			off += size
		}
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	out, err := exec.Command("losetup", append(flags, p)...).CombinedOutput()
	if err != nil {
		t.Skipf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return filepath.Base(dev), p
}

func hashFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// bundle is an unsigned bundle with a 4 KiB slot image.
func bundle(t *testing.T) []byte {
	t.Helper()
	img := bytes.Repeat([]byte{0x5a}, 4096)
	h := sha256.Sum256(img)
	hdr, err := update.Header(update.Manifest{Version: "t1", Parts: []update.Part{{Name: update.PartRootfs, Size: int64(len(img)), SHA256: hex.EncodeToString(h[:])}}})
	if err != nil {
		t.Fatal(err)
	}
	return append(hdr, img...)
}

// TestInstallRefusesLoopDisks runs Install on loop devices: disks that
// are not blank, too few for the level and unknown names are refused,
// each named, and nothing is written; an unsigned bundle on a box that
// trusts keys is refused first.
func TestInstallRefusesLoopDisks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("needs losetup:", err)
	}
	blankDev, blankImg := loopDisk(t, nil)
	gptDev, gptImg := loopDisk(t, map[int64][]byte{510: {0x55, 0xaa}, 512: []byte("EFI PART")})
	mdDev, mdImg := loopDisk(t, map[int64][]byte{-8192: {0xfc, 0x4e, 0x2b, 0xa9}})
	before := map[string]string{}
	for _, p := range []string{blankImg, gptImg, mdImg} {
		before[p] = hashFile(t, p)
	}
	in := &Installer{
		Mdadm:      &raid.Mdadm{},
		KeysDir:    t.TempDir(), // trusts no key
		Cmdline:    func() ([]guest.Param, error) { return guest.ParseCmdline("ftnas.slot=a") },
		LoaderVars: func() (boot.LoaderVars, bool, error) { return boot.LoaderVars{}, false, nil },
	}
	_, err := in.Install(t.Context(), bytes.NewReader(bundle(t)), Options{Disks: []string{"/dev/" + blankDev, gptDev, mdDev}, AllowUnsigned: true})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("not blank: %v, want a refusal", err)
	}
	t.Logf("refused: %v", err)
	for _, want := range []string{gptDev + ": not blank: found an MBR signature, a GPT header", mdDev + ": not blank: found md superblock magic at byte"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), blankDev+":") {
		t.Errorf("error %q names the blank disk %s", err, blankDev)
	}
	_, err = in.Install(t.Context(), bytes.NewReader(bundle(t)), Options{Disks: []string{blankDev}, DataLevel: raid.RAID5, AllowUnsigned: true})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "raid5 needs at least 3 disks, 1 named ("+blankDev+")") {
		t.Errorf("too few disks: %v", err)
	}
	_, err = in.Install(t.Context(), bytes.NewReader(bundle(t)), Options{Disks: []string{blankDev, "nosuchdisk9"}, AllowUnsigned: true})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "nosuchdisk9: no such block device") {
		t.Errorf("unknown disk: %v", err)
	}
	// Unsigned without --allow-unsigned: refused before the disks are
	// looked at.
	_, err = in.Install(t.Context(), bytes.NewReader(bundle(t)), Options{Disks: []string{"nosuchdisk9"}})
	if !errors.Is(err, update.ErrFormat) || errors.Is(err, ErrRefused) {
		t.Errorf("unsigned bundle: %v, want an untrusted bundle", err)
	}
	for p, h := range before {
		if got := hashFile(t, p); got != h {
			t.Errorf("%s changed", p)
		}
	}
}

// TestInstallWipeLoopDisk: a disk an install laid out and then failed on
// is wiped blank again: its GPTs and the md superblock in a partition are
// gone and inspect finds it blank, so the install can be run again (and
// the adopter would take it). The kernel here parses no partition tables
// (no CONFIG_EFI_PARTITION), so the table is written into the image and
// the disk's partitions are never the kernel's; that they vanish with the
// wipe's BLKRRPART is for the qemu lab.
func TestInstallWipeLoopDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("needs losetup:", err)
	}
	dev, img := attachLoop(t, nil, "--find", "--show", "--partscan")
	in := &Installer{Mdadm: &raid.Mdadm{}}
	blank, err := in.inspect(dev, nil)
	if err != nil {
		t.Fatalf("inspect the new loop disk: %v", err)
	}
	const mib = raid.MiB
	layout := raid.DiskLayout{Disk: dev, Partitions: []raid.Partition{
		{Number: 1, Role: raid.RoleESP, Label: "ftnas-esp", Type: raid.TypeESP, Start: 1 * mib, Size: 4 * mib},
		{Number: 2, Role: raid.RoleRootA, Label: "ftnas-root-a", Type: raid.TypeLinuxRAID, Start: 5 * mib, Size: 5 * mib},
		{Number: 3, Role: raid.RoleRootB, Label: "ftnas-root-b", Type: raid.TypeLinuxRAID, Start: 10 * mib, Size: 5 * mib},
	}}
	// Written through the device: its page cache is what inspect reads.
	f, err := os.OpenFile("/dev/"+dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	tbl := raid.DiskTable{Disk: dev, SectorSize: blank.SectorSize, Size: blank.Size}
	for _, p := range layout.Partitions {
		tbl.Partitions = append(tbl.Partitions, raid.GPTEntry{Number: p.Number, Name: p.Label, Type: p.Type,
			FirstLBA: uint64(p.Start / blank.SectorSize), LastLBA: uint64((p.Start+p.Size)/blank.SectorSize - 1)})
	}
	if err := raid.WriteDiskTable(f, tbl); err != nil {
		t.Fatal(err)
	}
	// An md superblock in partition 2, as mdadm --create leaves it.
	if _, err := f.WriteAt([]byte{0xfc, 0x4e, 0x2b, 0xa9}, 5*mib+4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if d, err := in.inspect(dev, nil); err != nil || len(d.Signatures) == 0 {
		t.Fatalf("inspect the laid-out disk: %+v, %v; want its GPT found", d, err)
	}
	if err := in.wipe(layout, blank); err != nil {
		t.Fatalf("wipe: %v", err)
	}
	// wipe synced the device: the image holds the zeros.
	if d, err := in.inspect(dev, nil); err != nil || len(d.Signatures) != 0 {
		t.Fatalf("inspect the wiped disk: %+v, %v; want it blank", d, err)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{510, 512, 5*mib + 4096, int64(len(b)) - 512} {
		if !bytes.Equal(b[off:off+2], make([]byte, 2)) {
			t.Errorf("byte %d of the wiped disk is not zero: % x", off, b[off:off+2])
		}
	}
}
