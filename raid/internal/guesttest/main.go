// Command guesttest runs inside a qemu guest for raid's qemu test: with
// three blank virtio disks (vda, vdb, vdc) and mdadm, it builds a RAID1,
// writes data, fails, removes and re-adds a member (bitmap re-add),
// replaces a member with the blank disk (full rebuild), and checks the
// data and ArrayStatus at each step. It prints "raidtest: summary {json}"
// and exits non-zero on the first failure.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"ftnas/images/guest"
	"ftnas/raid"
	"ftnas/raid/internal/blockio"
)

const (
	array   = "/dev/md0"
	mdName  = "md0"
	dataLen = 4 << 20
)

// Summary is what the host test asserts on.
type Summary struct {
	ResyncS            float64          `json:"resync_s"`
	DegradedAfterFail  int              `json:"degraded_after_fail"`
	FaultyFlag         bool             `json:"faulty_flag"`
	ReadDegradedOK     bool             `json:"read_degraded_ok"`
	ReAddS             float64          `json:"readd_s"`
	ReAddSawRecover    bool             `json:"readd_saw_recover"`
	ReAddedDataOK      bool             `json:"readded_data_ok"`
	RebuildS           float64          `json:"rebuild_s"`
	RebuildSawProgress bool             `json:"rebuild_saw_progress"`
	ReplacedDataOK     bool             `json:"replaced_data_ok"`
	BlankExamined      bool             `json:"blank_examined"`
	Final              raid.ArrayStatus `json:"final"`
}

type tester struct {
	ctx   context.Context
	md    *raid.Mdadm
	sys   fs.FS
	start time.Time
}

func main() {
	if err := run(); err != nil {
		fmt.Println("raidtest: FAILED:", err)
		os.Exit(1)
	}
}

func run() error {
	t := &tester{
		ctx:   context.Background(),
		md:    &raid.Mdadm{Path: "/sbin/mdadm", Logger: slog.New(slog.NewTextHandler(os.Stdout, nil))},
		sys:   os.DirFS("/sys/block"),
		start: time.Now(),
	}
	var s Summary
	if err := guest.WaitBlockDevices([]string{"vda", "vdb", "vdc"}, 10*time.Second); err != nil {
		return err
	}
	// md would throttle rebuilds to speed_limit_min when it thinks the
	// disks are busy; this is a test, let it run.
	if err := os.WriteFile("/proc/sys/dev/raid/speed_limit_min", []byte("200000\n"), 0); err != nil {
		return err
	}

	// A blank disk has no superblock: Examine says so without an error.
	sb, err := t.md.Examine(t.ctx, "/dev/vdc")
	if err != nil {
		return fmt.Errorf("examine blank vdc: %w", err)
	}
	s.BlankExamined = !sb.Populated

	// 1. Create a RAID1 over vda and vdb and let the initial resync finish.
	t0 := time.Now()
	if err := t.md.Create(t.ctx, raid.CreateSpec{Device: array, Name: "test", Level: raid.RAID1, Devices: []string{"/dev/vda", "/dev/vdb"}, Homehost: "ftnas"}); err != nil {
		return err
	}
	st, err := raid.ReadArray(t.sys, mdName)
	if err != nil {
		return err
	}
	t.dump("after create")
	if st.Level != "raid1" || st.RaidDisks != 2 || !st.Bitmap || len(st.Members) != 2 {
		return fmt.Errorf("after create: %+v", st)
	}
	if _, err := t.waitFor("initial resync", 30*time.Second, func(a raid.ArrayStatus) bool { return a.Healthy() }); err != nil {
		return err
	}
	s.ResyncS = time.Since(t0).Seconds()
	sb, err = t.md.Examine(t.ctx, "/dev/vda")
	if err != nil || !sb.Populated || sb.Level != "raid1" || sb.Devices != 2 {
		return fmt.Errorf("examine vda: %+v, %v", sb, err)
	}
	fmt.Printf("raidtest: examine vda %q\n", sb.Fields)

	data := blockio.Pattern(1, dataLen)
	if err := blockio.WriteAt(array, 0, data); err != nil {
		return err
	}

	// 2. Fail vdb: degraded, data still reads.
	if err := t.md.Fail(t.ctx, array, "/dev/vdb"); err != nil {
		return err
	}
	st, err = raid.ReadArray(t.sys, mdName)
	if err != nil {
		return err
	}
	t.dump("after fail")
	s.DegradedAfterFail = st.Degraded
	if m, ok := st.Member("vdb"); ok {
		s.FaultyFlag = m.Faulty()
	}
	if s.ReadDegradedOK, err = blockio.Verify(array, 0, data); err != nil {
		return err
	}
	// Write while vdb is away, so the bitmap has something to re-sync.
	more := blockio.Pattern(2, 1<<20)
	if err := blockio.WriteAt(array, 8<<20, more); err != nil {
		return err
	}

	// 3. Remove and re-add vdb: the bitmap limits the rebuild to what
	// changed.
	if err := t.md.Remove(t.ctx, array, "/dev/vdb"); err != nil {
		return err
	}
	if st, err = raid.ReadArray(t.sys, mdName); err != nil {
		return err
	}
	if _, ok := st.Member("vdb"); ok {
		return fmt.Errorf("vdb still a member after remove: %+v", st.Members)
	}
	// Removing twice is an error mdadm explains.
	if err := t.md.Remove(t.ctx, array, "/dev/vdb"); err == nil {
		return fmt.Errorf("second remove of vdb succeeded")
	} else {
		fmt.Println("raidtest: second remove:", err)
	}
	t0 = time.Now()
	if err := t.md.ReAdd(t.ctx, array, "/dev/vdb"); err != nil {
		return err
	}
	seen, err := t.waitFor("bitmap re-add", 30*time.Second, func(a raid.ArrayStatus) bool { return a.Healthy() && len(a.Members) == 2 })
	if err != nil {
		return err
	}
	s.ReAddS = time.Since(t0).Seconds()
	s.ReAddSawRecover = seen[raid.SyncRecover]

	// 4. Fail vda: now only the re-added vdb serves; it must have the
	// data written while it was away.
	if err := t.md.Fail(t.ctx, array, "/dev/vda"); err != nil {
		return err
	}
	okA, err := blockio.Verify(array, 0, data)
	if err != nil {
		return err
	}
	okB, err := blockio.Verify(array, 8<<20, more)
	if err != nil {
		return err
	}
	s.ReAddedDataOK = okA && okB
	if err := t.md.Remove(t.ctx, array, "/dev/vda"); err != nil {
		return err
	}

	// 5. Replace vda with the blank vdc: a full rebuild online.
	t0 = time.Now()
	if err := t.md.Add(t.ctx, array, "/dev/vdc"); err != nil {
		return err
	}
	seen, err = t.waitFor("rebuild onto vdc", 60*time.Second, func(a raid.ArrayStatus) bool { return a.Healthy() && len(a.Members) == 2 })
	if err != nil {
		return err
	}
	s.RebuildS = time.Since(t0).Seconds()
	s.RebuildSawProgress = seen["progress"]

	// 6. Fail vdb: vdc alone must hold everything.
	if err := t.md.Fail(t.ctx, array, "/dev/vdb"); err != nil {
		return err
	}
	okA, err = blockio.Verify(array, 0, data)
	if err != nil {
		return err
	}
	okB, err = blockio.Verify(array, 8<<20, more)
	if err != nil {
		return err
	}
	s.ReplacedDataOK = okA && okB
	if s.Final, err = raid.ReadArray(t.sys, mdName); err != nil {
		return err
	}
	t.dump("final")
	if err := t.md.Stop(t.ctx, array); err != nil {
		return err
	}
	if names, err := raid.ListArrays(t.sys); err != nil || len(names) != 0 {
		return fmt.Errorf("arrays after stop: %v, %v", names, err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	fmt.Printf("raidtest: summary %s\n", b)
	return nil
}

// waitFor polls the array until cond holds, printing each change of
// sync_action and progress, and returns which sync actions it saw (and
// "progress" if sync_completed moved between 0 and the total).
func (t *tester) waitFor(what string, timeout time.Duration, cond func(raid.ArrayStatus) bool) (map[raid.SyncAction]bool, error) {
	seen := map[raid.SyncAction]bool{}
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		a, err := raid.ReadArray(t.sys, mdName)
		if err != nil {
			return nil, err
		}
		seen[a.SyncAction] = true
		if p := a.SyncCompleted; p.Running && p.Done > 0 && p.Done < p.Total {
			seen["progress"] = true
		}
		line := fmt.Sprintf("state=%s degraded=%d action=%s completed=%d/%d speed=%dK members=%s",
			a.State, a.Degraded, a.SyncAction, a.SyncCompleted.Done, a.SyncCompleted.Total, a.SyncSpeed, members(a))
		if line != last {
			fmt.Printf("raidtest: %6.2fs %s: %s\n", time.Since(t.start).Seconds(), what, line)
			if a.SyncAction != raid.SyncIdle && !seen["dumped-"+a.SyncAction] {
				seen["dumped-"+a.SyncAction] = true
				t.dump(what + " " + string(a.SyncAction))
			}
			last = line
		}
		if cond(a) {
			return seen, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: not done after %v: %s", what, timeout, line)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func members(a raid.ArrayStatus) string {
	var parts []string
	for _, m := range a.Members {
		parts = append(parts, fmt.Sprintf("%s[%d](%s)", m.Name, m.Slot, strings.Join(m.State, ",")))
	}
	return strings.Join(parts, " ")
}

// dump prints md's sysfs attributes, for reading along and for capturing
// test data.
func (t *tester) dump(when string) {
	fmt.Printf("sysfs: --- %s\n", when)
	dir := path.Join(mdName, "md")
	var files []string
	entries, _ := fs.ReadDir(t.sys, dir)
	for _, e := range entries {
		switch {
		case strings.HasPrefix(e.Name(), "dev-"):
			for _, f := range []string{"state", "slot", "errors"} {
				files = append(files, path.Join(dir, e.Name(), f))
			}
		case e.Name() == "bitmap":
			files = append(files, path.Join(dir, "bitmap", "location"))
		case !e.IsDir() && !strings.HasPrefix(e.Name(), "rd"):
			files = append(files, path.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := fs.ReadFile(t.sys, f)
		if err != nil {
			continue
		}
		fmt.Printf("sysfs: %s=%q\n", f, strings.TrimSpace(string(b)))
	}
}
