//go:build linux

// Command init is /sbin/init of the real root slot userland (package
// userland), PID 1 after the initramfs switched root into the slot:
//
//  1. mounts /proc, /sys, /dev, /run, /tmp where the initramfs has not
//     (and adds /dev/fd, /dev/std* and /dev/shm, udev's part),
//     and checks / is the read-only squashfs on the md array of the slot
//     the boot entry named (boot.CheckSlot, printing its two lines);
//  2. mounts tmpfs overlays on /etc, /var, /srv and /root
//     (userland.OverlayDirs): writable, forgotten at power-off;
//  3. makes the stores (userland.Stores) persistent: assembles the
//     ftnas-state and ftnas-data md arrays (boot.AssembleArray: degraded
//     once ftnas.degraded_after has passed with members missing), makes
//     a filesystem on an array only when its first MiB is all zero (the
//     first boot after the installer: ext4 for state; btrfs for data
//     when mkfs.btrfs is there and the array holds it, else ext4), keeps
//     an ext4 or btrfs that is there, refuses anything else, mounts
//     state at /var/lib/ftnas and data at /srv/ftnas (noatime, nodev,
//     nosuid) and prints "ftnas: storage ROLE array=... fs=...
//     formatted|kept mount=..."; a store whose array has no partition on
//     any disk (a test boot without the installer's arrays) gets a tmpfs
//     and a loud WARNING line;
//  4. sets the hostname, brings up lo and the first NIC with
//     ftnas.ip= (default 10.0.2.15/24) and a default route via ftnas.gw=
//     (default 10.0.2.2), qemu user-net's addresses;
//  5. runs nasd --state /var/lib/ftnas --volume /srv/ftnas, restarting it
//     with a backoff when it exits, and reaps orphans;
//  6. polls `nasctl status --json` until every service is healthy and
//     prints "ftnas: nasd serving {json}"; with ftnas.test_share=NAME it
//     then adds that NFS share and writes userland.TestOutsideFile and
//     userland.TestFile into it (fsynced), or, when an earlier boot did
//     and they survived, prints them (userland.TestShareKeptLine);
//  7. blesses the boot entry (update.Updater.Bless: a slot on trial
//     after an update loses its boot counter, and the ESP it booted from
//     is copied to every disk) and prints "ftnas: boot entry STATE ...";
//     with ftnas.test_update=DEVICE and that device present it then runs
//     `nasctl update DEVICE`, prints the result and reboots; with
//     ftnas.test_install=DISKS:BUNDLE it runs `nasctl install` and powers
//     off (install_linux.go);
//  8. on SIGTERM, SIGINT or SIGPWR stops nasd, unmounts the stores
//     (or remounts them read-only), stops the watchdog with its magic
//     close and powers off.
//
// From step 5 on it feeds the hardware watchdog (package watchdog:
// /dev/watchdog when the kernel has one, ftnas.watchdog= seconds,
// default 30, 0 or off for none) while nasd is healthy: after nasd first
// served, a watchdog.Runner probes `nasctl status --json` every third of
// the timeout and stops feeding once no probe passed for
// ftnas.watchdog_grace= seconds (default 60), so a hung nasd, init or
// kernel resets the box. The init, not nasd, holds the watchdog: it
// outlives a nasd that crashes and is restarted, and owns the clean
// shutdown. ftnas.test_hang_nasd=1 (a test hook) freezes nasd with
// SIGSTOP once it serves and the slot is blessed.
//
// On a trial boot (the loader booted an entry with a boot counter) a
// slot that fails to set up, or whose nasd does not serve in time,
// reboots instead of powering off, so the loader counts the try and,
// once the tries are used up, boots the previous slot.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"ftnas/images/boot"
	"ftnas/images/esp"
	"ftnas/images/guest"
	"ftnas/images/update"
	"ftnas/images/userland"
	"ftnas/images/watchdog"
	"ftnas/raid"
)

func main() {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGPWR)
	r := &reaper{waiting: map[int]chan unix.WaitStatus{}}
	trial := onTrial()
	slot, opts, mounts, err := setup()
	if err != nil {
		fmt.Println("ftnas: init: FAILED:", err)
		fmt.Println(guest.ResultLine(err))
		unmountStores(mounts)
		if trial {
			rebootTrial()
		}
		halt()
	}
	stop := make(chan struct{})
	var nasdPid atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		superviseNasd(r, stop, &nasdPid)
	}()
	wd := startWatchdog(r, opts)
	go func() {
		if !waitServing(r, slot, opts) {
			if trial {
				rebootTrial()
			}
			return
		}
		bless()
		if opts.TestHangNasd {
			if pid := int(nasdPid.Load()); pid > 0 {
				if err := unix.Kill(pid, unix.SIGSTOP); err != nil {
					fmt.Println("ftnas: test: SIGSTOP nasd:", err)
				} else {
					fmt.Printf("%s (pid %d)\n", userland.HangLine, pid)
				}
			}
		}
		if opts.TestUpdate != "" {
			testUpdate(r, opts.TestUpdateDevices())
		}
		if opts.TestInstall != "" {
			testInstall(r, opts.TestInstall)
		}
	}()
	for s := range sigs {
		if s == unix.SIGCHLD {
			r.reap()
			continue
		}
		fmt.Println("ftnas: init: got", s, "- stopping nasd and powering off")
		close(stop)
		wd.stopping()
		go func() {
			for range sigs {
				r.reap()
			}
		}()
		wg.Wait()
		unmountStores(mounts)
		wd.close()
		halt()
	}
}

// onTrial reports whether the loader booted an entry with a boot
// counter: this boot is a new slot's try.
func onTrial() bool {
	lv, efi, err := boot.ReadLoaderVars()
	if err != nil || !efi {
		return false
	}
	e, err := esp.ParseEntryName(lv.Entry)
	return err == nil && e.Counting()
}

// rebootTrial ends a failed try: the loader counts it.
func rebootTrial() {
	fmt.Println("ftnas: init: this slot is on trial and did not come up; rebooting (the loader falls back once its tries are used up)")
	if err := guest.Reboot(); err != nil {
		fmt.Println("ftnas: init:", err)
	}
	halt()
}

func updater() *update.Updater {
	md := &raid.Mdadm{Path: "/sbin/mdadm"}
	return &update.Updater{
		Mdadm:   md,
		Adopter: &raid.Adopter{Mdadm: md, Block: os.DirFS("/sys/block"), ClassBlock: os.DirFS("/sys/class/block")},
	}
}

// bless marks the booted entry good once nasd serves.
func bless() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := updater().Bless(ctx)
	if err != nil {
		fmt.Printf("%sbless failed: %v\n", userland.BlessPrefix, err)
		return
	}
	fmt.Printf("%s%s slot=%s booted=%s found=%s entry=%s\n", userland.BlessPrefix, res.State, res.Slot, res.Booted, res.Found, res.Entry)
}

// testUpdate is the test hook: update from each of devs that is there,
// in order, until one succeeds, then reboot.
func testUpdate(r *reaper, devs []string) {
	for _, dev := range devs {
		if _, err := os.Stat(dev); err != nil {
			continue
		}
		out, err := r.outputWithin(userland.NasctlUpdateArgs(dev), 10*time.Minute)
		line := strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", " | ")), " ")
		if err != nil {
			fmt.Printf("%sFAILED: %v: %s\n", userland.UpdateLinePrefix, err, line)
			continue
		}
		fmt.Println(userland.UpdateLinePrefix + line)
		if err := guest.Reboot(); err != nil {
			fmt.Println("ftnas: init:", err)
		}
		return
	}
}

func halt() {
	unix.Sync()
	if err := guest.PowerOff(); err != nil {
		fmt.Println("ftnas: init:", err)
	}
	select {}
}

// setup runs steps 1 to 4 and returns the slot, the init's options and
// the stores mounted (also on failure, to unmount them).
func setup() (slot string, opts userland.InitOptions, mounts []string, err error) {
	if err := guest.MountBasics(); err != nil {
		return "", opts, nil, err
	}
	if err := devLinks(); err != nil {
		return "", opts, nil, err
	}
	loader, up, err := boot.CheckSlot("")
	if err != nil {
		return "", opts, nil, err
	}
	fmt.Println(loader)
	fmt.Println(up)
	params, err := guest.Cmdline()
	if err != nil {
		return "", opts, nil, err
	}
	bo, err := boot.ParseOptions(params)
	if err != nil {
		return "", opts, nil, err
	}
	if opts, err = userland.ParseInitOptions(params); err != nil {
		return "", opts, nil, err
	}
	for _, d := range userland.OverlayDirs() {
		if err := overlay(d); err != nil {
			return "", opts, nil, err
		}
	}
	// The state and data arrays, mounted on the overlays' /var/lib/ftnas
	// and /srv/ftnas. nasd never creates its volume (a missing disk must
	// not look like an empty one).
	if mounts, err = mountStores(bo); err != nil {
		return "", opts, mounts, err
	}
	if err := unix.Sethostname([]byte(userland.Hostname)); err != nil {
		return "", opts, mounts, fmt.Errorf("init: sethostname: %w", err)
	}
	if err := network(opts); err != nil {
		return "", opts, mounts, err
	}
	return bo.Slot, opts, mounts, nil
}

// devLinks adds what udev would to a bare devtmpfs: /dev/fd (pdbedit
// reads nasd's password file as /dev/fd/3), /dev/std{in,out,err} and a
// tmpfs on /dev/shm, and the BPF filesystem.
func devLinks() error {
	for link, target := range map[string]string{
		"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, link); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("init: %w", err)
		}
	}
	if err := os.MkdirAll("/dev/shm", 0o1777); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if err := unix.Mount("tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("init: mount tmpfs on /dev/shm: %w", err)
	}
	// nasd pins the cluster's lease fence under /sys/fs/bpf (as systemd
	// mounts it), so the fence outlives a crashed nasd.
	if err := unix.Mount("bpf", "/sys/fs/bpf", "bpf", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700"); err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("init: mount the BPF filesystem on /sys/fs/bpf: %w", err)
	}
	return nil
}

// overlay makes dir writable: an overlay with the image's dir below and
// a tmpfs directory above.
func overlay(dir string) error {
	base := filepath.Join("/run/ftnas/overlay", strings.TrimPrefix(dir, "/"))
	upper, work := filepath.Join(base, "upper"), filepath.Join(base, "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("init: overlay %s: %w", dir, err)
		}
	}
	data := "lowerdir=" + dir + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", dir, "overlay", 0, data); err != nil {
		return fmt.Errorf("init: mount overlay on %s (%s): %w", dir, data, err)
	}
	return nil
}

// network brings up lo and the first other link that appears.
func network(o userland.InitOptions) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("init: lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("init: lo up: %w", err)
	}
	var nic netlink.Link
	deadline := time.Now().Add(10 * time.Second)
	for nic == nil {
		links, err := netlink.LinkList()
		if err != nil {
			return fmt.Errorf("init: list links: %w", err)
		}
		for _, l := range links {
			if l.Attrs().Name != "lo" && l.Type() == "device" {
				nic = l
				break
			}
		}
		if nic == nil {
			if time.Now().After(deadline) {
				return errors.New("init: no network interface after 10s (virtio_net not loaded?)")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	name := nic.Attrs().Name
	addr := &netlink.Addr{IPNet: prefixNet(o.Address)}
	if err := netlink.AddrAdd(nic, addr); err != nil {
		return fmt.Errorf("init: %s: add %s: %w", name, o.Address, err)
	}
	if err := netlink.LinkSetUp(nic); err != nil {
		return fmt.Errorf("init: %s up: %w", name, err)
	}
	if o.Gateway.IsValid() {
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: nic.Attrs().Index, Gw: o.Gateway.AsSlice()}); err != nil {
			return fmt.Errorf("init: default route via %s on %s: %w", o.Gateway, name, err)
		}
	}
	fmt.Printf("ftnas: network %s %s gateway %v\n", name, o.Address, o.Gateway)
	return nil
}

// superviseNasd runs nasd until stop is closed, restarting it when it
// exits; pid holds the running nasd's (0 while none runs).
func superviseNasd(r *reaper, stop <-chan struct{}, pid *atomic.Int64) {
	var b userland.Backoff
	for {
		start := time.Now()
		p, done, err := r.start(userland.NasdArgs(), os.Stdout)
		if err != nil {
			fmt.Println("ftnas: init: start nasd:", err)
		} else {
			pid.Store(int64(p))
			fmt.Printf("ftnas: nasd started (pid %d)\n", p)
			select {
			case ws := <-done:
				pid.Store(0)
				fmt.Printf("ftnas: nasd exited: %s\n", describe(ws))
			case <-stop:
				unix.Kill(p, unix.SIGTERM)
				unix.Kill(p, unix.SIGCONT) // a frozen nasd gets its SIGTERM too
				select {
				case ws := <-done:
					fmt.Printf("ftnas: nasd stopped: %s\n", describe(ws))
				case <-time.After(20 * time.Second):
					unix.Kill(p, unix.SIGKILL)
					fmt.Println("ftnas: nasd did not stop within 20s; killed")
				}
				pid.Store(0)
				return
			}
		}
		wait := b.Next(time.Since(start))
		fmt.Printf("ftnas: restarting nasd in %v\n", wait)
		select {
		case <-time.After(wait):
		case <-stop:
			return
		}
	}
}

// watchdogRun is the running watchdog loop (nil: none).
type watchdogRun struct {
	stop, done, finished chan struct{}
}

// startWatchdog opens the hardware watchdog and feeds it from a
// watchdog.Runner that probes nasd's health. No watchdog device (or
// ftnas.watchdog=0) is no error: it prints why and returns nil.
func startWatchdog(r *reaper, o userland.InitOptions) *watchdogRun {
	if o.Watchdog == 0 {
		fmt.Println(userland.WatchdogPrefix + "off (" + userland.ParamWatchdog + "=0)")
		return nil
	}
	cfg := watchdog.Config{Timeout: o.Watchdog, Grace: o.WatchdogGrace}.WithDefaults()
	if err := cfg.Check(); err != nil {
		fmt.Println(userland.WatchdogPrefix+"none:", err)
		return nil
	}
	dev, err := watchdog.Open(cfg.Device, cfg.Timeout)
	if err != nil {
		fmt.Println(userland.WatchdogPrefix+"none:", err)
		return nil
	}
	fmt.Printf("%s%s identity=%q timeout=%v grace=%v\n", userland.WatchdogPrefix, cfg.Device, dev.Identity, dev.Timeout, cfg.Grace)
	every := watchdog.Interval(dev.Timeout)
	w := &watchdogRun{stop: make(chan struct{}), done: make(chan struct{}), finished: make(chan struct{})}
	run := &watchdog.Runner{
		Dev: dev, Policy: watchdog.NewPolicy(cfg.Grace), ProbeTimeout: every,
		Probe: func(ctx context.Context) error {
			limit := every
			if dl, ok := ctx.Deadline(); ok {
				limit = time.Until(dl)
			}
			out, err := r.outputWithin(userland.NasctlStatusArgs(), limit)
			if err != nil && ctx.Err() != nil {
				return fmt.Errorf("nasctl status: no answer within %v", limit.Round(time.Millisecond))
			}
			if err != nil {
				return err
			}
			line, healthy, err := userland.Served(out)
			if err != nil {
				return err
			}
			if !healthy {
				return fmt.Errorf("a service is not healthy: %s", line)
			}
			return nil
		},
		Logger: slog.New(slog.NewTextHandler(os.Stdout, nil)),
	}
	go func() {
		defer close(w.finished)
		t := time.NewTicker(every)
		defer t.Stop()
		if err := run.Run(context.Background(), t.C, w.stop, w.done); err != nil {
			fmt.Println("ftnas: watchdog:", err)
		}
	}()
	return w
}

// stopping keeps the watchdog fed through a clean shutdown.
func (w *watchdogRun) stopping() {
	if w != nil {
		close(w.stop)
	}
}

// close stops the watchdog with the magic close.
func (w *watchdogRun) close() {
	if w == nil {
		return
	}
	close(w.done)
	select {
	case <-w.finished:
	case <-time.After(5 * time.Second):
		fmt.Println("ftnas: watchdog: the loop did not stop within 5s")
	}
}

// waitServing polls nasctl until nasd reports every service healthy and
// prints the serving line, then runs the test share hook. It reports
// whether nasd served.
func waitServing(r *reaper, slot string, o userland.InitOptions) bool {
	var last string
	deadline := time.Now().Add(5 * time.Minute)
	for {
		out, err := r.output(userland.NasctlStatusArgs())
		if err == nil {
			line, healthy, perr := userland.Served(out)
			if perr == nil && healthy {
				fmt.Println(userland.ServingPrefix + line)
				break
			}
			last = line
		}
		if time.Now().After(deadline) {
			fmt.Printf("ftnas: nasd not healthy after 5m: %s (%v)\n", last, err)
			return false
		}
		time.Sleep(time.Second)
	}
	if o.TestShare == "" {
		return true
	}
	line, err := testShare(r, slot, o.TestShare)
	if err != nil {
		fmt.Println("ftnas: test share:", err)
		return true
	}
	fmt.Println(line)
	return true
}

// testShare is the test share hook. When an earlier boot made the share
// and its file it only reports them (TestShareKeptLine); otherwise it
// adds the share, writes its two files durably and returns TestShareLine.
func testShare(r *reaper, slot, name string) (string, error) {
	p := filepath.Join(userland.Volume, name, userland.TestFile)
	if b, err := os.ReadFile(p); err == nil {
		out, err := r.output(userland.NasctlShareListArgs())
		if err != nil {
			return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
		}
		sh, ok, err := userland.FindShare(out, name)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", fmt.Errorf("%s is there but nasd has no share %s: %s", p, name, strings.TrimSpace(string(out)))
		}
		return userland.TestShareKeptLine(name, string(b), sh), nil
	}
	if out, err := r.output(userland.NasctlShareArgs(name)); err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	// The second file first: TestFile's sync of the share's root then
	// makes its directory's entry durable too.
	o := filepath.Join(userland.Volume, name, userland.TestOutsideFile)
	if err := os.MkdirAll(filepath.Dir(o), 0o755); err != nil {
		return "", err
	}
	if err := syncFile(o, []byte(userland.TestOutsideContent)); err != nil {
		return "", err
	}
	return userland.TestShareLine(name), syncFile(p, []byte(userland.TestContent(slot)))
}

// reaper starts children and reaps every process that exits (PID 1's
// orphans too), handing the status of the ones it started to their
// waiters. os/exec cannot be used: its Wait would race the reaping.
type reaper struct {
	mu      sync.Mutex
	waiting map[int]chan unix.WaitStatus
}

var childEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}

func (r *reaper) start(argv []string, out *os.File) (int, <-chan unix.WaitStatus, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, nil, err
	}
	defer devnull.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := os.StartProcess(argv[0], argv, &os.ProcAttr{Dir: "/", Env: childEnv, Files: []*os.File{devnull, out, out}})
	if err != nil {
		return 0, nil, err
	}
	pid := p.Pid
	ch := make(chan unix.WaitStatus, 1)
	r.waiting[pid] = ch
	p.Release()
	return pid, ch, nil
}

// output runs argv and returns its stdout and stderr, failing unless it
// exits 0 within 30 s.
func (r *reaper) output(argv []string) ([]byte, error) {
	return r.outputWithin(argv, 30*time.Second)
}

// outputWithin is output with a time limit of d.
func (r *reaper) outputWithin(argv []string, d time.Duration) ([]byte, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	pid, done, err := r.start(argv, pw)
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, err
	}
	pr.SetReadDeadline(time.Now().Add(d))
	out, rerr := io.ReadAll(pr)
	pr.Close()
	if rerr != nil {
		unix.Kill(pid, unix.SIGKILL)
	}
	ws := <-done
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return out, fmt.Errorf("%s: %s", filepath.Base(argv[0]), describe(ws))
	}
	return out, rerr
}

func (r *reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
		if ch, ok := r.waiting[pid]; ok {
			ch <- ws
			delete(r.waiting, pid)
		}
	}
}

func describe(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
