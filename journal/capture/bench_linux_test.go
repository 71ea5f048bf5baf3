package capture

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ftnas/appliance/fileid"
	"ftnas/appliance/fileid/fileidtest"
	"ftnas/journal"
	"ftnas/kernel/changelog"

	"golang.org/x/sys/unix"
)

// BenchmarkCapture measures the capture alone — the fanotify filter, the
// permission gate, the translation into records and the bbolt Log with
// fsync — on a loop-mounted btrfs image (CAPTURE_BENCH_FS=ext4 for ext4),
// with no standby and no network. benchWriters goroutines each work in a
// directory of their own; per file (b.N files in all) a writer makes
// these changes with plain system calls: create, write 4 KiB (one write),
// close; and, spread over the run, a chmod of every 4th file, a rename of
// every 4th and an unlink of every 8th — so 2.625 changes per file (the
// close is not counted), most files surviving. The clock runs from the
// first change until the capture has every record of them committed
// (capture.Sync: a marker made after the last change is seen, and the
// batch holding it is durable).
//
// Reported: changes/s (changes made / that time), records/s (records
// committed / that time), records/change, written/s (changes made / the
// writers' time: above changes/s when the capture lags), catchup-ms (from
// the last change until all is committed), the kernel queue overflows
// (each forces a rescan of the share: a run with overflows measures
// rescans too, not only the event path), and cpu-us/change (the process's
// CPU time, writers included, per change: less sensitive to other load on
// the machine than the rates). The capture answers hints with the state
// it reads (see the package doc), so a file created, renamed and removed
// before its events are read costs no record: records/change falls when
// the capture lags and batches grow.
//
//	go test -run '^$' -bench '^BenchmarkCapture$' -benchtime 20000x ./journal/capture/
func BenchmarkCapture(b *testing.B) {
	vol := benchVolume(b)
	share := filepath.Join(vol, "s1")
	if err := os.Mkdir(share, 0o755); err != nil {
		b.Fatal(err)
	}
	tree := benchTree(b, vol)
	jl, err := journal.Open(filepath.Join(b.TempDir(), "journal.db"), journal.Options{Logger: benchLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer jl.Close()
	c, err := New(Config{
		Volume: vol, Tree: tree, Shares: []changelog.Share{{FSID: 1, Root: share}},
		Log: jl, Gate: true, Logger: benchLogger(),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("capture run: %v", err)
		}
		c.Close()
	}()
	syncAll := func() {
		sctx, scancel := context.WithTimeout(ctx, 5*time.Minute)
		defer scancel()
		if err := c.Sync(sctx); err != nil {
			b.Fatal(err)
		}
	}
	dirs := make([]string, benchWriters)
	for w := range dirs {
		dirs[w] = filepath.Join(share, fmt.Sprintf("w%d", w))
		if err := os.Mkdir(dirs[w], 0o755); err != nil {
			b.Fatal(err)
		}
	}
	syncAll()
	before, stats0 := jl.Last(), c.Stats()

	b.ResetTimer()
	cpu0 := cpuTime(b)
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	changes := 0
	for w := range benchWriters {
		n := b.N / benchWriters
		if w < b.N%benchWriters {
			n++
		}
		wg.Go(func() {
			k, err := benchWriter(dirs[w], n)
			mu.Lock()
			changes += k
			mu.Unlock()
			if err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	written := time.Now()
	syncAll()
	el := time.Since(start)
	cpu := cpuTime(b) - cpu0
	b.StopTimer()

	recs := jl.Last() - before
	st := c.Stats()
	b.ReportMetric(float64(changes)/el.Seconds(), "changes/s")
	b.ReportMetric(float64(recs)/el.Seconds(), "records/s")
	b.ReportMetric(float64(recs)/float64(changes), "records/change")
	b.ReportMetric(float64(changes)/written.Sub(start).Seconds(), "written/s")
	b.ReportMetric(float64(time.Since(written).Milliseconds()), "catchup-ms")
	b.ReportMetric(float64(st.Overflows-stats0.Overflows), "overflows")
	b.ReportMetric(float64(cpu.Microseconds())/float64(changes), "cpu-us/change")
	if recs == 0 {
		b.Fatal("no records committed")
	}
	if os.Getenv("CAPTURE_BENCH_OPS") != "" {
		ops := map[journal.Op]int{}
		for seq := before + 1; seq <= jl.Last(); {
			rs, err := jl.Read(seq, 1000)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range rs {
				ops[r.Op]++
			}
			seq += uint64(len(rs))
		}
		b.Logf("ops %v stats %+v logstats %+v", ops, st, jl.Stats())
	}
}

// BenchmarkWriters is BenchmarkCapture's writers alone: the same changes
// on the same kind of volume, with no capture (no fanotify group, no
// journal). Its cpu-us/change is the writers' own share of
// BenchmarkCapture's; what is left there is the capture's, the kernel's
// queuing of the events the writers make included.
//
//	go test -run '^$' -bench '^BenchmarkWriters$' -benchtime 20000x ./journal/capture/
func BenchmarkWriters(b *testing.B) {
	vol := benchVolume(b)
	dirs := make([]string, benchWriters)
	for w := range dirs {
		dirs[w] = filepath.Join(vol, "s1", fmt.Sprintf("w%d", w))
		if err := os.MkdirAll(dirs[w], 0o755); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	cpu0 := cpuTime(b)
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	changes := 0
	for w := range benchWriters {
		n := b.N / benchWriters
		if w < b.N%benchWriters {
			n++
		}
		wg.Go(func() {
			k, err := benchWriter(dirs[w], n)
			mu.Lock()
			changes += k
			mu.Unlock()
			if err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	b.ReportMetric(float64(changes)/el.Seconds(), "changes/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(changes), "cpu-us/change")
}

// cpuTime is the CPU time (user and system) the process has used: the
// writers' and the capture's, in the kernel too (fanotify's events are
// made in the writers' system calls), less sensitive to other load on the
// machine than rates are.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchWriters is how many goroutines make changes at once.
const benchWriters = 4

// benchWriter makes n files in dir (see BenchmarkCapture) and returns the
// changes it made.
func benchWriter(dir string, n int) (int, error) {
	data := make([]byte, 4096)
	name := func(i int) string { return filepath.Join(dir, fmt.Sprintf("f%07d", i)) }
	moved := func(i int) string { return filepath.Join(dir, fmt.Sprintf("m%07d", i)) }
	changes := 0
	for i := range n {
		fd, err := unix.Open(name(i), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return changes, fmt.Errorf("create: %w", err)
		}
		_, err = unix.Write(fd, data)
		unix.Close(fd)
		if err != nil {
			return changes, fmt.Errorf("write: %w", err)
		}
		changes += 2
		// Older files: chmod one in 4, rename one in 4, unlink one in 8.
		if i%4 == 3 {
			if err := unix.Chmod(name(i-2), 0o600); err != nil {
				return changes, fmt.Errorf("chmod: %w", err)
			}
			if err := unix.Rename(name(i-3), moved(i-3)); err != nil {
				return changes, fmt.Errorf("rename: %w", err)
			}
			changes += 2
		}
		if i%8 == 7 {
			if err := unix.Unlink(name(i - 1)); err != nil {
				return changes, fmt.Errorf("unlink: %w", err)
			}
			changes++
		}
	}
	return changes, nil
}

func benchLogger() *slog.Logger {
	if os.Getenv("CAPTURE_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// benchVolume makes a 1 GiB sparse btrfs (or CAPTURE_BENCH_FS) image in
// b.TempDir(), loop-mounts it and returns the mount point; the mount and
// the loop device go away in Cleanup.
func benchVolume(b *testing.B) string {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root: loop mounts, fanotify filesystem marks and permission events")
	}
	fstype := "btrfs"
	if v := os.Getenv("CAPTURE_BENCH_FS"); v != "" {
		fstype = v
	}
	var args []string
	switch fstype {
	case "btrfs":
		args = []string{"-q", "-f"}
	case "ext4":
		args = []string{"-q", "-F"}
	default:
		b.Fatalf("CAPTURE_BENCH_FS=%s: want btrfs or ext4", fstype)
	}
	mkfs, err := exec.LookPath("mkfs." + fstype)
	if err != nil {
		b.Skipf("needs mkfs.%s: %v", fstype, err)
	}
	dir := b.TempDir()
	img, mnt := filepath.Join(dir, "vol.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		b.Fatal(err)
	}
	f.Close()
	benchRun(b, mkfs, append(args, img)...)
	dev := strings.TrimSpace(benchRun(b, "losetup", "--find", "--show", img))
	b.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			b.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	benchRun(b, "mount", "-t", fstype, dev, mnt)
	b.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			b.Errorf("umount %s: %v: %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	return mnt
}

func benchRun(b *testing.B, name string, args ...string) string {
	b.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		b.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// benchTree opens the volume's fileid tree with its index in a bbolt file
// outside the volume.
func benchTree(b *testing.B, vol string) *fileid.Tree {
	return fileidtest.OpenTree(b, vol, 1000, benchLogger())
}

// BenchmarkLookupNew measures one lookup of a file new to the volume's
// index, as Prefetch makes it, without events or writers: stamping it, its
// stat and its handle (CAPTURE_BENCH_FS as for BenchmarkCapture).
// BenchmarkLookupKnown is a Lookup (as a rescan makes it) of files already
// stamped.
//
//	go test -run '^$' -bench '^BenchmarkLookup' -benchtime 20000x ./journal/capture/
func BenchmarkLookupNew(b *testing.B) {
	v, dfd, d := benchLookupDir(b, b.N)
	b.ResetTimer()
	for i := range b.N {
		if _, ok, err := v.lookupAt(dfd, d, fmt.Sprintf("f%d", i), true); err != nil || !ok {
			b.Fatalf("lookup f%d: ok %v, %v", i, ok, err)
		}
	}
}

func BenchmarkLookupKnown(b *testing.B) {
	const files = 1000
	v, dfd, d := benchLookupDir(b, files)
	for i := range files {
		if _, _, err := v.lookupAt(dfd, d, fmt.Sprintf("f%d", i), true); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if _, ok, err := v.lookupAt(dfd, d, fmt.Sprintf("f%d", i%files), false); err != nil || !ok {
			b.Fatalf("lookup f%d: ok %v, %v", i%files, ok, err)
		}
	}
}

// benchLookupDir makes a volume with directory d holding n empty files
// f0…, and returns the volume, d opened (O_PATH) and d's DirRef.
func benchLookupDir(b *testing.B, n int) (*fsVolume, int, DirRef) {
	b.Helper()
	vol := benchVolume(b)
	tree := benchTree(b, vol)
	v, root, err := newFSVolume(vol, tree)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.Close() })
	dir := filepath.Join(vol, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	st, err := tree.StampAt(v.mountFD, root.Stamp, "d")
	if err != nil {
		b.Fatal(err)
	}
	dfd, err := unix.Openat(v.mountFD, "d", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Close(dfd) })
	return v, dfd, DirRef{Stamp: st}
}
