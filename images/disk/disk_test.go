package disk

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"ftnas/images/kernel"
	"ftnas/raid"
)

func smallLayout() raid.LayoutOptions {
	return raid.LayoutOptions{ESPSize: 64 * raid.MiB, RootSize: 32 * raid.MiB, StateSize: 8 * raid.MiB, MinData: 8 * raid.MiB}
}

func TestDefaultDiskSize(t *testing.T) {
	lo := smallLayout()
	size := DefaultDiskSize(lo)
	// 1 MiB GPT + 64 + 2*32 + 8 + 8 MiB data + 2 MiB.
	if want := int64(1+64+64+8+8+2) * raid.MiB; size != want {
		t.Errorf("DefaultDiskSize = %d MiB, want %d MiB", size>>20, want>>20)
	}
	if _, err := raid.Plan([]raid.Disk{{Name: "vda", Size: size}}, lo); err != nil {
		t.Errorf("the default size does not fit the layout: %v", err)
	}
	if _, err := raid.Plan([]raid.Disk{{Name: "vda", Size: size - 2*raid.MiB}}, lo); err == nil {
		t.Errorf("2 MiB less still fits: the default is not the smallest")
	}
}

// TestGPTRoundTrip writes a layout's GPT on an image and reads it back.
func TestGPTRoundTrip(t *testing.T) {
	size := DefaultDiskSize(smallLayout())
	l, err := raid.Plan([]raid.Disk{{Name: "vda", Size: size}}, smallLayout())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "d.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := WriteGPT(f, size, l.Disks[0]); err != nil {
		t.Fatal(err)
	}
	got, err := ReadGPT(f)
	if err != nil {
		t.Fatal(err)
	}
	var want, gotParts []raid.Partition
	for _, p := range l.Disks[0].Partitions {
		p.Role = ""
		want = append(want, p)
	}
	guids := map[string]bool{}
	for _, p := range got {
		gotParts = append(gotParts, p.Partition)
		if len(p.GUID) != 36 || guids[p.GUID] {
			t.Errorf("partition %d: GUID %q missing or repeated", p.Number, p.GUID)
		}
		guids[p.GUID] = true
	}
	if !reflect.DeepEqual(gotParts, want) {
		t.Errorf("GPT read back:\n%+v\nwant\n%+v", got, want)
	}
	// Protective MBR signature and the GPT header at LBA 1.
	b := make([]byte, 1024)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if b[510] != 0x55 || b[511] != 0xaa || string(b[512:520]) != "EFI PART" {
		t.Errorf("no protective MBR or GPT header: % x / %q", b[510:512], b[512:520])
	}
	bad := l.Disks[0]
	bad.Partitions = append([]raid.Partition(nil), bad.Partitions...)
	bad.Partitions[0].Size++
	if err := WriteGPT(f, size, bad); err == nil || !strings.Contains(err.Error(), "whole sectors") {
		t.Errorf("odd-sized partition: %v", err)
	}
}

func TestCopyIntoSkipsZeros(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	data := make([]byte, 3<<20+100)
	copy(data[10:], "head")
	copy(data[2<<20+5:], "tail") // the second MiB is all zeros
	data[len(data)-1] = 1
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(8 << 20); err != nil {
		t.Fatal(err)
	}
	if err := copyInto(f, 1<<20, src); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, 1<<20); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Error("copied bytes differ from the source")
	}
	if err := copyInto(f, 0, filepath.Join(dir, "nope")); err == nil {
		t.Error("copy of a missing file succeeded")
	}
}

func TestCheckArrays(t *testing.T) {
	l, err := raid.Plan([]raid.Disk{{Name: "vda", Size: 1 << 30}, {Name: "vdb", Size: 1 << 30}}, smallLayout())
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]string{raid.RoleRootA: "aaa", raid.RoleRootB: "bbb"}
	var got []Array
	for _, a := range l.Arrays {
		got = append(got, Array{Role: a.Role, Name: a.Name, UUID: "u-" + a.Role, Level: string(a.Level), Members: 2, Size: 1, Image: images[a.Role]})
	}
	if err := checkArrays(l, images, got); err != nil {
		t.Fatal(err)
	}
	bad := append([]Array(nil), got...)
	bad[1].Image = "zzz"
	if err := checkArrays(l, images, bad); err == nil || !strings.Contains(err.Error(), "holds image") {
		t.Errorf("wrong image: %v", err)
	}
	bad = append([]Array(nil), got...)
	bad[0].Members = 1
	if err := checkArrays(l, images, bad); err == nil {
		t.Error("an array with a member short passed")
	}
	if err := checkArrays(l, images, got[:2]); err == nil {
		t.Error("missing arrays passed")
	}
}

func TestBuildRejectsMissingInputs(t *testing.T) {
	_, err := Build(t.Context(), Inputs{}, Options{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "inputs lack kernel") {
		t.Errorf("Build without inputs: %v", err)
	}
}

func TestSlotImage(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "userland.squashfs")
	if err := os.WriteFile(src, bytes.Repeat([]byte{7}, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "root-a.squashfs")
	size, err := slotImage(src, dst, raid.MiB)
	if err != nil || size != 8192 {
		t.Fatalf("slotImage = %d, %v", size, err)
	}
	if b, err := os.ReadFile(dst); err != nil || !bytes.Equal(b, bytes.Repeat([]byte{7}, 8192)) {
		t.Errorf("copy differs: %v", err)
	}
	if fa, err := os.Stat(src); err != nil {
		t.Fatal(err)
	} else if fb, err := os.Stat(dst); err != nil || os.SameFile(fa, fb) {
		t.Errorf("the slot image is the source file (%v): qemu would lock one file twice", err)
	}
	if _, err := slotImage(src, filepath.Join(dir, "small"), 4096); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("an image larger than the slot: %v", err)
	}
	odd := filepath.Join(dir, "odd")
	if err := os.WriteFile(odd, make([]byte, 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := slotImage(odd, filepath.Join(dir, "odd-a"), raid.MiB); err == nil {
		t.Error("an image of part of a 4 KiB block passed")
	}
}

func TestBuildTakesSlotImageForRootInit(t *testing.T) {
	_, err := Build(t.Context(), Inputs{Kernel: kernel.Kernel{Vmlinuz: "/nonexistent/vmlinuz"}, Bootloader: "/b", Mdadm: "/m", TestInit: "/t", BootInit: "/i", Installer: "/x"}, Options{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "inputs lack RootInit or SlotImage") {
		t.Errorf("Build without a root init or slot image: %v", err)
	}
}
