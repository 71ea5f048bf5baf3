package update

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ftnas/images/boot"
	"ftnas/images/esp"
	"ftnas/images/guest"
	"ftnas/raid"
)

const espGUID = "11111111-2222-3333-4444-555555555555"

// fakeBox lays out a box in a directory: /dev/vda with a GPT whose ESP
// is the file /dev/vda1 (an ESP image as disk.Build writes it), the
// running slot a, and the array of slot b as the file /dev/md126.
func fakeBox(t *testing.T) (*Updater, string, *boot.LoaderVars, *string) {
	t.Helper()
	dir := t.TempDir()
	dev, sys := filepath.Join(dir, "dev"), filepath.Join(dir, "sys", "block")
	for _, d := range []string{filepath.Join(dev, "md"), filepath.Join(sys, "vda", "queue"), filepath.Join(sys, "md126")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sys, "vda", "queue", "logical_block_size"), []byte("512\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const espSize = 34 << 20
	f, err := os.Create(filepath.Join(dev, "vda"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	if err := raid.WriteDiskTable(f, raid.DiskTable{Disk: "vda", SectorSize: 512, Size: 64 << 20, Partitions: []raid.GPTEntry{
		{Number: 1, Name: "ftnas-esp", Type: raid.TypeESP, GUID: strings.ToUpper(espGUID), FirstLBA: 2048, LastLBA: 2048 + espSize/512 - 1},
	}}); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	files, err := esp.Files(esp.Config{Bootloader: write("sdboot", "boot"), Slots: []esp.Slot{
		{Name: "a", Kernel: write("k", "old kernel"), Initrd: write("i", "old initrd"), Options: "ftnas.slot=a"},
		{Name: "b", Kernel: write("k", "old kernel"), Initrd: write("i", "old initrd"), Options: "ftnas.slot=b"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := esp.WriteImage(filepath.Join(dev, "vda1"), espSize, files); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dev, "md126"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../md126", filepath.Join(dev, "md", "ftnas-root-b")); err != nil {
		t.Fatal(err)
	}
	slot := "a"
	lv := &boot.LoaderVars{Info: "systemd-boot 252", Entry: "ftnas-1-a.conf", ESP: espGUID}
	u := &Updater{
		SysBlock: sys, DevDir: dev, ReleaseFile: filepath.Join(dir, "etc", "ftnas", "release"),
		Cmdline:    func() ([]guest.Param, error) { return guest.ParseCmdline("console=ttyS0 ftnas.slot=" + slot) },
		LoaderVars: func() (boot.LoaderVars, bool, error) { return *lv, true, nil },
	}
	return u, dir, lv, &slot
}

func readESP(t *testing.T, dir string, fn func(*ESP)) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "dev", "vda1"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	e, err := OpenESP(f, 0, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	fn(e)
}

func TestUpdateAndBless(t *testing.T) {
	u, dir, lv, slot := fakeBox(t)
	rootfs := bytes.Repeat([]byte("new slot "), 50_000)
	src := t.TempDir()
	for n, b := range map[string][]byte{"rootfs": rootfs, "k": []byte("new kernel"), "i": []byte("new initrd")} {
		if err := os.WriteFile(filepath.Join(src, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The box trusts the vendor's key.
	vendor, vendorPub, vendorID := testKey(1)
	stranger, _, strangerID := testKey(2)
	u.KeysDir = filepath.Join(dir, "etc", "ftnas", "update-keys")
	if err := os.MkdirAll(u.KeysDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(u.KeysDir, vendorID.String()+".pub"), MarshalPublicKey(vendorPub), 0o644); err != nil {
		t.Fatal(err)
	}
	srcs := Sources{Version: "v2", Rootfs: filepath.Join(src, "rootfs"), Kernel: filepath.Join(src, "k"), Initrd: filepath.Join(src, "i")}
	mkBundle := func(name string, keys ...ed25519.PrivateKey) string {
		t.Helper()
		s := srcs
		s.Keys = keys
		p := filepath.Join(src, name)
		if _, err := Create(p, s); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bundle := mkBundle("bundle", vendor)

	// Refused before anything is touched: the ESP and the target's array
	// are byte for byte as they were.
	espBefore, _ := os.ReadFile(filepath.Join(dir, "dev", "vda1"))
	mdBefore, _ := os.ReadFile(filepath.Join(dir, "dev", "md126"))
	good, _ := os.ReadFile(bundle)
	tampered := bytes.Replace(good, []byte(`"version":"v2"`), []byte(`"version":"v9"`), 1)
	unsigned, _ := os.ReadFile(mkBundle("unsigned"))
	strangers, _ := os.ReadFile(mkBundle("stranger", stranger))
	for _, tt := range []struct {
		name  string
		b     []byte
		o     Options
		want  string
		noDir bool
	}{
		{"bad signature", tampered, Options{}, "bad signature by key " + vendorID.String(), false},
		{"unknown key", strangers, Options{}, "signed by unknown key " + strangerID.String(), false},
		{"unsigned", unsigned, Options{AllowUnsigned: true}, "unsigned bundle (format 2)", false},
		{"no keys", good, Options{}, "trusts no update key", true},
	} {
		keysDir := u.KeysDir
		if tt.noDir {
			u.KeysDir = filepath.Join(dir, "no-keys")
		}
		_, err := u.Update(context.Background(), bytes.NewReader(tt.b), tt.o)
		u.KeysDir = keysDir
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrUntrusted) {
			t.Errorf("%s: %v, want ErrUntrusted with %q", tt.name, err, tt.want)
		}
		espNow, _ := os.ReadFile(filepath.Join(dir, "dev", "vda1"))
		mdNow, _ := os.ReadFile(filepath.Join(dir, "dev", "md126"))
		if !bytes.Equal(espNow, espBefore) || !bytes.Equal(mdNow, mdBefore) {
			t.Fatalf("%s: the refused bundle changed the ESP or the slot's array", tt.name)
		}
	}

	bf, err := os.Open(bundle)
	if err != nil {
		t.Fatal(err)
	}
	defer bf.Close()
	if st, err := u.Status(); err != nil || st.State != StateGood || st.Running != "a" || st.Next != "a" || st.ESP != "vda" || st.Booted != "ftnas-1-a.conf" ||
		st.Version != "unknown" || st.Serial != 0 || st.ReleaseErr != "" {
		t.Fatalf("status before the update: %+v, %v", st, err)
	}
	res, err := u.Update(context.Background(), bf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := u.Status(); err != nil || st.State != StateUpdatePending || st.Next != "b" || !st.Slots[1].Trial || st.Slots[1].TriesLeft != 3 {
		t.Fatalf("status after the update: %+v, %v", st, err)
	}
	if res.SignedBy != vendorID.String() || res.Unverified || res.Running != "a" || res.Slot != "b" || res.Entry != "ftnas-1-b+3.conf" || res.Tries != 3 || !res.BootFiles || res.ESPFrom != "vda" || res.SHA256 != sum(rootfs) || res.Version != "v2" {
		t.Errorf("result %+v", res)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "dev", "md126"))
	if !bytes.Equal(md[:len(rootfs)], rootfs) {
		t.Error("the slot's array does not hold the rootfs")
	}
	readESP(t, dir, func(e *ESP) {
		names, err := e.EntryNames()
		if err != nil || strings.Join(names, " ") != "ftnas-0-a.conf ftnas-1-b+3.conf" {
			t.Errorf("entries %v, %v", names, err)
		}
		for p, want := range map[string]string{esp.KernelPath("b"): "new kernel", esp.InitrdPath("b"): "new initrd", esp.KernelPath("a"): "old kernel"} {
			if b, err := e.ReadFile(p); err != nil || string(b) != want {
				t.Errorf("%s: %q, %v; want %q", p, b, err, want)
			}
		}
		conf, _ := e.ReadFile(esp.LoaderConfPath)
		if !strings.HasPrefix(string(conf), "default ftnas-*\n") {
			t.Errorf("loader.conf %q", conf)
		}
		// The loader's first try.
		if err := e.Apply([]Rename{{"ftnas-1-b+3.conf", "ftnas-1-b+2-1.conf"}}); err != nil {
			t.Fatal(err)
		}
	})
	*slot, lv.Entry = "b", "ftnas-1-b+2-1.conf"
	if st, err := u.Status(); err != nil || st.State != StateTrial || st.Running != "b" || !st.Slots[1].Running || st.Slots[1].TriesDone != 1 {
		t.Fatalf("status on the first try: %+v, %v", st, err)
	}
	br, err := u.Bless(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if br.State != Blessed || br.Entry != "ftnas-1-b.conf" || br.Booted != "ftnas-1-b+2-1.conf" || br.Found != "ftnas-1-b+2-1.conf" || br.Slot != "b" {
		t.Errorf("bless %+v", br)
	}
	readESP(t, dir, func(e *ESP) {
		names, _ := e.EntryNames()
		if strings.Join(names, " ") != "ftnas-0-a.conf ftnas-1-b.conf" {
			t.Errorf("entries after bless: %v", names)
		}
	})

	// A damaged bundle: the slot's entry stays disabled, nothing boots it.
	*slot = "b"
	b, _ := os.ReadFile(bundle)
	b[len(b)-len("new initrd")-len("new kernel")-1] ^= 0xff // last rootfs byte
	if err := os.MkdirAll(filepath.Join(dir, "sys", "class", "block"), 0o755); err != nil {
		t.Fatal(err)
	}
	u.SysClassBlock = filepath.Join(dir, "sys", "class", "block")
	if _, err := u.Update(context.Background(), bytes.NewReader(b), Options{}); err == nil || !strings.Contains(err.Error(), "no member of ftnas-root-a") {
		t.Fatalf("update with no array for slot a: %v", err)
	}
	readESP(t, dir, func(e *ESP) {
		names, _ := e.EntryNames()
		if strings.Join(names, " ") != "ftnas-0-a+0.conf ftnas-1-b.conf" {
			t.Errorf("entries after a failed update: %v", names)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "dev", "md125"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../md125", filepath.Join(dir, "dev", "md", "ftnas-root-a")); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Update(context.Background(), bytes.NewReader(b), Options{}); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("update with a damaged bundle: %v", err)
	}
	readESP(t, dir, func(e *ESP) {
		names, _ := e.EntryNames()
		if strings.Join(names, " ") != "ftnas-0-a+0.conf ftnas-1-b.conf" {
			t.Errorf("entries after a damaged bundle: %v", names)
		}
	})
	if _, err := u.Update(context.Background(), strings.NewReader("garbage that is no bundle"), Options{}); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Errorf("garbage: %v", err)
	}
	if _, err := u.Update(context.Background(), bytes.NewReader(b), Options{Tries: 12}); err == nil || !strings.Contains(err.Error(), "tries") {
		t.Errorf("12 tries: %v", err)
	}

	// A development box, which trusts no key, writes an unsigned
	// bundle when the operator allows it.
	u.KeysDir = filepath.Join(dir, "no-keys")
	res, err = u.Update(context.Background(), bytes.NewReader(unsigned), Options{AllowUnsigned: true})
	if err != nil || !res.Unverified || res.SignedBy != "" || res.Slot != "a" || res.Entry != "ftnas-1-a+3.conf" {
		t.Fatalf("unsigned, allowed on a box without keys: %+v, %v", res, err)
	}
}

// TestUpdateDowngrade: a box running serial 42 refuses an older signed
// bundle (a replayed one too) before it touches anything, unless the
// operator allows a downgrade; the serial is signed with the manifest.
func TestUpdateDowngrade(t *testing.T) {
	u, dir, _, _ := fakeBox(t)
	vendor, vendorPub, vendorID := testKey(1)
	u.KeysDir = filepath.Join(dir, "etc", "ftnas", "update-keys")
	if err := os.MkdirAll(u.KeysDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(u.KeysDir, vendorID.String()+".pub"), MarshalPublicKey(vendorPub), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := MarshalRelease(Release{Version: "2026.12.1", Serial: 42})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(u.ReleaseFile, rel, 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := u.Status(); err != nil || st.Version != "2026.12.1" || st.Serial != 42 {
		t.Fatalf("status with release serial 42: %+v, %v", st, err)
	}
	src := t.TempDir()
	rootfs := filepath.Join(src, "rootfs")
	if err := os.WriteFile(rootfs, bytes.Repeat([]byte("slot "), 10_000), 0o644); err != nil {
		t.Fatal(err)
	}
	mk := func(version string, serial uint64) []byte {
		t.Helper()
		p := filepath.Join(src, version)
		if _, err := Create(p, Sources{Version: version, Serial: serial, Rootfs: rootfs, Keys: []ed25519.PrivateKey{vendor}}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	old, noSerial := mk("2026.11.3", 41), mk("2026.10.0", 0)
	if bytes.Contains(noSerial, []byte(`"serial"`)) {
		t.Error("a bundle without a serial carries the field: boxes before serials refuse unknown fields")
	}
	espBefore, _ := os.ReadFile(filepath.Join(dir, "dev", "vda1"))
	mdBefore, _ := os.ReadFile(filepath.Join(dir, "dev", "md126"))
	untouched := func(name string) {
		t.Helper()
		espNow, _ := os.ReadFile(filepath.Join(dir, "dev", "vda1"))
		mdNow, _ := os.ReadFile(filepath.Join(dir, "dev", "md126"))
		if !bytes.Equal(espNow, espBefore) || !bytes.Equal(mdNow, mdBefore) {
			t.Fatalf("%s: the refused bundle changed the ESP or the slot's array", name)
		}
	}
	for _, tt := range []struct {
		name string
		b    []byte
		want []string
	}{
		{"older", old, []string{"2026.11.3 (serial 41)", "2026.12.1 (serial 42)", "--allow-downgrade"}},
		{"no serial", noSerial, []string{"2026.10.0 (no serial", "2026.12.1 (serial 42)"}},
	} {
		_, err := u.Update(context.Background(), bytes.NewReader(tt.b), Options{})
		if !errors.Is(err, ErrDowngrade) {
			t.Errorf("%s: %v, want ErrDowngrade", tt.name, err)
		}
		for _, w := range tt.want {
			if err != nil && !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tt.name, err, w)
			}
		}
		untouched(tt.name)
	}
	// Raising the serial of the old bundle breaks its signature.
	forged := bytes.Replace(old, []byte(`"serial":41`), []byte(`"serial":49`), 1)
	if bytes.Equal(forged, old) {
		t.Fatal("no serial in the manifest")
	}
	if _, err := u.Update(context.Background(), bytes.NewReader(forged), Options{}); !errors.Is(err, ErrUntrusted) {
		t.Errorf("forged serial: %v, want ErrUntrusted", err)
	}
	untouched("forged")
	// An unreadable release file: nothing is known to be newer.
	if err := os.WriteFile(u.ReleaseFile, []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Update(context.Background(), bytes.NewReader(mk("2027.1.0", 50)), Options{}); !errors.Is(err, ErrDowngrade) || !strings.Contains(err.Error(), "cannot tell") {
		t.Errorf("unreadable release: %v", err)
	}
	untouched("unreadable release")
	if err := os.WriteFile(u.ReleaseFile, rel, 0o644); err != nil {
		t.Fatal(err)
	}

	// Allowed, the older bundle is written and says so.
	res, err := u.Update(context.Background(), bytes.NewReader(old), Options{AllowDowngrade: true})
	if err != nil || !res.Downgrade || res.Serial != 41 || res.RunningSerial != 42 || res.RunningVersion != "2026.12.1" || res.Slot != "b" {
		t.Fatalf("allowed downgrade: %+v, %v", res, err)
	}
	// The running release again, and a newer one: no downgrade.
	for _, b := range [][]byte{mk("2026.12.1", 42), mk("2027.1.1", 43)} {
		res, err := u.Update(context.Background(), bytes.NewReader(b), Options{})
		if err != nil || res.Downgrade {
			t.Fatalf("serial %d: %+v, %v", res.Serial, res, err)
		}
	}
	// A box without a release file (built before serials) takes any.
	if err := os.Remove(u.ReleaseFile); err != nil {
		t.Fatal(err)
	}
	if res, err := u.Update(context.Background(), bytes.NewReader(noSerial), Options{}); err != nil || res.Downgrade || res.RunningSerial != 0 {
		t.Fatalf("no release file: %+v, %v", res, err)
	}
}

// TestStatusNVMe: an NVMe disk's ESP is its partition with the p suffix
// (nvme0n1p1).
func TestStatusNVMe(t *testing.T) {
	u, dir, _, _ := fakeBox(t)
	for from, to := range map[string]string{
		filepath.Join("dev", "vda"): filepath.Join("dev", "nvme0n1"), filepath.Join("dev", "vda1"): filepath.Join("dev", "nvme0n1p1"),
		filepath.Join("sys", "block", "vda"): filepath.Join("sys", "block", "nvme0n1"),
	} {
		if err := os.Rename(filepath.Join(dir, from), filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := u.Status()
	if err != nil || st.ESP != "nvme0n1" || st.Running != "a" || len(st.Slots) != 2 {
		t.Fatalf("status: %+v, %v", st, err)
	}
}

// TestUpdateWritesOnlyItsInstallation: a box booted with ftnas.install=
// writes an update only onto its own installation's array. With another
// box's disk attached whose slot array runs as /dev/md/ftnas-root-b, the
// update is refused with the array named, and nothing is written to it.
func TestUpdateWritesOnlyItsInstallation(t *testing.T) {
	u, dir, _, _ := fakeBox(t)
	u.Cmdline = func() ([]guest.Param, error) {
		return guest.ParseCmdline("console=ttyS0 ftnas.slot=a ftnas.install=box1")
	}
	u.KeysDir = filepath.Join(dir, "no-keys")
	md := filepath.Join(dir, "sys", "block", "md126", "md")
	for name, v := range map[string]string{
		"level": "raid1", "array_state": "clean", "metadata_version": "1.2", "raid_disks": "2",
		"degraded": "1", "sync_action": "idle", "sync_completed": "none",
		"dev-vdb3/state": "in_sync", "dev-vdb3/slot": "0", "dev-vdb3/errors": "0",
	} {
		p := filepath.Join(md, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	owner := "box2"
	var examined []string
	u.Mdadm = &raid.Mdadm{Run: func(_ context.Context, _ string, args ...string) ([]byte, []byte, error) {
		if len(args) == 3 && args[0] == "--examine" {
			examined = append(examined, args[2])
			return []byte("MD_LEVEL=raid1\nMD_DEVICES=2\nMD_NAME=" + owner + ":ftnas-root-b\nMD_UUID=11111111:22222222:33333333:44444444\nMD_EVENTS=9\n"), nil, nil
		}
		return nil, nil, fmt.Errorf("unexpected mdadm %v", args)
	}}
	src := t.TempDir()
	rootfs := filepath.Join(src, "rootfs")
	if err := os.WriteFile(rootfs, bytes.Repeat([]byte("new slot "), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(src, "bundle")
	if _, err := Create(bundle, Sources{Version: "v2", Rootfs: rootfs}); err != nil {
		t.Fatal(err)
	}
	update := func() (Result, error) {
		f, err := os.Open(bundle)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return u.Update(context.Background(), f, Options{AllowUnsigned: true})
	}
	before, _ := os.ReadFile(filepath.Join(dir, "dev", "md126"))
	_, err := update()
	if err == nil || !strings.Contains(err.Error(), `installation "box2"'s array, not "box1"'s`) || !strings.Contains(err.Error(), "md126") {
		t.Fatalf("update onto another installation's array: %v, want a refusal naming it", err)
	}
	if want := filepath.Join(dir, "dev", "vdb3"); len(examined) != 1 || examined[0] != want {
		t.Fatalf("examined %v, want the array's member %s", examined, want)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "dev", "md126")); !bytes.Equal(after, before) {
		t.Fatal("the refused update wrote to the other installation's array")
	}

	owner = "box1"
	res, err := update()
	if err != nil {
		t.Fatalf("update onto this installation's array: %v", err)
	}
	if res.Install != "box1" || res.Slot != "b" || res.Array != filepath.Join(dir, "dev", "md126") {
		t.Fatalf("result %+v", res)
	}
	if st, err := u.Status(); err != nil || st.Install != "box1" {
		t.Fatalf("status: %+v, %v", st, err)
	}
}
