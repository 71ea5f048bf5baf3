package raid_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"ftnas/raid"
)

const smallDisk = 5 * raid.MiB

// smallTable is a 3-partition table (ESP + two RAID partitions of 1 MiB)
// on a 5 MiB disk.
func smallTable(disk string) raid.DiskTable {
	return raid.DiskTable{Disk: disk, SectorSize: 512, Size: smallDisk, Partitions: []raid.GPTEntry{
		{Number: 1, Name: "ftnas-esp", Type: raid.TypeESP, FirstLBA: 2048, LastLBA: 2048*2 - 1, Attributes: 1},
		{Number: 2, Name: "ftnas-root-a", Type: raid.TypeLinuxRAID, FirstLBA: 2048 * 2, LastLBA: 2048*3 - 1},
		{Number: 3, Name: "ftnas-data", Type: raid.TypeLinuxRAID, FirstLBA: 2048 * 3, LastLBA: 2048*4 - 1},
	}}
}

func newImage(t *testing.T, dir, name string, size int64) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return f
}

// imageDir is a temporary directory, on tmpfs when there is one: the
// GPT writer syncs after every write.
func imageDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "raid-adopt-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestDiskTableRoundTrip(t *testing.T) {
	dir := imageDir(t)
	f := newImage(t, dir, "vda", smallDisk)
	want := smallTable("vda")
	if err := raid.WriteDiskTable(f, want); err != nil {
		t.Fatal(err)
	}
	got, err := raid.ReadDiskTable(f, "vda", 512)
	if err != nil {
		t.Fatal(err)
	}
	if err := raid.CompareTables(want, got, false); err != nil {
		t.Errorf("read back: %v", err)
	}
	if got.GUID == "" || got.Partitions[0].GUID == "" || got.Partitions[0].GUID == got.Partitions[1].GUID {
		t.Errorf("GUIDs not made up: %+v", got)
	}
	head := make([]byte, 1024)
	if _, err := f.ReadAt(head, 0); err != nil {
		t.Fatal(err)
	}
	if s := raid.DiskSignatures(head, 512); len(s) != 2 {
		t.Errorf("signatures of a GPT disk = %q", s)
	}
	if sfdisk, err := exec.LookPath("sfdisk"); err == nil {
		out, err := exec.Command(sfdisk, "--dump", f.Name()).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "start=        4096, size=        2048, type=A19D880F-05FC-4D3B-A006-743F0F84911E") {
			t.Errorf("sfdisk --dump: %v\n%s", err, out)
		}
	}
}

// adoptRig is an Adopter over a fake sysfs whose "devices" are image
// files: vda is partitioned like smallTable with its RAID partitions in
// md0 and md1, vdc is the would-be blank disk.
type adoptRig struct {
	a        *raid.Adopter
	vda, vdc *os.File
	mdadm    []string
}

func newAdoptRig(t *testing.T) *adoptRig {
	dir := imageDir(t)
	r := &adoptRig{vda: newImage(t, dir, "vda", smallDisk), vdc: newImage(t, dir, "vdc", smallDisk)}
	if err := raid.WriteDiskTable(r.vda, smallTable("vda")); err != nil {
		t.Fatal(err)
	}
	block := fstest.MapFS{}
	for i, m := range []string{"vda2", "vda3"} {
		md := "md" + string(rune('0'+i))
		for k, v := range map[string]string{"level": "raid1", "array_state": "clean", "raid_disks": "2", "degraded": "1",
			"sync_action": "idle", "dev-" + m + "/state": "in_sync", "dev-" + m + "/slot": "0"} {
			block[md+"/md/"+k] = &fstest.MapFile{Data: []byte(v + "\n")}
		}
	}
	class := fstest.MapFS{}
	for _, d := range []string{"vda", "vdc"} {
		class[d+"/size"] = &fstest.MapFile{Data: []byte("10240\n")}
		class[d+"/queue/logical_block_size"] = &fstest.MapFile{Data: []byte("512\n")}
		class[d+"/queue/physical_block_size"] = &fstest.MapFile{Data: []byte("512\n")}
		block[d+"/size"] = class[d+"/size"]
	}
	for _, p := range []string{"vda1", "vda2", "vda3"} {
		class["vda/"+p+"/partition"] = &fstest.MapFile{Data: []byte(p[3:] + "\n")}
		class[p+"/partition"] = class["vda/"+p+"/partition"]
	}
	run := func(_ context.Context, name string, args ...string) ([]byte, []byte, error) {
		r.mdadm = append(r.mdadm, strings.Join(args, " "))
		if args[0] == "--examine" {
			return nil, []byte("mdadm: No md superblock detected on " + args[2] + ".\n"), &exec.ExitError{}
		}
		return nil, nil, nil
	}
	r.a = &raid.Adopter{Mdadm: &raid.Mdadm{Run: run}, Block: block, ClassBlock: class, DevDir: dir, Rand: seeded()}
	return r
}

func TestAdopterRefusesNonBlank(t *testing.T) {
	ctx := context.Background()
	gptHead := func(f *os.File) { f.WriteAt([]byte("EFI PART"), 512) }
	magicAt := func(off int64) func(*os.File) {
		return func(f *os.File) {
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], 0xa92b4efc)
			f.WriteAt(b[:], off)
		}
	}
	for _, c := range []struct {
		name, disk, from string
		prep             func(*os.File)
		sys              func(class fstest.MapFS)
		want             string
		notFound         bool
	}{
		{name: "GPT header", disk: "vdc", from: "vda", prep: gptHead, want: "vdc is not blank: found a GPT header"},
		{name: "ext4 on the whole disk", disk: "vdc", from: "vda", prep: func(f *os.File) { f.WriteAt([]byte{0x53, 0xef}, 1080) },
			want: "vdc is not blank: found an ext2/3/4 file system"},
		{name: "whole-disk md 1.2", disk: "vdc", from: "vda", prep: magicAt(4096), want: "md superblock magic at byte 4096"},
		{name: "stale member in partition 2", disk: "vdc", from: "vda", prep: magicAt(2048*2*512 + 4096),
			want: "where partition 2 would start its superblock"},
		{name: "partitioned", disk: "vdc", from: "", want: "vdc is not blank: it has partitions vdc1",
			sys: func(class fstest.MapFS) { class["vdc/vdc1/partition"] = &fstest.MapFile{Data: []byte("1\n")} }},
		{name: "held", disk: "vdc", from: "", want: "vdc is not blank: it is held by dm-0",
			sys: func(class fstest.MapFS) { class["vdc/holders/dm-0"] = &fstest.MapFile{Mode: fs.ModeDir} }},
		{name: "partition", disk: "vda2", from: "vda", want: "vda2 is a partition"},
		{name: "missing", disk: "vdq", from: "vda", notFound: true, want: "vdq: file does not exist"},
		{name: "bad name", disk: "../vda", from: "vda", want: "bad disk name"},
		{name: "source is blank", disk: "vda", from: "vdc", want: "source disk vdc: no readable GPT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newAdoptRig(t)
			if c.prep != nil {
				c.prep(r.vdc)
			}
			if c.sys != nil {
				c.sys(r.a.ClassBlock.(fstest.MapFS))
			}
			before, _ := os.ReadFile(r.vdc.Name())
			vdaBefore, _ := os.ReadFile(r.vda.Name())
			_, err := r.a.Adopt(ctx, c.disk, c.from)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Adopt = %v; want an error mentioning %q", err, c.want)
			}
			if c.notFound != errors.Is(err, os.ErrNotExist) || c.notFound == errors.Is(err, raid.ErrAdoptRefused) {
				t.Errorf("Adopt = %v: not-found %v, refused %v", err, errors.Is(err, os.ErrNotExist), errors.Is(err, raid.ErrAdoptRefused))
			}
			after, _ := os.ReadFile(r.vdc.Name())
			vdaAfter, _ := os.ReadFile(r.vda.Name())
			if !bytes.Equal(before, after) || !bytes.Equal(vdaBefore, vdaAfter) {
				t.Error("a refused adopt changed a disk")
			}
			for _, m := range r.mdadm {
				if !strings.HasPrefix(m, "--examine") {
					t.Errorf("refused adopt ran mdadm %s", m)
				}
			}
		})
	}
}

// TestAdopterWritesTable runs Adopt onto an image file: the table is
// written like the source's, then the kernel re-read fails (a file is no
// block device) and the error names the step; nothing is added.
func TestAdopterWritesTable(t *testing.T) {
	r := newAdoptRig(t)
	res, err := r.a.Adopt(context.Background(), "vdc", "")
	if err == nil || !strings.Contains(err.Error(), "raid: adopt vdc: re-read partition table (BLKRRPART)") {
		t.Fatalf("Adopt onto a file = %v; want the BLKRRPART step to fail", err)
	}
	if res.From != "vda" || len(res.Added) != 0 || res.Plan.ESP != 1 || len(res.Plan.Joins) != 2 {
		t.Errorf("result = %+v", res)
	}
	got, err := raid.ReadDiskTable(r.vdc, "vdc", 512)
	if err != nil {
		t.Fatal(err)
	}
	src, err := raid.ReadDiskTable(r.vda, "vda", 512)
	if err != nil {
		t.Fatal(err)
	}
	if err := raid.CompareTables(src, got, false); err != nil {
		t.Errorf("vdc's table differs from vda's: %v", err)
	}
	if got.GUID == src.GUID || got.Partitions[1].GUID == src.Partitions[1].GUID {
		t.Error("vdc has vda's GUIDs")
	}
	for _, m := range r.mdadm {
		if strings.Contains(m, "--add") {
			t.Errorf("mdadm %s ran although the partitions never appeared", m)
		}
	}
}

// vdcMember makes vdc a member disk like vda: its table, its kernel
// partitions, and vdc(i+2) in sync in slot 1 of array mds[i] (md0, md1:
// vdc2 and vdc3, as vda2 and vda3).
func (r *adoptRig) vdcMember(t *testing.T, mds ...string) {
	t.Helper()
	if err := raid.WriteDiskTable(r.vdc, smallTable("vdc")); err != nil {
		t.Fatal(err)
	}
	class := r.a.ClassBlock.(fstest.MapFS)
	for _, p := range []string{"vdc1", "vdc2", "vdc3"} {
		class["vdc/"+p+"/partition"] = &fstest.MapFile{Data: []byte(p[3:] + "\n")}
	}
	block := r.a.Block.(fstest.MapFS)
	for i, md := range mds {
		p := "vdc" + string(rune('2'+i))
		block[md+"/md/dev-"+p+"/state"] = &fstest.MapFile{Data: []byte("in_sync\n")}
		block[md+"/md/dev-"+p+"/slot"] = &fstest.MapFile{Data: []byte("1\n")}
	}
}

// TestSyncESP runs SyncESP over image files standing for vda, vdc and
// their ESP partition devices: vdc's differing ESP is overwritten with
// vda's, and a second run finds them equal and copies nothing.
func TestSyncESP(t *testing.T) {
	r := newAdoptRig(t)
	r.vdcMember(t, "md0")
	dir := filepath.Dir(r.vda.Name())
	esp := bytes.Repeat([]byte("new ESP!"), int(raid.MiB/8))
	if err := os.WriteFile(filepath.Join(dir, "vda1"), esp, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vdc1"), bytes.Repeat([]byte("old ESP."), int(raid.MiB/8)), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := r.a.SyncESP(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Disk != "vda" || res[1].Disk != "vdc" || !res[1].Copied || res[1].Before == res[1].After || res[1].After != res[0].After {
		t.Errorf("SyncESP = %+v", res)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "vdc1")); !bytes.Equal(got, esp) {
		t.Error("vdc1 is not a copy of vda1")
	}
	res, err = r.a.SyncESP(context.Background(), "vda")
	if err != nil || len(res) != 2 || res[1].Copied {
		t.Errorf("second SyncESP = %+v, %v; want nothing copied", res, err)
	}
	// An ESP of another size is not overwritten.
	if err := os.WriteFile(filepath.Join(dir, "vdc1"), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.a.SyncESP(context.Background(), "vda"); err == nil || !strings.Contains(err.Error(), "raid: ESP sync vdc from vda") {
		t.Errorf("SyncESP onto a short ESP = %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "vdc1")); string(got) != "short" {
		t.Error("a short ESP was written")
	}
}

// TestSyncESPReturned: vda comes back after an update edited vdc's ESP
// while it was away; its members are in sync again at once (bitmap), so
// it ties with vdc as a source and wins by name, but the returned disk
// is never the source: vda gets vdc's new ESP, not the other way round.
func TestSyncESPReturned(t *testing.T) {
	r := newAdoptRig(t)
	r.vdcMember(t, "md0", "md1")
	dir := filepath.Dir(r.vda.Name())
	updated := bytes.Repeat([]byte("new ESP!"), int(raid.MiB/8))
	if err := os.WriteFile(filepath.Join(dir, "vdc1"), updated, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vda1"), bytes.Repeat([]byte("old ESP."), int(raid.MiB/8)), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := r.a.SyncESPReturned(context.Background(), []string{"vda2", "vda3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Disk != "vdc" || res[1].Disk != "vda" || !res[1].Copied {
		t.Errorf("SyncESPReturned = %+v, want vda re-copied from vdc", res)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "vda1")); !bytes.Equal(got, updated) {
		t.Error("vda1 is not a copy of vdc's updated ESP")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "vdc1")); !bytes.Equal(got, updated) {
		t.Error("the returned disk's old ESP overwrote vdc's")
	}
	// Every disk returned: no source left, nothing written.
	if _, err := r.a.SyncESPReturned(context.Background(), []string{"vda2", "vdc2"}); !errors.Is(err, raid.ErrAdoptRefused) {
		t.Errorf("all disks returned: %v, want a refusal", err)
	}
}
