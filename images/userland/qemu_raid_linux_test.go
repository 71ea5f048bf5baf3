package userland_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
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

// The RAID tests install the firmware on four disks (root slots, state
// RAID1 over all four, data RAID6), boot it under OVMF with QMP and a
// hostfwd of NFS, and run a real NFS client on the host (go-nfs-client,
// FILE_SYNC writes) against the test share while a disk goes away. What
// md and nasd's raid Manager do is read from the console: the kernel's
// md lines (loglevel=7 adds md's "recovery done") and nasd's log.

// TestQEMUPullDiskUnderNFS pulls disk3 (QMP device_del) while the host
// writes unique 4 KiB blocks to a file on the share and reads each back:
// no client error, md runs every array on the three disks left ("Disk
// failure ... Operation continuing on 3 devices"), the raid Manager fails
// and removes disk3's member of every array, and every acknowledged block
// reads back. The disk is then plugged back (device_add of the same
// image): the Manager re-adds every member through its bitmap, md
// reports each recovery done, and all blocks, old and new, read back.
// While it was out, its ESP was changed (standing for an update or bless
// it missed): after the re-add the Manager copies the ESP of a disk that
// stayed onto it, so all four ESPs are identical again.
func TestQEMUPullDiskUnderNFS(t *testing.T) {
	ctx, rig := startRaidRig(t, false)
	arrays := rig.running

	w := rig.startWriter(ctx, "pull.dat")
	w.waitAcked(t, 15, 3*time.Minute)
	before := w.acked()
	pulled := time.Now()
	if err := rig.vm.UnplugDisk("disk3", time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("disk3 pulled after %d acknowledged blocks; device_del took %v", before, time.Since(pulled).Round(time.Millisecond))

	removed := rig.waitActions(t, "remove", "vdd", arrays, 3*time.Minute)
	t.Logf("Manager removed disk3's members %v after %v", removed, time.Since(pulled).Round(100*time.Millisecond))
	for array, dev := range removed {
		if !rig.kernelFailed(array, dev, 3) {
			t.Errorf("md did not report %s's member %s failed with 3 devices left:\n%s", array, dev, rig.mdLines())
		}
	}
	w.waitAcked(t, w.acked()+15, 3*time.Minute)
	w.stop(t)
	t.Logf("client: %d blocks acknowledged, %d after the pull, no error", w.acked(), w.acked()-before)
	rig.verify(t, "pull.dat", w.acked())

	// While it is out, its ESP falls behind the others'.
	if err := scribbleESP(rig.res.Disks[3]); err != nil {
		t.Fatal(err)
	}
	// Plug the same disk back: the bitmaps make the re-adds quick.
	back := time.Now()
	if err := rig.vm.PlugDisk("disk3", "disk3-back", rig.res.Disks[3], 30*time.Second); err != nil {
		t.Fatal(err)
	}
	readded := rig.waitActions(t, "re-add", "vd", arrays, 3*time.Minute)
	t.Logf("Manager re-added %v after %v", readded, time.Since(back).Round(100*time.Millisecond))
	for array := range readded {
		if _, ok := removed[array]; !ok {
			t.Errorf("re-added a member of %s, which lost none", array)
		}
	}
	w2 := rig.startWriter(ctx, "pull.dat")
	rig.waitConsole(t, "md recovery of every array done", 5*time.Minute, func(c string) bool {
		done := map[string]bool{}
		for _, m := range recoveryDone.FindAllStringSubmatch(c, -1) {
			done[m[1]] = true
		}
		for array := range readded {
			if !done[array] {
				return false
			}
		}
		return true
	})
	t.Logf("every array recovered %v after the plug", time.Since(back).Round(100*time.Millisecond))
	rig.waitConsole(t, "the returned disk's ESP re-copied", 2*time.Minute, espRecopied.MatchString)
	esp0, err := espHash(rig.res.Disks[0])
	if err != nil {
		t.Fatal(err)
	}
	if esp3, err := espHash(rig.res.Disks[3]); err != nil || esp3 != esp0 {
		t.Errorf("disk3's ESP hashes %s (%v) after its return, disk0's %s", esp3, err, esp0)
	}
	w2.waitAcked(t, w2.acked()+10, 3*time.Minute)
	w2.stop(t)
	rig.verify(t, "pull.dat", w2.acked())
	if w2.acked() <= w.acked() {
		t.Errorf("the second writer ended at block %d, not past %d", w2.acked(), w.acked())
	}
}

// TestQEMUDiskErrors attaches disk3 through qemu's blkdebug driver
// (qemu.BlkdebugConfig) and, with nasd serving and the host's NFS
// client writing, makes every read and write of it fail with EIO
// (VM.BreakDisk). md kicks disk3's member of the data array ("Disk
// failure", "Operation continuing on 3 devices"), the raid Manager
// reports it as kicked while present (it does not remove or re-add it),
// the client sees no error, its blocks read back, and the share keeps
// serving on the degraded arrays.
func TestQEMUDiskErrors(t *testing.T) {
	ctx, rig := startRaidRig(t, true)
	w := rig.startWriter(ctx, "errors.dat")
	w.waitAcked(t, 15, 3*time.Minute)
	before := w.acked()
	broke := time.Now()
	if err := rig.vm.BreakDisk("disk3", rig.trigger); err != nil {
		t.Fatal(err)
	}
	t.Logf("disk3 failing every read and write after %d acknowledged blocks", before)
	var kicked map[string]string
	rig.waitConsole(t, "md kicking disk3's data member", 3*time.Minute, func(c string) bool {
		kicked = map[string]string{}
		for _, m := range diskFailure.FindAllStringSubmatch(c, -1) {
			if strings.HasPrefix(m[2], "vdd") {
				kicked[m[1]] = m[2]
			}
		}
		return len(kicked) > 0 && slices.ContainsFunc(continuing.FindAllStringSubmatch(c, -1), func(m []string) bool { return m[2] == "3" })
	})
	t.Logf("md kicked %v after %v", kicked, time.Since(broke).Round(100*time.Millisecond))
	for array, dev := range kicked {
		if !rig.kernelFailed(array, dev, 3) {
			t.Errorf("md did not run %s on 3 devices after kicking %s:\n%s", array, dev, rig.mdLines())
		}
	}
	// The Manager's periodic pass (30 s) finds the kicked members.
	var reported []string
	rig.waitConsole(t, "the raid Manager reporting the kicked members", 2*time.Minute, func(c string) bool {
		ms := kickedReport.FindAllStringSubmatch(c, -1)
		if len(ms) == 0 {
			return false
		}
		reported = strings.Fields(ms[len(ms)-1][1])
		for array, dev := range kicked {
			if !slices.Contains(reported, array+"/"+dev) {
				return false
			}
		}
		return true
	})
	t.Logf("Manager: kicked members %v reported after %v", reported, time.Since(broke).Round(100*time.Millisecond))
	w.waitAcked(t, w.acked()+15, 3*time.Minute)
	w.stop(t)
	t.Logf("client: %d blocks acknowledged, %d after the errors, no error", w.acked(), w.acked()-before)
	rig.verify(t, "errors.dat", w.acked())
	c := rig.vm.Console()
	for _, m := range actionLine.FindAllStringSubmatch(c, -1) {
		if strings.HasPrefix(m[3], "vdd") {
			t.Errorf("the Manager acted on the kicked disk: %s", m[0])
		}
	}
	t.Logf("md lines:\n%s", rig.mdLines())
}

var (
	// diskFailure and continuing are md's (pr_crit) lines on md_error.
	diskFailure = regexp.MustCompile(`md/raid\d*:(md\d+): Disk failure on (vd[a-z]+\d+), disabling device`)
	continuing  = regexp.MustCompile(`md/raid\d*:(md\d+): Operation continuing on (\d+) devices`)
	// recoveryDone is md's (pr_info) line when a recovery ends.
	recoveryDone = regexp.MustCompile(`md: (md\d+): recovery done`)
	// actionLine is the raid Manager's log line for an action applied.
	actionLine = regexp.MustCompile(`msg="raid: hotplug action".*? action=([a-z-]+) array=(md\d+) device=(\S+)`)
	// kickedReport is its warning about members md kicked.
	kickedReport = regexp.MustCompile(`msg="raid: md kicked members[^"]*".*? members="?\[([^\]"]*)\]`)
	mdLine       = regexp.MustCompile(`(?m)^.*(md/raid|md: |raid: |I/O error).*$`)
)

// raidRig is a booted installation with its NFS port forwarded.
type raidRig struct {
	t    *testing.T
	ctx  context.Context
	vm   *qemu.VM
	res  disk.Result
	addr string
	// fw, dir and opts boot the same disks again (rebootAfterPowerCut).
	fw   qemu.OVMF
	dir  string
	opts qemu.Options
	// trigger is BreakDisk's offset on disk3: a zero sector in the gap
	// between the GPT and the first partition.
	trigger int64
	// running counts the arrays the booted slot assembles: all but the
	// other slot's root.
	running int
}

const raidShare = "t"

// startRaidRig builds the 4-disk installation and boots it; with
// blkdebug disk3 is attached through qemu's blkdebug driver.
func startRaidRig(t *testing.T, blkdebug bool) (context.Context, *raidRig) {
	t.Helper()
	return startRig(t, 4, blkdebug)
}

// startRig builds the installation on that many disks (blkdebug needs 4) and
// boots it.
func startRig(t *testing.T, disks int, blkdebug bool) (context.Context, *raidRig) {
	t.Helper()
	if testing.Short() {
		t.Skipf("installs the firmware on %d disks and boots it under TCG (several minutes)", disks)
	}
	if blkdebug && disks < 4 {
		t.Fatalf("blkdebug attaches disk3: %d disks", disks)
	}
	fw, err := userland.BootTools()
	if err != nil {
		t.Skip(err)
	}
	k := lab.Kernel(t)
	bootloader := lab.Bootloader(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Minute)
	t.Cleanup(cancel)
	start := time.Now()
	tree, files := lab.Userland(ctx, t)
	im, err := userland.SlotImage(ctx, tree, files, dir+"/slot.squashfs", userland.CompressionLevel)
	if err != nil {
		t.Fatal(err)
	}
	res, err := disk.Build(ctx, disk.Inputs{
		Kernel:     k,
		Bootloader: bootloader,
		Mdadm:      lab.Mdadm(t).Source,
		TestInit:   lab.GoBinary(t, initramfs.InitPackage),
		BootInit:   lab.GoBinary(t, disk.BootInitPackage),
		Installer:  lab.GoBinary(t, disk.InstallerPackage),
		SlotImage:  im.Path,
	}, disk.Options{
		Dir: dir, Disks: disks,
		Layout: raid.LayoutOptions{ESPSize: 64 * raid.MiB, RootSize: SlotSize, StateSize: 8 * raid.MiB, MinData: userland.BtrfsMinSize + 32*raid.MiB},
		// loglevel=7: md's recovery lines on the console.
		Cmdline: "ftnas.degraded_after=1s no_timer_check loglevel=7 " + userland.ParamTestShare + "=" + raidShare,
		Logf:    t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Disks) != disks {
		t.Fatalf("built %d disks, want %d", len(res.Disks), disks)
	}
	t.Logf("%d-disk installation built in %v: %v", disks, time.Since(start).Round(time.Millisecond), res.Arrays)
	rig := &raidRig{t: t, ctx: ctx, res: res, fw: fw, dir: dir, trigger: 1024 * 512}
	o := qemu.Options{Disks: res.Disks, Memory: 1024, QMP: true, Timeout: 20 * time.Minute}
	if blkdebug {
		if err := zeroAt(res.Disks[3], rig.trigger, 512); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "disk3.blkdebug")
		if err := os.WriteFile(cfg, []byte(qemu.BlkdebugConfig(5)), 0o644); err != nil {
			t.Fatal(err)
		}
		o.Blkdebug = map[int]string{3: cfg}
	}
	port := freePort(t)
	rig.addr = fmt.Sprintf("127.0.0.1:%d", port)
	o.NICs = []qemu.NIC{{Netdev: fmt.Sprintf("user,hostfwd=tcp:127.0.0.1:%d-:2049", port)}}
	vars, err := fw.TempVars(dir)
	if err != nil {
		t.Fatal(err)
	}
	o.Firmware, o.FirmwareVars = fw.Code, vars
	rig.opts = o
	vm, err := qemu.Start(o, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Kill)
	stop := context.AfterFunc(ctx, vm.Kill)
	t.Cleanup(func() { stop() })
	rig.vm = vm
	if _, err := vm.Expect(userland.ServingRegexp()); err != nil {
		t.Fatalf("waiting for nasd: %v", err)
	}
	if _, err := vm.Expect(regexpLine(userland.TestShareLine(raidShare))); err != nil {
		t.Fatal(err)
	}
	// The bless copies the ESP to every disk: let it end before a disk
	// goes.
	m, err := vm.Expect(userland.BlessRegexp())
	if err != nil {
		t.Fatalf("waiting for the boot entry's bless: %v", err)
	}
	for _, a := range res.Arrays {
		if a.Role != "root-"+m[2] && strings.HasPrefix(a.Role, "root-") {
			continue
		}
		rig.running++
	}
	t.Logf("nasd serving the test share after %v; %d arrays running", vm.Elapsed().Round(100*time.Millisecond), rig.running)
	return ctx, rig
}

// espRecopied is nasd's line for the returned vdd's ESP brought up to date.
var espRecopied = regexp.MustCompile(`msg="raid: ESPs checked after members returned".*recopied=\[vdd\]`)

// espExtent is the ESP of a disk image.
func espExtent(image string) (raid.Partition, error) {
	f, err := os.Open(image)
	if err != nil {
		return raid.Partition{}, err
	}
	defer f.Close()
	tb, err := raid.ReadDiskTable(f, filepath.Base(image), 512)
	if err != nil {
		return raid.Partition{}, err
	}
	e, err := raid.ESPEntry(tb)
	if err != nil {
		return raid.Partition{}, err
	}
	return e.Extent(512), nil
}

// scribbleESP overwrites 64 KiB of image's ESP, 1 MiB in.
func scribbleESP(image string) error {
	ext, err := espExtent(image)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xee}, 64<<10), ext.Start+raid.MiB); err != nil {
		return err
	}
	return f.Sync()
}

// espHash hashes image's ESP.
func espHash(image string) (string, error) {
	ext, err := espExtent(image)
	if err != nil {
		return "", err
	}
	f, err := os.Open(image)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, ext.Start, ext.Size)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// zeroAt checks that image holds n zero bytes at off.
func zeroAt(image string, off int64, n int) error {
	f, err := os.Open(image)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return fmt.Errorf("read %s at %d: %w", image, off, err)
	}
	if !bytes.Equal(b, make([]byte, n)) {
		return fmt.Errorf("%s is not zero at %d: the blkdebug trigger would change it", image, off)
	}
	return nil
}

// waitConsole polls the whole console (not Expect's cursor: md and the
// Manager print in any order) until ok, at most timeout.
func (r *raidRig) waitConsole(t *testing.T, what string, timeout time.Duration, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for !ok(r.vm.Console()) {
		select {
		case <-r.vm.Done():
			t.Fatalf("waiting for %s: qemu exited", what)
		case now := <-tick.C:
			if now.After(deadline) {
				t.Fatalf("no %s within %v; md and raid lines:\n%s", what, timeout, r.mdLines())
			}
		}
	}
}

// waitActions waits until the Manager has applied kind to a member
// named prefix* of n arrays and returns array -> device.
func (r *raidRig) waitActions(t *testing.T, kind, prefix string, n int, timeout time.Duration) map[string]string {
	t.Helper()
	var got map[string]string
	r.waitConsole(t, fmt.Sprintf("%s of a %s* member in %d arrays", kind, prefix, n), timeout, func(c string) bool {
		got = map[string]string{}
		for _, m := range actionLine.FindAllStringSubmatch(c, -1) {
			if m[1] == kind && strings.HasPrefix(m[3], prefix) {
				got[m[2]] = m[3]
			}
		}
		return len(got) >= n
	})
	if len(got) != n {
		t.Errorf("%s in %d arrays %v, want %d", kind, len(got), got, n)
	}
	return got
}

// kernelFailed reports whether md said it failed dev in array and runs
// it on left devices.
func (r *raidRig) kernelFailed(array, dev string, left int) bool {
	c := r.vm.Console()
	failed := slices.ContainsFunc(diskFailure.FindAllStringSubmatch(c, -1), func(m []string) bool { return m[1] == array && m[2] == dev })
	cont := slices.ContainsFunc(continuing.FindAllStringSubmatch(c, -1), func(m []string) bool { return m[1] == array && m[2] == fmt.Sprint(left) })
	return failed && cont
}

// mdLines are the console's md, raid Manager and I/O error lines.
func (r *raidRig) mdLines() string {
	ls := mdLine.FindAllString(r.vm.Console(), -1)
	if len(ls) > 80 {
		ls = append(ls[:40], append([]string{"..."}, ls[len(ls)-40:]...)...)
	}
	return strings.Join(ls, "\n")
}

// blockSize is the client's write unit.
const blockSize = 4096

// block is block i's content: unique to the file and the index.
func block(name string, i int) []byte {
	head := fmt.Sprintf("ftnas raid test %s block %08d\n", name, i)
	return bytes.Repeat([]byte(head), blockSize/len(head)+1)[:blockSize]
}

// nfsWriter writes block after block to a file on the share, each a
// FILE_SYNC WRITE read back at once, and counts the acknowledged ones.
type nfsWriter struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	n     int // blocks acknowledged and read back
	err   error
	moved chan struct{} // closed and replaced when n or err change
}

func (w *nfsWriter) acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// startWriter writes to name from the block after its current end.
func (r *raidRig) startWriter(ctx context.Context, name string) *nfsWriter {
	ctx, cancel := context.WithCancel(ctx)
	w := &nfsWriter{cancel: cancel, done: make(chan struct{}), moved: make(chan struct{})}
	go func() {
		defer close(w.done)
		err := r.write(ctx, name, w)
		w.mu.Lock()
		if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
			w.err = err
		}
		close(w.moved)
		w.moved = make(chan struct{})
		w.mu.Unlock()
	}()
	return w
}

func (r *raidRig) write(ctx context.Context, name string, w *nfsWriter) error {
	tgt, closeMount, err := r.mount()
	if err != nil {
		return err
	}
	defer closeMount()
	f, err := tgt.OpenFile(name, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	fi, _, err := tgt.Lookup(name)
	if err != nil {
		return fmt.Errorf("lookup %s: %w", name, err)
	}
	if fi.Size()%blockSize != 0 {
		return fmt.Errorf("%s is %d bytes, not whole blocks", name, fi.Size())
	}
	i := int(fi.Size() / blockSize)
	w.mu.Lock()
	w.n = i
	w.mu.Unlock()
	if _, err := f.Seek(int64(i)*blockSize, io.SeekStart); err != nil {
		return fmt.Errorf("seek %s: %w", name, err)
	}
	rf, err := tgt.Open(name)
	if err != nil {
		return fmt.Errorf("open %s for reading: %w", name, err)
	}
	got := make([]byte, blockSize)
	tick := time.NewTicker(100 * time.Millisecond) // leave the guest's one CPU time for md
	defer tick.Stop()
	for ; ; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		want := block(name, i)
		if n, err := f.Write(want); err != nil || n != blockSize {
			return fmt.Errorf("write block %d: %d bytes, %v", i, n, err)
		}
		if n, err := rf.ReadAt(got, int64(i)*blockSize); (err != nil && !errors.Is(err, io.EOF)) || n != blockSize || !bytes.Equal(got, want) {
			return fmt.Errorf("block %d read back: %d bytes, %v, %q", i, n, err, firstLine(got[:n]))
		}
		w.mu.Lock()
		w.n = i + 1
		close(w.moved)
		w.moved = make(chan struct{})
		w.mu.Unlock()
	}
}

// waitAcked waits until n blocks are acknowledged; a client error fails
// the test.
func (w *nfsWriter) waitAcked(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		got, err, moved := w.n, w.err, w.moved
		w.mu.Unlock()
		if err != nil {
			t.Fatalf("NFS client error after %d blocks: %v", got, err)
		}
		if got >= n {
			return
		}
		select {
		case <-moved:
		case <-deadline:
			t.Fatalf("NFS client: %d blocks acknowledged in %v, want %d", got, timeout, n)
		}
	}
}

// stop ends the writer; a client error fails the test.
func (w *nfsWriter) stop(t *testing.T) {
	t.Helper()
	w.cancel()
	<-w.done
	if w.err != nil {
		t.Fatalf("NFS client error after %d blocks: %v", w.n, w.err)
	}
}

// verify reads name back over a new mount: n blocks, each block(i).
func (r *raidRig) verify(t *testing.T, name string, n int) {
	t.Helper()
	tgt, closeMount, err := r.mount()
	if err != nil {
		t.Fatal(err)
	}
	defer closeMount()
	f, err := tgt.Open(name)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	buf, bad := make([]byte, 16*blockSize), 0
	for i := 0; i < n; i += 16 {
		c := min(16, n-i)
		got, err := f.ReadAt(buf[:c*blockSize], int64(i)*blockSize)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("read %s blocks %d-%d: %v", name, i, i+c-1, err)
		}
		for j := range c {
			b := buf[j*blockSize : (j+1)*blockSize]
			if (j+1)*blockSize > got || !bytes.Equal(b, block(name, i+j)) {
				if bad++; bad <= 5 {
					t.Errorf("%s block %d reads back %q", name, i+j, firstLine(b))
				}
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d acknowledged blocks of %s do not read back", bad, n, name)
	}
	t.Logf("all %d acknowledged blocks of %s read back", n, name)
}

// mount mounts the test share over one TCP connection.
func (r *raidRig) mount() (*nfsc.Target, func(), error) {
	c, err := nfsrpc.DialTCP("tcp", r.addr, false)
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", r.addr, err)
	}
	m := &nfsc.Mount{Client: c}
	tgt, err := m.Mount("/"+raidShare, nfsrpc.NewAuthUnix("ftnas-test", 0, 0).Auth())
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("MNT /%s: %w", raidShare, err)
	}
	return tgt, func() { m.Close() }, nil
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
