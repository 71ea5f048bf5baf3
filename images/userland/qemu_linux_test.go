package userland_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	nfsrpc "github.com/willscott/go-nfs-client/nfs/rpc"

	"ftnas/images/disk"
	"ftnas/images/initramfs"
	"ftnas/images/lab"
	"ftnas/images/qemu"
	"ftnas/images/userland"
	"ftnas/raid"
)

// TestQEMUServes builds the real slot userland (the Debian tree is cached
// under FTNAS_CACHE; the first run bootstraps it, about 2 minutes),
// installs it on 2 disks, boots them under OVMF with a user-net NIC and
// checks that nasd serves: every service healthy in `nasctl status`, and
// an NFS read from the host through a hostfwd of port 2049 returns the
// file the init's test hook wrote. The first boot makes the state (ext4)
// and data (btrfs) filesystems on the installer's arrays; the test then
// cuts the power (kills qemu) and boots the same disks again: the init
// keeps both filesystems, the test share is still in nasd's state and
// its file still on the volume, and NFS still serves it.
func TestQEMUServes(t *testing.T) {
	if testing.Short() {
		t.Skip("bootstraps Debian (cached) and boots the firmware with its userland twice under TCG (about 4 minutes)")
	}
	fw, err := userland.BootTools()
	if err != nil {
		t.Skip(err)
	}
	k := lab.Kernel(t)
	bootloader := lab.Bootloader(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()

	start := time.Now()
	tree, files := lab.Userland(ctx, t)
	t.Logf("tree %s (cached=%v) in %v: %d packages", tree.Key, tree.Cached, tree.Took.Round(time.Millisecond), strings.Count(string(tree.Manifest), "\n"))
	for _, p := range []string{"samba=", "mdadm=", "iproute2=", "passwd=", "e2fsprogs=", "btrfs-progs="} {
		if !strings.Contains("\n"+string(tree.Manifest), "\n"+p) {
			t.Errorf("tree lacks %s", strings.TrimSuffix(p, "="))
		}
	}
	im, err := userland.SlotImage(ctx, tree, files, dir+"/slot.squashfs", userland.CompressionLevel)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("slot image %d MiB (cached=%v) in %v", im.Size>>20, im.Cached, im.Took.Round(time.Millisecond))

	const share = "t"
	res, err := disk.Build(ctx, disk.Inputs{
		Kernel:     k,
		Bootloader: bootloader,
		Mdadm:      lab.Mdadm(t).Source,
		TestInit:   lab.GoBinary(t, initramfs.InitPackage),
		BootInit:   lab.GoBinary(t, disk.BootInitPackage),
		Installer:  lab.GoBinary(t, disk.InstallerPackage),
		SlotImage:  im.Path,
	}, disk.Options{
		Dir: dir, Disks: 2,
		// Data large enough for btrfs (the disk images are sparse).
		Layout:  raid.LayoutOptions{ESPSize: 64 * raid.MiB, RootSize: SlotSize, StateSize: 8 * raid.MiB, MinData: userland.BtrfsMinSize + 32*raid.MiB},
		Cmdline: "ftnas.degraded_after=1s no_timer_check " + userland.ParamTestShare + "=" + share, // no_timer_check: TCG on a loaded host
		Logf:    t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("installation built in %v (installer guest %v)", time.Since(start).Round(time.Millisecond), res.Took["install"].Round(time.Millisecond))

	port := freePort(t)
	nics := []qemu.NIC{{Netdev: fmt.Sprintf("user,hostfwd=tcp:127.0.0.1:%d-:2049", port)}}
	vm, r, err := userland.Boot(ctx, fw, res.Disks, nics, dir, 5*time.Minute, t.Logf)
	if vm != nil {
		t.Cleanup(vm.Kill)
	}
	if err != nil {
		t.Fatal(err)
	}
	checkStorage(t, vm.Console(), "formatted")
	t.Logf("marker after %v, nasd serving after %v: %s", r.ToMarker.Round(100*time.Millisecond), r.ToServing.Round(100*time.Millisecond), r.Status)
	if m := r.Marker; m.Slot != "a" || m.Degraded != 0 || m.InSync != 2 {
		t.Errorf("marker %+v, want root a whole on 2 members", m)
	}
	if !strings.Contains(r.Userland, "fstype=squashfs array=ftnas-root-a level=raid1") {
		t.Errorf("userland line %q", r.Userland)
	}
	var st struct {
		Hostname string `json:"hostname"`
		Volume   string `json:"volume"`
		Services []struct {
			Name    string `json:"name"`
			Healthy bool   `json:"healthy"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(r.Status), &st); err != nil {
		t.Fatalf("status %q: %v", r.Status, err)
	}
	names := map[string]bool{}
	for _, s := range st.Services {
		names[s.Name] = s.Healthy
	}
	if st.Hostname != userland.Hostname || st.Volume != userland.Volume || !names["nfs"] || !names["smb"] {
		t.Errorf("status %+v: want host %s, volume %s, nfs and smb healthy", st, userland.Hostname, userland.Volume)
	}
	if _, err := vm.Expect(regexpLine(userland.TestShareLine(share))); err != nil {
		t.Fatal(err)
	}
	got, err := nfsRead(fmt.Sprintf("127.0.0.1:%d", port), "/"+share, userland.TestFile)
	if err != nil {
		t.Fatalf("NFS read through hostfwd: %v", err)
	}
	if want := userland.TestContent("a"); got != want {
		t.Errorf("NFS read %q, want %q", got, want)
	}
	t.Logf("NFS read of /%s/%s from the host: %q after %v", share, userland.TestFile, got, vm.Elapsed().Round(100*time.Millisecond))

	// Power cut, then the same disks again: state and volume persist.
	vm.Kill()
	vm, r, err = userland.Boot(ctx, fw, res.Disks, nics, dir, 5*time.Minute, t.Logf)
	if vm != nil {
		t.Cleanup(vm.Kill)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second boot: nasd serving after %v", r.ToServing.Round(100*time.Millisecond))
	checkStorage(t, vm.Console(), "kept")
	m, err := vm.Expect(userland.TestShareKeptRegexp())
	if err != nil {
		t.Fatalf("second boot: the test share or its file did not survive: %v", err)
	}
	var sh struct {
		Name string `json:"name"`
		NFS  bool   `json:"nfs"`
	}
	if err := json.Unmarshal([]byte(m[3]), &sh); err != nil || sh.Name != share || !sh.NFS {
		t.Errorf("second boot: share %s (%v), want NFS share %s", m[3], err, share)
	}
	if c, err := strconv.Unquote(m[2]); err != nil || c != userland.TestContent("a") {
		t.Errorf("second boot: file %s (%v), want %q", m[2], err, userland.TestContent("a"))
	}
	got, err = nfsRead(fmt.Sprintf("127.0.0.1:%d", port), "/"+share, userland.TestFile)
	if err != nil || got != userland.TestContent("a") {
		t.Fatalf("second boot: NFS read %q, %v; want %q", got, err, userland.TestContent("a"))
	}
	t.Logf("second boot: %s; NFS read %q after %v", m[0], got, vm.Elapsed().Round(100*time.Millisecond))
}

// checkStorage checks the init's storage lines on a boot's console:
// state ext4 and data btrfs on the installer's arrays, whole on both
// disks, each formatted (first boot) or kept (later ones).
func checkStorage(t *testing.T, console, what string) {
	t.Helper()
	if strings.Contains(console, userland.StoragePrefix+"WARNING") {
		t.Errorf("a store fell back to tmpfs:\n%s", console)
	}
	want := map[string]string{raid.RoleState: userland.FSExt4, raid.RoleData: userland.FSBtrfs}
	got := map[string]bool{}
	for _, m := range userland.StorageRegexp().FindAllStringSubmatch(console, -1) {
		t.Logf("%s", strings.TrimSpace(m[0]))
		role := m[1]
		if fs, ok := want[role]; !ok || m[2] != "ftnas-"+role || m[8] != fs || m[9] != what || m[5] != "0" || m[6] != "2" {
			t.Errorf("storage line %q: want %s on ftnas-%s, %s, whole on 2 members", m[0], fs, role, what)
		}
		got[role] = true
	}
	if len(got) != len(want) {
		t.Errorf("storage lines for %v, want state and data", got)
	}
}

// SlotSize is the root slots' size in the test layout: the zstd image is
// about 110 MiB.
const SlotSize = 192 * raid.MiB

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// nfsRead mounts export and reads file over one TCP connection to addr,
// where nasd serves MOUNT and NFS on the same port (no portmapper: the
// hostfwd port is not the one it would name).
func nfsRead(addr, export, file string) (string, error) {
	c, err := nfsrpc.DialTCP("tcp", addr, false)
	if err != nil {
		return "", fmt.Errorf("dial %s: %w", addr, err)
	}
	m := &nfsc.Mount{Client: c}
	defer m.Close()
	tgt, err := m.Mount(export, nfsrpc.NewAuthUnix("ftnas-test", 0, 0).Auth())
	if err != nil {
		return "", fmt.Errorf("MNT %s: %w", export, err)
	}
	f, err := tgt.Open(file)
	if err != nil {
		return "", fmt.Errorf("LOOKUP %s: %w", file, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", fmt.Errorf("READ %s: %w", file, err)
	}
	return string(b), nil
}

func regexpLine(s string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(s) + `\r?$`)
}
