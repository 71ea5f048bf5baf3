// Command hotplugguest runs inside a qemu guest for raid's hot-plug qemu
// test: with two virtio disks (vda, vdb) and mdadm it builds a RAID1
// with an internal bitmap, starts raid.Manager (uevent-driven; its
// periodic evaluation is set too long to matter), keeps writing while the
// host unplugs vdb (QMP device_del), checks the Manager failed and removed
// it, writes more, and after the host plugs the same disk back checks the
// Manager re-added it, the array is clean again and the re-added disk
// alone holds every byte written. The host acts on the "hotplug: ready-*"
// lines; it prints "hotplug: summary {json}" and exits non-zero on the
// first failure.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ftnas/images/guest"
	"ftnas/raid"
	"ftnas/raid/internal/blockio"
)

const (
	array  = "/dev/md0"
	mdName = "md0"
	chunk  = 64 << 10
	// The writer's region starts at 8 MiB; 48 MiB of 64 MiB disks.
	writeOff  = 8 << 20
	maxChunks = 48 << 20 / chunk
)

// Summary is what the host test asserts on.
type Summary struct {
	Actions         []string         `json:"actions"`
	RemovedS        float64          `json:"removed_s"`
	Degraded        raid.ArrayStatus `json:"degraded"`
	ReAddedS        float64          `json:"readded_s"`
	ReAddedDevice   string           `json:"readded_device"`
	ChunksBefore    int              `json:"chunks_before"`
	ChunksAbsent    int              `json:"chunks_absent"`
	DataOK          bool             `json:"data_ok"`
	Final           raid.ArrayStatus `json:"final"`
	WriteErrorsSeen int              `json:"write_errors"`
}

func main() {
	if err := run(); err != nil {
		fmt.Println("hotplug: FAILED:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	logger := slog.New(slog.NewTextHandler(os.Stdout, nil))
	md := &raid.Mdadm{Path: "/sbin/mdadm", Logger: logger}
	sys := os.DirFS("/sys/block")
	var s Summary
	if err := guest.WaitBlockDevices([]string{"vda", "vdb"}, 10*time.Second); err != nil {
		return err
	}
	if err := os.WriteFile("/proc/sys/dev/raid/speed_limit_min", []byte("200000\n"), 0); err != nil {
		return err
	}
	// Blank disks: no initial resync needed.
	if err := md.Create(ctx, raid.CreateSpec{Device: array, Name: "hp", Level: raid.RAID1, Devices: []string{"/dev/vda", "/dev/vdb"}, AssumeClean: true}); err != nil {
		return err
	}
	st, err := raid.ReadArray(sys, mdName)
	if err != nil {
		return err
	}
	if !st.Bitmap || !st.Healthy() || len(st.Members) != 2 {
		return fmt.Errorf("after create: %+v", st)
	}
	head := blockio.Pattern(1, 4<<20)
	if err := blockio.WriteAt(array, 0, head); err != nil {
		return err
	}

	var mu sync.Mutex
	mgr := &raid.Manager{
		Mdadm: md, Block: sys, ClassBlock: os.DirFS("/sys/class/block"),
		Interval: 10 * time.Minute, RetryDelay: 500 * time.Millisecond, Logger: logger,
		OnAction: func(a raid.Action, err error) {
			mu.Lock()
			defer mu.Unlock()
			s.Actions = append(s.Actions, fmt.Sprintf("%s %s %s ok=%v", a.Kind, a.Array, a.Device, err == nil))
			if a.Kind == raid.ActReAdd && err == nil {
				s.ReAddedDevice = a.Device
			}
		},
	}
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.RunUevents(ctx) }()

	// Keep writing while vdb goes away.
	var written atomic.Int64
	var writeErrs atomic.Int64
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() { writerDone <- writer(stop, &written, &writeErrs) }()
	for written.Load() < 8 {
		time.Sleep(10 * time.Millisecond)
	}
	s.ChunksBefore = int(written.Load())
	t0 := time.Now()
	fmt.Println("hotplug: ready-remove")

	st, err = waitFor(sys, "unplug", 30*time.Second, start, func(a raid.ArrayStatus) bool {
		_, ok := a.Member("vdb")
		return !ok && len(a.Members) == 1 && a.Degraded == 1
	})
	if err != nil {
		return err
	}
	s.RemovedS = time.Since(t0).Seconds()
	s.Degraded = st
	if err := mdadmShows(md, ctx, "vdb", false); err != nil {
		return err
	}
	// Write some more while vdb is away, then stop the writer.
	mark := written.Load()
	for written.Load() < mark+16 {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	if err := <-writerDone; err != nil {
		return err
	}
	n := int(written.Load())
	s.ChunksAbsent = n - s.ChunksBefore
	s.WriteErrorsSeen = int(writeErrs.Load())

	t0 = time.Now()
	fmt.Println("hotplug: ready-add")
	st, err = waitFor(sys, "replug", 60*time.Second, start, func(a raid.ArrayStatus) bool {
		return a.Healthy() && len(a.Members) == 2
	})
	if err != nil {
		return err
	}
	s.ReAddedS = time.Since(t0).Seconds()
	mu.Lock()
	dev := s.ReAddedDevice
	mu.Unlock()
	if dev == "" {
		return fmt.Errorf("array clean again but the Manager re-added nothing: %+v", st)
	}

	// Round 2, idle: without writes md may not notice the disk is gone,
	// so the Manager may have to fail it (by kernel name, its node gone).
	fmt.Println("hotplug: ready-remove")
	if _, err := waitFor(sys, "idle unplug", 30*time.Second, start, func(a raid.ArrayStatus) bool {
		_, ok := a.Member(dev)
		return !ok && len(a.Members) == 1 && a.Degraded == 1
	}); err != nil {
		return err
	}
	mu.Lock()
	s.ReAddedDevice = ""
	mu.Unlock()
	fmt.Println("hotplug: ready-add")
	if _, err := waitFor(sys, "idle replug", 60*time.Second, start, func(a raid.ArrayStatus) bool {
		return a.Healthy() && len(a.Members) == 2
	}); err != nil {
		return err
	}
	mu.Lock()
	dev = s.ReAddedDevice
	mu.Unlock()
	if dev == "" {
		return fmt.Errorf("round 2: array clean again but the Manager re-added nothing")
	}
	// The re-added disk alone must hold everything, including what was
	// written while it was away.
	other := "vda"
	if dev == "vda" {
		other = "vdb"
	}
	if err := md.Fail(ctx, array, "/dev/"+other); err != nil {
		return err
	}
	ok, err := blockio.Verify(array, 0, head)
	if err != nil {
		return err
	}
	s.DataOK = ok
	want := make([]byte, 0, n*chunk)
	for i := 0; i < n; i++ {
		want = append(want, blockio.Pattern(uint64(100+i), chunk)...)
	}
	okW, err := blockio.Verify(array, writeOff, want)
	if err != nil {
		return err
	}
	s.DataOK = s.DataOK && okW
	if s.Final, err = raid.ReadArray(sys, mdName); err != nil {
		return err
	}
	cancel()
	if err := <-mgrDone; err != nil && err != context.Canceled {
		return fmt.Errorf("manager: %w", err)
	}
	if err := md.Stop(context.Background(), array); err != nil {
		return err
	}
	mu.Lock()
	b, err := json.Marshal(s)
	mu.Unlock()
	if err != nil {
		return err
	}
	fmt.Printf("hotplug: summary %s\n", b)
	return nil
}

// writer writes chunk after chunk (each synced) until stop; written
// counts the chunks on stable storage.
func writer(stop <-chan struct{}, written, errs *atomic.Int64) error {
	f, err := os.OpenFile(array, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for i := 0; i < maxChunks; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		if _, err := f.WriteAt(blockio.Pattern(uint64(100+i), chunk), writeOff+int64(i)*chunk); err != nil {
			errs.Add(1)
			return fmt.Errorf("write chunk %d: %w", i, err)
		}
		if err := f.Sync(); err != nil {
			errs.Add(1)
			return fmt.Errorf("sync chunk %d: %w", i, err)
		}
		written.Store(int64(i + 1))
	}
	return fmt.Errorf("writer: region full after %d chunks", maxChunks)
}

// mdadmShows checks mdadm --detail's view of dev's membership.
func mdadmShows(md *raid.Mdadm, ctx context.Context, dev string, want bool) error {
	out, _, err := raid.ExecRunner(ctx, md.Path, "--detail", array)
	if err != nil {
		return fmt.Errorf("mdadm --detail: %w", err)
	}
	fmt.Printf("hotplug: mdadm --detail:\n%s", out)
	if got := bytes.Contains(out, []byte("/dev/"+dev+"\n")); got != want {
		return fmt.Errorf("mdadm --detail lists %s: %v, want %v", dev, got, want)
	}
	if !want && !bytes.Contains(out, []byte("removed")) {
		return fmt.Errorf("mdadm --detail shows no removed slot")
	}
	return nil
}

func waitFor(sys fs.FS, what string, timeout time.Duration, start time.Time, cond func(raid.ArrayStatus) bool) (raid.ArrayStatus, error) {
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		a, err := raid.ReadArray(sys, mdName)
		if err != nil {
			return a, err
		}
		var parts []string
		for _, m := range a.Members {
			parts = append(parts, fmt.Sprintf("%s[%d](%s)", m.Name, m.Slot, strings.Join(m.State, ",")))
		}
		line := fmt.Sprintf("state=%s degraded=%d action=%s members=%s", a.State, a.Degraded, a.SyncAction, strings.Join(parts, " "))
		if line != last {
			fmt.Printf("hotplug: %6.2fs %s: %s\n", time.Since(start).Seconds(), what, line)
			last = line
		}
		if cond(a) {
			return a, nil
		}
		if time.Now().After(deadline) {
			return a, fmt.Errorf("%s: not done after %v: %s", what, timeout, line)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
