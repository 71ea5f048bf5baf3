//go:build linux

// Command adoptguest runs inside a qemu guest for raid's adopt qemu
// test: with three blank virtio disks (vda, vdb, vdc) and mdadm it
// partitions vda and vdb alike (ESP + two RAID partitions), builds two
// RAID1 arrays with internal bitmaps over partitions 2 and 3, writes data
// and the same ESP pattern on both disks, then treats vdb as dead (fails
// and removes its members) and adopts the blank vdc from vda with
// raid.Adopter. It waits for the rebuild and checks that the arrays are
// clean with vda and vdc, that vdc alone serves the data, that the ESPs
// hash the same and that vdc's table is vda's with fresh GUIDs; then it
// updates vda's ESP and checks raid.Adopter.SyncESP copies it to vdc. It prints
// "adopt: summary {json}" and exits non-zero on the first failure.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"ftnas/images/guest"
	"ftnas/raid"
	"ftnas/raid/internal/blockio"
)

// Summary is what the host test asserts on.
type Summary struct {
	RefusedPartitioned string             `json:"refused_partitioned"`
	VdbUnchanged       bool               `json:"vdb_unchanged"`
	From               string             `json:"from"`
	Added              []raid.AdoptJoin   `json:"added"`
	AdoptS             float64            `json:"adopt_s"`
	RebuildS           float64            `json:"rebuild_s"`
	Rebuilt            []raid.ArrayStatus `json:"rebuilt"`
	DataOK             bool               `json:"data_ok"`
	ESPHashes          []string           `json:"esp_hashes"`
	ESPPatternHash     string             `json:"esp_pattern_hash"`
	TableDiff          string             `json:"table_diff"`
	GUIDsFresh         bool               `json:"guids_fresh"`
	DiskGUIDs          []string           `json:"disk_guids"`
	// ESPSync is SyncESP's result after vda's ESP was updated; ESPUpdated
	// the hashes of vda's and vdc's ESP afterwards, ESPUpdateHash the
	// new pattern's.
	ESPSync       []raid.ESPSync `json:"esp_sync"`
	ESPUpdated    []string       `json:"esp_updated"`
	ESPUpdateHash string         `json:"esp_update_hash"`
}

// table is the layout of vda and vdb: a 2 MiB ESP (hashing is slow
// under TCG) and two RAID partitions on 64 MiB disks.
func table(disk string) raid.DiskTable {
	const mib = 2048 // sectors
	return raid.DiskTable{Disk: disk, SectorSize: 512, Size: 64 << 20, Partitions: []raid.GPTEntry{
		{Number: 1, Name: "ftnas-esp", Type: raid.TypeESP, FirstLBA: 1 * mib, LastLBA: 3*mib - 1},
		{Number: 2, Name: "ftnas-root-a", Type: raid.TypeLinuxRAID, FirstLBA: 3 * mib, LastLBA: 27*mib - 1},
		{Number: 3, Name: "ftnas-data", Type: raid.TypeLinuxRAID, FirstLBA: 27 * mib, LastLBA: 62*mib - 1},
	}}
}

var arrays = []struct{ dev, name string }{{"/dev/md0", "md0"}, {"/dev/md1", "md1"}}

func main() {
	if err := run(); err != nil {
		fmt.Println("adopt: FAILED:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	md := &raid.Mdadm{Path: "/sbin/mdadm", Logger: log}
	sys := os.DirFS("/sys/block")
	start := time.Now()
	var s Summary
	if err := guest.WaitBlockDevices([]string{"vda", "vdb", "vdc"}, 10*time.Second); err != nil {
		return err
	}
	if err := os.WriteFile("/proc/sys/dev/raid/speed_limit_min", []byte("200000\n"), 0); err != nil {
		return err
	}

	// 1. vda and vdb partitioned alike, each with its own GUIDs.
	for _, d := range []string{"vda", "vdb"} {
		if err := partition(d); err != nil {
			return err
		}
	}
	if err := waitPartitions([]string{"vda1", "vda2", "vda3", "vdb1", "vdb2", "vdb3"}, 10*time.Second); err != nil {
		return err
	}
	// 2. Two RAID1 arrays with bitmaps, data on each, the ESP on both.
	for i, a := range arrays {
		n := fmt.Sprint(i + 2)
		if err := md.Create(ctx, raid.CreateSpec{Device: a.dev, Name: "adopt" + n, Level: raid.RAID1, Homehost: "ftnas",
			Devices: []string{"/dev/vda" + n, "/dev/vdb" + n}, AssumeClean: true}); err != nil {
			return err
		}
	}
	data := [][]byte{blockio.Pattern(10, 6<<20), blockio.Pattern(11, 8<<20)}
	for i, a := range arrays {
		if err := blockio.WriteAt(a.dev, 1<<20, data[i]); err != nil {
			return err
		}
	}
	esp := blockio.Pattern(12, 2<<20)
	for _, d := range []string{"/dev/vda1", "/dev/vdb1"} {
		if err := blockio.WriteAt(d, 0, esp); err != nil {
			return err
		}
	}
	espExtent := table("vda").Partitions[0].Extent(512)
	var err error
	if s.ESPPatternHash, err = raid.HashPartition(readerAt(esp), raid.Partition{Number: 1, Start: 0, Size: espExtent.Size}); err != nil {
		return err
	}
	fmt.Printf("adopt: %6.2fs arrays built, data and ESP written\n", time.Since(start).Seconds())

	// 3. vdb dies: its members are failed and removed.
	for i, a := range arrays {
		dev := fmt.Sprintf("/dev/vdb%d", i+2)
		if err := md.Fail(ctx, a.dev, dev); err != nil {
			return err
		}
		if err := md.Remove(ctx, a.dev, dev); err != nil {
			return err
		}
	}

	ad := &raid.Adopter{Mdadm: md, Block: sys, ClassBlock: os.DirFS("/sys/class/block"), Logger: log}
	// 4. The dead disk is not blank: adopting it is refused, untouched.
	vdbHead, err := readHead("/dev/vdb")
	if err != nil {
		return err
	}
	_, err = ad.Adopt(ctx, "vdb", "")
	if !errors.Is(err, raid.ErrAdoptRefused) {
		return fmt.Errorf("adopt of the partitioned vdb: %v; want a refusal", err)
	}
	s.RefusedPartitioned = err.Error()
	after, err := readHead("/dev/vdb")
	if err != nil {
		return err
	}
	s.VdbUnchanged = string(after) == string(vdbHead)

	// 5. Adopt the blank vdc from vda.
	t0 := time.Now()
	res, err := ad.Adopt(ctx, "vdc", "vda")
	if err != nil {
		return err
	}
	s.AdoptS = time.Since(t0).Seconds()
	s.From, s.Added = res.From, res.Added
	fmt.Printf("adopt: %6.2fs adopted vdc from %s in %.2fs: %+v\n", time.Since(start).Seconds(), res.From, s.AdoptS, res.Added)
	deadline := time.Now().Add(60 * time.Second)
	for _, a := range arrays {
		for {
			st, err := raid.ReadArray(sys, a.name)
			if err != nil {
				return err
			}
			if st.Healthy() && len(st.Members) == 2 {
				s.Rebuilt = append(s.Rebuilt, st)
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not rebuilt after 60 s: %+v", a.name, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	s.RebuildS = time.Since(t0).Seconds()
	fmt.Printf("adopt: %6.2fs rebuilt\n", time.Since(start).Seconds())

	// 6. The ESPs are copies; the tables equal but for the GUIDs.
	for _, d := range []string{"/dev/vda", "/dev/vdc"} {
		f, err := os.Open(d)
		if err != nil {
			return err
		}
		h, err := raid.HashPartition(f, espExtent)
		f.Close()
		if err != nil {
			return err
		}
		s.ESPHashes = append(s.ESPHashes, h)
	}
	ta, err := readTable("vda")
	if err != nil {
		return err
	}
	tc, err := readTable("vdc")
	if err != nil {
		return err
	}
	if err := raid.CompareTables(ta, tc, false); err != nil {
		s.TableDiff = err.Error()
	}
	seen := map[string]bool{}
	s.GUIDsFresh = true
	for _, t := range []raid.DiskTable{ta, tc} {
		s.DiskGUIDs = append(s.DiskGUIDs, t.GUID)
		for _, g := range append([]string{t.GUID}, guids(t)...) {
			if g == "" || seen[g] {
				s.GUIDsFresh = false
			}
			seen[g] = true
		}
	}

	// 7. A firmware update rewrites vda's ESP; SyncESP brings vdc's along.
	update := blockio.Pattern(13, 2<<20)
	if err := blockio.WriteAt("/dev/vda1", 0, update); err != nil {
		return err
	}
	if s.ESPUpdateHash, err = raid.HashPartition(readerAt(update), raid.Partition{Number: 1, Start: 0, Size: espExtent.Size}); err != nil {
		return err
	}
	if s.ESPSync, err = ad.SyncESP(ctx, "vda"); err != nil {
		return err
	}
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return err
	}
	for _, d := range []string{"/dev/vda", "/dev/vdc"} {
		f, err := os.Open(d)
		if err != nil {
			return err
		}
		h, err := raid.HashPartition(f, espExtent)
		f.Close()
		if err != nil {
			return err
		}
		s.ESPUpdated = append(s.ESPUpdated, h)
	}

	// 8. vda fails too: vdc alone must hold all the data.
	s.DataOK = true
	for i, a := range arrays {
		if err := md.Fail(ctx, a.dev, fmt.Sprintf("/dev/vda%d", i+2)); err != nil {
			return err
		}
		ok, err := blockio.Verify(a.dev, 1<<20, data[i])
		if err != nil {
			return err
		}
		s.DataOK = s.DataOK && ok
		if err := md.Stop(ctx, a.dev); err != nil {
			return err
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	fmt.Printf("adopt: summary %s\n", b)
	return nil
}

type readerAt []byte

func (r readerAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(r)) {
		return 0, fmt.Errorf("read at %d beyond %d bytes", off, len(r))
	}
	n := copy(p, r[off:])
	if n < len(p) {
		return n, fmt.Errorf("short read at %d", off)
	}
	return n, nil
}

func guids(t raid.DiskTable) []string {
	var out []string
	for _, e := range t.Partitions {
		out = append(out, e.GUID)
	}
	return out
}

// partition writes table(disk) and has the kernel re-read it.
func partition(disk string) error {
	f, err := os.OpenFile("/dev/"+disk, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := raid.WriteDiskTable(f, table(disk)); err != nil {
		return err
	}
	if err := unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0); err != nil {
		return fmt.Errorf("BLKRRPART %s: %w", disk, err)
	}
	return nil
}

func readTable(disk string) (raid.DiskTable, error) {
	f, err := os.Open("/dev/" + disk)
	if err != nil {
		return raid.DiskTable{}, err
	}
	defer f.Close()
	return raid.ReadDiskTable(f, disk, 512)
}

// readHead reads the first MiB of a disk, past the page cache.
func readHead(dev string) ([]byte, error) {
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return nil, err
	}
	f, err := os.Open(dev)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 1<<20)
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("read %s: %w", dev, err)
	}
	return b, nil
}

// waitPartitions waits for partitions to show in sysfs and /dev.
func waitPartitions(names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, n := range names {
		for {
			_, err := os.Stat("/sys/class/block/" + n + "/partition")
			if err == nil {
				_, err = os.Stat("/dev/" + n)
			}
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("wait for partition %s: %w", n, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}
