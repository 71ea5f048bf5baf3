package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"ftnas/images/deb"
	"ftnas/images/disk"
	"ftnas/images/initramfs"
	"ftnas/images/kernel"
	"ftnas/images/qemu"
	"ftnas/images/userland"
	"ftnas/raid"
)

// GuestPackage is the program that runs in the RAID guest.
const GuestPackage = "ftnas/scripts/raidbench/guest"

type options struct {
	dir                 string
	dataMiB             int64
	speedMin, speedMax  int
	away                time.Duration
	writeEvery          time.Duration
	skipBoots, skipRAID bool
	manualFirst         bool
	verbose             bool
}

func main() {
	var o options
	flag.StringVar(&o.dir, "dir", "", "work directory (created; default: a temporary one, removed after)")
	flag.Int64Var(&o.dataMiB, "data-mib", 256, "data partition per disk, MiB")
	flag.IntVar(&o.speedMin, "speed-min", 1000, "md speed_limit_min for every rebuild, KiB/s (md's default)")
	flag.IntVar(&o.speedMax, "speed-max", 200000, "md speed_limit_max for every rebuild, KiB/s (md's default)")
	flag.DurationVar(&o.away, "away", 10*time.Second, "how long the disk stays out before the bitmap re-add")
	flag.DurationVar(&o.writeEvery, "write-every", 50*time.Millisecond, "the guest client writes a 64 KiB chunk this often")
	flag.BoolVar(&o.skipBoots, "skip-boots", false, "skip the single-disk boots (development)")
	flag.BoolVar(&o.skipRAID, "skip-raid", false, "skip the RAID guest (development)")
	flag.BoolVar(&o.manualFirst, "manual-first", false, "rebuild by hand before ftnas (to see what the order does)")
	flag.BoolVar(&o.verbose, "v", false, "show the guests' consoles on stderr")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "raidbench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	began := time.Now()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	logf := func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) }
	if o.dir == "" {
		d, err := os.MkdirTemp(os.Getenv("BENCH_TMPDIR"), "ftnas-bench-raid-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
	} else if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	fw, err := qemu.FindOVMF(nil)
	if err != nil {
		return err
	}
	// An interrupt ends the guests (their Boot/Start watch ctx) and
	// still removes the work directory.
	sctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(sctx, 90*time.Minute)
	defer cancel()

	// 1. The image set.
	bin := filepath.Join(o.dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	t0 := time.Now()
	in, err := disk.FetchInputs(ctx, deb.Options{CacheDir: deb.DefaultCacheDir(), Logger: log}, bin)
	if err != nil {
		return err
	}
	_, im, err := userland.BuildImage(ctx, userland.Options{CacheDir: deb.DefaultCacheDir(), Logf: logf}, bin, filepath.Join(o.dir, "userland.squashfs"), userland.CompressionLevel)
	if err != nil {
		return err
	}
	in.SlotImage = im.Path
	imgDir := filepath.Join(o.dir, "img")
	lo := raid.LayoutOptions{ESPSize: 64 * raid.MiB, RootSize: 192 * raid.MiB, StateSize: 8 * raid.MiB, MinData: o.dataMiB * raid.MiB}
	res, err := disk.Build(ctx, in, disk.Options{
		Dir: imgDir, Disks: 4, Layout: lo,
		Cmdline: "ftnas.degraded_after=1s no_timer_check", // no_timer_check: TCG on a loaded host
		Logf: func(format string, args ...any) {
			if strings.HasPrefix(format, "disk:") {
				logf(format, args...)
			}
		},
	})
	if err != nil {
		return err
	}
	rep := report{Disks: len(res.Disks), DataMiB: o.dataMiB, SpeedMin: o.speedMin, SpeedMax: o.speedMax, AwayS: o.away.Seconds()}
	rep.BuildS = time.Since(t0).Seconds()
	for _, a := range res.Arrays {
		rep.Arrays = append(rep.Arrays, fmt.Sprintf("%s %s %d MiB", a.Name, a.Level, a.Size>>20))
	}
	logf("image set of %d disks built in %.1fs: %s", len(res.Disks), rep.BuildS, strings.Join(rep.Arrays, ", "))

	// The RAID guest gets a copy: the boots below write superblocks.
	raidDir := filepath.Join(o.dir, "raid")
	var raidDisks []string
	if !o.skipRAID {
		if err := os.MkdirAll(raidDir, 0o755); err != nil {
			return err
		}
		for _, d := range res.Disks {
			dst := filepath.Join(raidDir, filepath.Base(d))
			if out, err := exec.Command("cp", "--sparse=always", d, dst).CombinedOutput(); err != nil {
				return fmt.Errorf("copy %s: %v: %s", d, err, out)
			}
			raidDisks = append(raidDisks, dst)
		}
	}
	console := func(string, ...any) {}
	if o.verbose {
		console = logf
	}

	// 2. Each disk alone, power-on to nasd serving.
	if !o.skipBoots {
		rep.LoadBoots[0] = loadavg()
		for _, d := range res.Disks {
			b := bootResult{Disk: filepath.Base(d)}
			vm, r, err := userland.Boot(ctx, fw, []string{d}, []qemu.NIC{{Netdev: "user"}}, o.dir, 5*time.Minute, console)
			if vm != nil {
				vm.Kill()
				<-vm.Done()
			}
			b.MarkerS, b.ServingS = r.ToMarker.Seconds(), r.ToServing.Seconds()
			b.Degraded, b.InSync = r.Marker.Degraded, r.Marker.InSync
			if err != nil {
				b.Err = err.Error()
				logf("boot %s alone: FAILED: %v", b.Disk, err)
			} else {
				b.OK = true
				logf("boot %s alone: root up after %.1fs, nasd serving after %.1fs", b.Disk, b.MarkerS, b.ServingS)
			}
			rep.Boots = append(rep.Boots, b)
		}
		rep.LoadBoots[1] = loadavg()
	}

	// 3. The RAID guest.
	if !o.skipRAID {
		rep.LoadRAID[0] = loadavg()
		s, err := raidGuest(ctx, o, in, raidDisks, logf, console)
		if err != nil {
			rep.RAIDErr = err.Error()
			logf("RAID guest: FAILED: %v", err)
		} else {
			rep.RAID = &s
		}
		rep.LoadRAID[1] = loadavg()
	}
	rep.RunS = time.Since(began).Seconds()
	rep.print(os.Stdout)
	return nil
}

// guestLine is a request or the summary from the RAID guest.
var guestLine = regexp.MustCompile(`(?m)^raidbench: (ready-pull|ready-blank|ready-away|summary) ?(\{.*\})?\r?$`)

// raidGuest boots the kernel with md, mdadm and ./guest on disks and plays
// the host's part: the pulls and plugs the guest asks for.
func raidGuest(ctx context.Context, o options, in disk.Inputs, disks []string, logf, console func(string, ...any)) (Summary, error) {
	var s Summary
	dir := filepath.Dir(disks[0])
	gbin := filepath.Join(dir, "raidbench-guest")
	if err := initramfs.GoBuild(ctx, GuestPackage, gbin, ""); err != nil {
		return s, err
	}
	mods, err := in.Kernel.Resolve(append([]string{"virtio_pci", "virtio_blk"}, kernel.MDModules()...)...)
	if err != nil {
		return s, err
	}
	// The peer's operator partitions the replacement with sfdisk.
	fdisk, err := deb.Fetch(ctx, "fdisk", deb.Options{CacheDir: deb.DefaultCacheDir()})
	if err != nil {
		return s, err
	}
	spec := initramfs.Spec{
		Init: in.TestInit,
		Programs: []initramfs.Program{
			{Source: in.Mdadm, Path: "/sbin/mdadm"},
			{Source: filepath.Join(fdisk.Root, "sbin", "sfdisk"), Path: "/sbin/sfdisk"},
		},
		Files: []initramfs.File{{Path: "/bin/raidbench-guest", Source: gbin, Mode: 0o755}},
		Run: fmt.Sprintf("/bin/raidbench-guest -speed-min %d -speed-max %d -write-every %s -manual-first=%v",
			o.speedMin, o.speedMax, o.writeEvery, o.manualFirst),
	}
	for _, m := range mods {
		spec.Modules = append(spec.Modules, m.Path)
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := initramfs.WriteFile(initrd, spec); err != nil {
		return s, err
	}
	fi, err := os.Stat(disks[3])
	if err != nil {
		return s, err
	}
	// The blank disk is written with zeros, not sparse: the manual
	// rebuild later writes to the same blocks, and writes to a hole
	// (allocating host blocks) would make the first rebuild slower.
	blank, blank2 := filepath.Join(dir, "blank.raw"), filepath.Join(dir, "blank2.raw")
	for _, b := range []string{blank, blank2} {
		if err := zeroFile(b, fi.Size()); err != nil {
			return s, err
		}
	}
	logFile, err := os.Create(filepath.Join(dir, "guest.log"))
	if err != nil {
		return s, err
	}
	defer logFile.Close()
	guestLog := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		fmt.Fprintln(logFile, line)
		if strings.Contains(line, "raidbench: ") && !strings.Contains(line, " rebuild: ") && !strings.Contains(line, "s pull ") {
			logf("guest: %s", strings.TrimSpace(line[strings.Index(line, "raidbench: ")+len("raidbench: "):]))
		} else {
			console("%s", line)
		}
	}
	vm, err := qemu.Start(qemu.Options{Kernel: in.Kernel.Vmlinuz, Initrd: initrd, Disks: disks, Memory: 768, QMP: true, Timeout: 45 * time.Minute}, guestLog)
	if err != nil {
		return s, err
	}
	defer vm.Kill()
	stop := context.AfterFunc(ctx, vm.Kill)
	defer stop()
	// The guest says what to do; the first blank disk plugged is
	// blank.raw, the second blank2.raw, the re-add plugs the last one
	// back.
	blanks := []struct{ node, image string }{{"blank-disk3", blank}, {"blank2-disk3", blank2}}
	const id = "disk3"
	plugged := 0
	var m []string
	for m == nil {
		got, err := vm.Expect(guestLine)
		if err != nil {
			return s, fmt.Errorf("waiting for the guest: %w (guest log %s)", err, logFile.Name())
		}
		switch got[1] {
		case "ready-pull":
			err = vm.UnplugDisk(id, time.Minute)
		case "ready-blank":
			if plugged == len(blanks) {
				return s, fmt.Errorf("the guest asked for a blank disk %d", plugged+1)
			}
			b := blanks[plugged]
			plugged++
			err = vm.PlugDisk(id, b.node, b.image, 30*time.Second)
		case "ready-away":
			if plugged == 0 {
				return s, fmt.Errorf("the guest asked for a re-add before any blank disk")
			}
			if err = vm.UnplugDisk(id, time.Minute); err != nil {
				break
			}
			logf("disk3 out; plugging it back in %v", o.away)
			select {
			case <-time.After(o.away):
			case <-ctx.Done():
				return s, ctx.Err()
			}
			b := blanks[plugged-1]
			err = vm.PlugDisk(id, b.node, b.image, 30*time.Second)
		default:
			m = got[2:]
		}
		if err != nil {
			return s, fmt.Errorf("%s: %w", got[1], err)
		}
	}
	if err := json.Unmarshal([]byte(m[0]), &s); err != nil {
		return s, fmt.Errorf("guest summary %s: %w", m[0], err)
	}
	if err := vm.Result(); err != nil {
		return s, err
	}
	if err := vm.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return s, err
	}
	return s, nil
}

// zeroFile writes size zero bytes to a new file p.
func zeroFile(p string, size int64) (err error) {
	os.Remove(p)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		if _, err := f.Write(buf[:n]); err != nil {
			return fmt.Errorf("write zeros to %s: %w", p, err)
		}
	}
	return f.Sync()
}

// loadavg is the host's 1-minute load average ("" if unknown).
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
