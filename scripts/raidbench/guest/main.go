package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ftnas/images/guest"
	"ftnas/raid"
	"ftnas/scripts/raidbench/internal/result"
)

// Serial is the qdev id and serial of the disk the host pulls.
const Serial = "disk3"

func main() {
	if err := run(); err != nil {
		fmt.Println("raidbench: FAILED:", err)
		os.Exit(1)
	}
}

type env struct {
	ctx    context.Context
	start  time.Time
	md     *raid.Mdadm
	block  fs.FS
	names  map[string]string // mdN → array name
	data   string            // data array's md name
	logger *slog.Logger
}

func run() error {
	speedMin := flag.Int("speed-min", 1000, "md speed_limit_min, KiB/s")
	speedMax := flag.Int("speed-max", 200000, "md speed_limit_max, KiB/s")
	manualFirst := flag.Bool("manual-first", false, "rebuild by hand first, then with ftnas")
	every := flag.Duration("write-every", 50*time.Millisecond, "the client writes one 64 KiB chunk this often")
	flag.Parse()
	ctx := context.Background()
	e := &env{ctx: ctx, start: time.Now(), block: os.DirFS("/sys/block"), names: map[string]string{}}
	e.logger = slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e.md = &raid.Mdadm{Path: "/sbin/mdadm", Logger: e.logger}
	s := result.Summary{SpeedMin: *speedMin, SpeedMax: *speedMax,
		ClientNote: "a writer inside the guest: one synced 64 KiB write to the data array every " + every.String() + ", all read back at the end"}

	if err := guest.WaitBlockDevices([]string{"vda", "vdb", "vdc", "vdd"}, 20*time.Second); err != nil {
		return err
	}
	for name, v := range map[string]int{"speed_limit_min": *speedMin, "speed_limit_max": *speedMax} {
		if err := os.WriteFile("/proc/sys/dev/raid/"+name, fmt.Appendf(nil, "%d\n", v), 0); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	if err := e.assemble(); err != nil {
		return err
	}
	s.Arrays = e.names
	// The installer does not wait for the initial sync: let it finish.
	t0 := time.Now()
	if _, err := e.waitAll("initial sync", 10*time.Minute, func(a raid.ArrayStatus) bool { return a.Healthy() }); err != nil {
		return err
	}
	s.InitialS = time.Since(t0).Seconds()
	da, err := raid.ReadArray(e.block, e.data)
	if err != nil {
		return err
	}
	s.DataLevel, s.DataKiB = da.Level, da.ComponentSize
	fmt.Printf("raidbench: arrays %v, data %s %s component %d KiB; initial sync %.1fs\n", e.names, e.data, da.Level, da.ComponentSize, s.InitialS)

	// Warm-up: a check of the data array reads every member once. The
	// first rebuild in a fresh guest ran about twice as slow as a later
	// one whoever did it (host caches, TCG's first pass over md's raid6
	// code): both measured rebuilds come after this one pass.
	t0 = time.Now()
	if err := os.WriteFile("/sys/block/"+e.data+"/md/sync_action", []byte("check\n"), 0); err != nil {
		return fmt.Errorf("warm-up check of %s: %w", e.data, err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := e.waitAll("warm-up check", 10*time.Minute, func(a raid.ArrayStatus) bool { return a.Healthy() }); err != nil {
		return err
	}
	s.WarmupS = time.Since(t0).Seconds()
	fmt.Printf("raidbench: warm-up check of %s took %.1fs\n", e.data, s.WarmupS)

	w, err := newWriter("/dev/"+e.data, *every)
	if err != nil {
		return err
	}
	go w.run()

	// The two full rebuilds, in the order asked (the first one runs on
	// a guest and host that have done less: -manual-first swaps them to
	// show what the order alone does), then the re-add.
	phases := []func() error{
		func() error { return e.ftnasReplace(&s.Ftnas, w) },
		func() error { return e.manualReplace(&s.Manual, w) },
	}
	if *manualFirst {
		phases[0], phases[1] = phases[1], phases[0]
		s.ManualFirst = true
	}
	phases = append(phases, func() error { return e.reAdd(&s.ReAdd, w) })
	for _, ph := range phases {
		if err := ph(); err != nil {
			return err
		}
	}
	w.phase(nil)
	w.stop()
	s.Verified, s.BadChunks, err = w.verify()
	if err != nil {
		return err
	}
	s.Writes, s.WriteErrs = w.writes.Load(), w.errs.Load()
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	fmt.Printf("raidbench: summary %s\n", b)
	return nil
}

// startManager runs a raid.Manager until the returned stop is called;
// stop returns the Manager's actions.
func (e *env) startManager() (stop func() ([]string, error)) {
	g := e.manager()
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- g.m.RunUevents(ctx) }()
	return func() ([]string, error) {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			return g.actions(), fmt.Errorf("manager: %w", err)
		}
		return g.actions(), nil
	}
}

// ftnasReplace: the Manager running, disk3 pulled, a blank disk plugged;
// the Manager removes the old members and adopts the blank disk.
func (e *env) ftnasReplace(p *result.Phase, w *writer) error {
	stop := e.startManager()
	w.phase(p)
	pulled, err := diskBySerial(Serial)
	if err != nil {
		return err
	}
	fmt.Println("raidbench: ready-pull")
	t0 := time.Now()
	if _, err := e.waitAll("pull "+pulled, 60*time.Second, noMembersOf(pulled)); err != nil {
		return err
	}
	p.RemovedS = time.Since(t0).Seconds()
	fmt.Println("raidbench: ready-blank")
	blank, tBack, err := waitDisk(Serial, 60*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("raidbench: blank disk %s is there\n", blank)
	if err := e.rebuild(p, tBack, blank, 15*time.Minute); err != nil {
		return err
	}
	p.Actions, err = stop()
	return err
}

// manualReplace, the peer: the same by hand with mdadm (and sfdisk, dd),
// no Manager: disk3 pulled, its members failed and removed, a blank
// disk plugged, partitioned like vda, the ESP copied, each partition
// added to its array.
func (e *env) manualReplace(p *result.Phase, w *writer) error {
	w.phase(p)
	pulled, err := diskBySerial(Serial)
	if err != nil {
		return err
	}
	fmt.Println("raidbench: ready-pull")
	t0 := time.Now()
	if err := waitGone(pulled, 60*time.Second); err != nil {
		return err
	}
	// Its /dev nodes are gone: members by their kernel names, as
	// /proc/mdstat lists them (mdadm's "detached" finds none here).
	for _, md := range e.sortedArrays() {
		m, err := e.memberOn(md, pulled)
		if err != nil {
			return err
		}
		for _, op := range []string{"--fail", "--remove"} {
			if err := e.byHand(p, "/sbin/mdadm", nil, "--manage", "/dev/"+md, op, m); err != nil {
				return err
			}
		}
	}
	if _, err := e.waitAll("pull "+pulled+" (by hand)", 60*time.Second, noMembersOf(pulled)); err != nil {
		return err
	}
	p.RemovedS = time.Since(t0).Seconds()
	fmt.Println("raidbench: ready-blank")
	blank, tAdd, err := waitDisk(Serial, 60*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("raidbench: blank disk %s is there\n", blank)
	if err := e.replaceByHand(p, "vda", blank); err != nil {
		return err
	}
	return e.rebuild(p, tAdd, blank, 15*time.Minute)
}

// reAdd: the Manager running, disk3 pulled, away while the host waits,
// plugged back; the Manager re-adds its members (bitmap resync).
func (e *env) reAdd(p *result.Phase, w *writer) error {
	stop := e.startManager()
	w.phase(p)
	// Let the Manager's first pass settle before the pull.
	time.Sleep(time.Second)
	pulled, err := diskBySerial(Serial)
	if err != nil {
		return err
	}
	fmt.Println("raidbench: ready-away")
	t0 := time.Now()
	if _, err := e.waitAll("pull "+pulled, 60*time.Second, noMembersOf(pulled)); err != nil {
		return err
	}
	p.RemovedS = time.Since(t0).Seconds()
	back, tBack, err := waitDisk(Serial, 120*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("raidbench: disk %s is back\n", back)
	if err := e.rebuild(p, tBack, back, 15*time.Minute); err != nil {
		return err
	}
	p.Actions, err = stop()
	return err
}

// sortedArrays are the md names in order.
func (e *env) sortedArrays() []string {
	mds := make([]string, 0, len(e.names))
	for md := range e.names {
		mds = append(mds, md)
	}
	sort.Strings(mds)
	return mds
}

// byHand runs one command of the manual procedure (stdin, if not nil, is
// its input) and notes it in p.Actions.
func (e *env) byHand(p *result.Phase, name string, stdin []byte, args ...string) error {
	cmd := exec.CommandContext(e.ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	line := path.Base(name) + " " + strings.Join(args, " ")
	p.Actions = append(p.Actions, fmt.Sprintf("%s ok=%v", line, err == nil))
	if err != nil {
		return fmt.Errorf("%s: %v: %s", line, err, bytes.TrimSpace(out))
	}
	return nil
}

// replaceByHand does what an operator does for a blank replacement disk
// without ftnas: copy from's partition table (sfdisk -d, with fresh
// GUIDs), copy the ESP (partition 1) with dd, and mdadm --add each
// partition to the array its counterpart on from belongs to.
func (e *env) replaceByHand(p *result.Phase, from, disk string) error {
	dump, err := exec.CommandContext(e.ctx, "/sbin/sfdisk", "-d", "/dev/"+from).Output()
	if err != nil {
		return fmt.Errorf("sfdisk -d /dev/%s: %w", from, err)
	}
	p.Actions = append(p.Actions, "sfdisk -d /dev/"+from+" ok=true")
	if err := e.byHand(p, "/sbin/sfdisk", freshGUIDs(dump), "/dev/"+disk); err != nil {
		return err
	}
	parts, err := partitions(from)
	if err != nil {
		return err
	}
	// The kernel has re-read the table; wait for the nodes.
	var want []string
	for _, pt := range parts {
		want = append(want, disk+strings.TrimPrefix(pt, from))
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, pt := range want {
		for {
			_, err1 := os.Stat("/sys/class/block/" + pt)
			_, err2 := os.Stat("/dev/" + pt)
			if err1 == nil && err2 == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("partition %s of %s not there 20 s after sfdisk", pt, disk)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := ddCopy("/dev/"+from+"1", "/dev/"+disk+"1"); err != nil {
		return err
	}
	p.Actions = append(p.Actions, fmt.Sprintf("dd if=/dev/%s1 of=/dev/%s1 ok=true", from, disk))
	type add struct{ part, md string }
	var adds []add
	for _, md := range e.sortedArrays() {
		m, err := e.memberOn(md, from)
		if err != nil {
			return err
		}
		adds = append(adds, add{disk + strings.TrimPrefix(m, from), md})
	}
	sort.Slice(adds, func(i, j int) bool { return adds[i].part < adds[j].part })
	for _, a := range adds {
		if err := e.byHand(p, "/sbin/mdadm", nil, "--manage", "/dev/"+a.md, "--add", "/dev/"+a.part); err != nil {
			return err
		}
	}
	return nil
}

// freshGUIDs drops the disk and partition GUIDs from an sfdisk dump, so
// sfdisk makes new ones.
func freshGUIDs(dump []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(dump), "\n") {
		if strings.HasPrefix(l, "label-id:") {
			continue
		}
		var fields []string
		for _, f := range strings.Split(l, ",") {
			if strings.HasPrefix(strings.TrimSpace(f), "uuid=") {
				continue
			}
			fields = append(fields, f)
		}
		out = append(out, strings.Join(fields, ","))
	}
	return []byte(strings.Join(out, "\n"))
}

// ddCopy copies the block device src onto dst and syncs it.
func ddCopy(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// waitGone waits until disk's block device has gone.
func waitGone(disk string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat("/sys/block/" + disk); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still there %v after the pull", disk, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assemble examines every partition of vda..vdd and assembles each array
// found from its members.
func (e *env) assemble() error {
	byUUID := map[string][]string{}
	name := map[string]string{}
	for _, d := range []string{"vda", "vdb", "vdc", "vdd"} {
		parts, err := partitions(d)
		if err != nil {
			return err
		}
		for _, p := range parts {
			sb, err := e.md.Examine(e.ctx, "/dev/"+p)
			if err != nil {
				return fmt.Errorf("examine %s: %w", p, err)
			}
			if !sb.Populated {
				continue
			}
			byUUID[sb.UUID] = append(byUUID[sb.UUID], "/dev/"+p)
			n := sb.Name
			if _, after, ok := strings.Cut(n, ":"); ok {
				n = after
			}
			name[sb.UUID] = n
		}
	}
	uuids := make([]string, 0, len(byUUID))
	for u := range byUUID {
		uuids = append(uuids, u)
	}
	sort.Slice(uuids, func(i, j int) bool { return name[uuids[i]] < name[uuids[j]] })
	for i, u := range uuids {
		md := fmt.Sprintf("md%d", i)
		if err := e.md.Assemble(e.ctx, "/dev/"+md, byUUID[u], false); err != nil {
			return fmt.Errorf("assemble %s (%s) from %v: %w", md, name[u], byUUID[u], err)
		}
		e.names[md] = name[u]
		if strings.HasSuffix(name[u], "-data") {
			e.data = md
		}
	}
	if e.data == "" {
		return fmt.Errorf("no data array among %v", e.names)
	}
	return nil
}

// partitions lists disk's partitions from sysfs.
func partitions(disk string) ([]string, error) {
	ents, err := os.ReadDir("/sys/block/" + disk)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, en := range ents {
		if strings.HasPrefix(en.Name(), disk) {
			out = append(out, en.Name())
		}
	}
	return out, nil
}

// diskBySerial is the vd* disk whose serial is serial.
func diskBySerial(serial string) (string, error) {
	ents, err := os.ReadDir("/sys/block")
	if err != nil {
		return "", err
	}
	for _, en := range ents {
		if !strings.HasPrefix(en.Name(), "vd") {
			continue
		}
		b, err := os.ReadFile("/sys/block/" + en.Name() + "/serial")
		if err == nil && strings.TrimSpace(string(b)) == serial {
			return en.Name(), nil
		}
	}
	return "", fmt.Errorf("no disk with serial %s", serial)
}

// waitDisk waits for a disk with serial to be there: its name and when it
// was first seen.
func waitDisk(serial string, timeout time.Duration) (string, time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		if d, err := diskBySerial(serial); err == nil {
			return d, time.Now(), nil
		}
		if time.Now().After(deadline) {
			return "", time.Time{}, fmt.Errorf("disk %s not back within %v", serial, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noMembersOf: the array has no member on disk and misses one.
func noMembersOf(disk string) func(raid.ArrayStatus) bool {
	return func(a raid.ArrayStatus) bool {
		for _, m := range a.Members {
			if strings.HasPrefix(m.Name, disk) {
				return false
			}
		}
		return a.Degraded == 1
	}
}

// memberOn is array's member on disk.
func (e *env) memberOn(array, disk string) (string, error) {
	a, err := raid.ReadArray(e.block, array)
	if err != nil {
		return "", err
	}
	for _, m := range a.Members {
		if strings.HasPrefix(m.Name, disk) {
			return m.Name, nil
		}
	}
	return "", fmt.Errorf("%s has no member on %s: %+v", array, disk, a.Members)
}

// waitAll waits until cond holds for every array, printing changes.
func (e *env) waitAll(what string, timeout time.Duration, cond func(raid.ArrayStatus) bool) (map[string]raid.ArrayStatus, error) {
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		all, line, err := e.readAll()
		if err != nil {
			return nil, err
		}
		if line != last {
			fmt.Printf("raidbench: %7.2fs %s: %s\n", time.Since(e.start).Seconds(), what, line)
			last = line
		}
		ok := true
		for _, a := range all {
			ok = ok && cond(a)
		}
		if ok {
			return all, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: not done after %v: %s", what, timeout, line)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *env) readAll() (map[string]raid.ArrayStatus, string, error) {
	all := map[string]raid.ArrayStatus{}
	var parts []string
	mds := make([]string, 0, len(e.names))
	for md := range e.names {
		mds = append(mds, md)
	}
	sort.Strings(mds)
	for _, md := range mds {
		a, err := raid.ReadArray(e.block, md)
		if err != nil {
			return nil, "", err
		}
		all[md] = a
		var ms []string
		for _, m := range a.Members {
			ms = append(ms, fmt.Sprintf("%s(%s)", m.Name, strings.Join(m.State, ",")))
		}
		sync := string(a.SyncAction)
		if a.SyncCompleted.Delayed {
			sync += "/delayed"
		} else if a.SyncCompleted.Running {
			sync += fmt.Sprintf("/%d%%", int(100*a.SyncCompleted.Fraction()))
		}
		parts = append(parts, fmt.Sprintf("%s[%s %s deg=%d %s %s]", md, e.names[md], a.State, a.Degraded, sync, strings.Join(ms, " ")))
	}
	return all, strings.Join(parts, " "), nil
}

// rebuild waits until every array is healthy with a member on disk,
// sampling each array's recovery window; ref is the phase's reference
// time (the disk seen, or the --add).
func (e *env) rebuild(p *result.Phase, ref time.Time, disk string, timeout time.Duration) error {
	type track struct {
		start, end time.Time
		s0, s1     cpuStat
		speeds     []int64
		comp       int64
		touched    bool
	}
	tr := map[string]*track{}
	for md := range e.names {
		tr[md] = &track{}
	}
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		all, line, err := e.readAll()
		if err != nil {
			return err
		}
		now := time.Now()
		if line != last {
			fmt.Printf("raidbench: %7.2fs rebuild: %s\n", now.Sub(e.start).Seconds(), line)
			last = line
		}
		done := true
		for md, a := range all {
			t := tr[md]
			running := a.SyncCompleted.Running && !a.SyncCompleted.Delayed && a.SyncAction != raid.SyncIdle && a.SyncAction != ""
			if running {
				t.touched = true
				if t.start.IsZero() {
					t.start = now
					t.s0 = readCPU()
				}
				if a.SyncSpeed > 0 {
					t.speeds = append(t.speeds, a.SyncSpeed)
				}
			}
			onDisk := false
			for _, m := range a.Members {
				if strings.HasPrefix(m.Name, disk) && m.InSync() {
					onDisk = true
				}
			}
			ok := a.Healthy() && onDisk
			if ok && t.end.IsZero() {
				t.end = now
				t.s1 = readCPU()
				t.comp = a.ComponentSize
				if t.start.IsZero() { // finished between two samples
					t.start = now
				}
			}
			done = done && ok
		}
		if done {
			p.CleanS = time.Since(ref).Seconds()
			break
		}
		if now.After(deadline) {
			return fmt.Errorf("rebuild onto %s: not done after %v: %s", disk, timeout, line)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mds := make([]string, 0, len(tr))
	for md := range tr {
		mds = append(mds, md)
	}
	sort.Strings(mds)
	for _, md := range mds {
		t := tr[md]
		w := result.Window{Array: e.names[md], ComponentKiB: t.comp, StartS: t.start.Sub(ref).Seconds(), EndS: t.end.Sub(ref).Seconds()}
		if d := t.end.Sub(t.start).Seconds(); d > 0 {
			w.MBs = float64(t.comp) * 1024 / d / 1e6
		}
		if !t.s0.zero() && !t.s1.zero() {
			if d := t.s1.total - t.s0.total; d > 0 {
				w.CPUBusy = 1 - float64(t.s1.idle-t.s0.idle)/float64(d)
			}
			w.Forks = t.s1.forks - t.s0.forks
		}
		if len(t.speeds) > 0 {
			var sum int64
			for _, v := range t.speeds {
				sum += v
			}
			w.MdSpeedKiBs = float64(sum) / float64(len(t.speeds))
		}
		if md == e.data {
			p.Data = w
		} else if t.touched {
			p.Others = append(p.Others, w)
		}
	}
	return nil
}

// mgr is a raid.Manager as nasd runs it (startHotplug, with
// --raid-auto-adopt), recording its actions.
type mgr struct {
	m  *raid.Manager
	mu sync.Mutex
	as []string
}

func (e *env) manager() *mgr {
	g := &mgr{}
	g.m = &raid.Manager{
		Mdadm: e.md, Block: e.block, ClassBlock: os.DirFS("/sys/class/block"), Logger: e.logger,
		AutoAdopt: true,
		OnAction: func(a raid.Action, err error) {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.as = append(g.as, fmt.Sprintf("%s %s %s ok=%v", a.Kind, a.Array, a.Device, err == nil))
		},
	}
	return g
}

func (g *mgr) actions() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.as...)
}

// writer is the client: synced 64 KiB writes to the data array's first
// 32 MiB, round and round, each chunk a pattern of its write number.
type writer struct {
	dev    string
	every  time.Duration
	f      *os.File
	mu     sync.Mutex
	cur    *result.Phase
	last   map[int64]uint64 // chunk → write number last written OK
	writes atomic.Int64
	errs   atomic.Int64
	quit   chan struct{}
	done   chan struct{}
}

const (
	chunk  = 64 << 10
	chunks = 32 << 20 / chunk
)

func newWriter(dev string, every time.Duration) (*writer, error) {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return &writer{dev: dev, every: every, f: f, last: map[int64]uint64{}, quit: make(chan struct{}), done: make(chan struct{})}, nil
}

func (w *writer) phase(p *result.Phase) {
	w.mu.Lock()
	w.cur = p
	w.mu.Unlock()
}

func (w *writer) run() {
	defer close(w.done)
	t := time.NewTicker(w.every)
	defer t.Stop()
	for n := uint64(1); ; n++ {
		select {
		case <-w.quit:
			return
		case <-t.C:
		}
		i := int64(n % chunks)
		_, err := w.f.WriteAt(pattern(n), i*chunk)
		if err == nil {
			err = w.f.Sync()
		}
		w.writes.Add(1)
		w.mu.Lock()
		if w.cur != nil {
			w.cur.Writes++
		}
		if err != nil {
			w.errs.Add(1)
			if w.cur != nil {
				w.cur.WriteErrors++
			}
			fmt.Printf("raidbench: client write %d: %v\n", n, err)
		} else {
			w.last[i] = n
		}
		w.mu.Unlock()
	}
}

func (w *writer) stop() {
	close(w.quit)
	<-w.done
}

// verify reads every chunk written back past the page cache.
func (w *writer) verify() (ok, bad int, err error) {
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return 0, 0, err
	}
	defer w.f.Close()
	got := make([]byte, chunk)
	for i, n := range w.last {
		if _, err := w.f.ReadAt(got, i*chunk); err != nil {
			return ok, bad, fmt.Errorf("read back chunk %d: %w", i, err)
		}
		if bytes.Equal(got, pattern(n)) {
			ok++
		} else {
			bad++
			fmt.Printf("raidbench: chunk %d does not hold write %d\n", i, n)
		}
	}
	return ok, bad, nil
}

func pattern(n uint64) []byte {
	r := rand.New(rand.NewPCG(n, ^n))
	b := make([]byte, chunk)
	for i := 0; i < chunk; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// cpuStat is /proc/stat's CPU time (jiffies) and process count.
type cpuStat struct{ total, idle, forks int64 }

func (c cpuStat) zero() bool { return c.total == 0 }

// readCPU reads /proc/stat; zero when it cannot.
func readCPU() cpuStat {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuStat{}
	}
	var c cpuStat
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "cpu":
			for i, v := range f[1:] {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return cpuStat{}
				}
				c.total += n
				if i == 3 || i == 4 { // idle, iowait
					c.idle += n
				}
			}
		case "processes":
			c.forks, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return c
}
