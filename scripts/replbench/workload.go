package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"path"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	nfsrpc "github.com/willscott/go-nfs-client/nfs/rpc"

	"ftnas/kernel/netns"
)

type workloadOptions struct {
	NetNS, Server, Export, Dir        string
	Files, WriteMiB, Renames, Deletes int
	Seed                              uint64
	UID, GID                          uint32 // root is squashed by the server
	// WriteRate, if positive, paces the mixed writes to this many MiB/s:
	// their lag then shows what the standby does while the machine has
	// room, not only when the writer takes all it can.
	WriteRate float64
}

func (o workloadOptions) check() error {
	if a, err := netip.ParseAddr(o.Server); err != nil || !a.Is4() {
		return fmt.Errorf("--server %q: want an IPv4 address", o.Server)
	}
	if o.WriteRate < 0 {
		return fmt.Errorf("--write-rate %g: want MiB/s >= 0", o.WriteRate)
	}
	if o.Files < 0 || o.WriteMiB < 0 || o.Renames < 0 || o.Deletes < 0 {
		return errors.New("--files, --write-mib, --renames and --deletes: want counts >= 0")
	}
	if o.Renames+o.Deletes > o.Files {
		return fmt.Errorf("--renames %d + --deletes %d: more than the %d files created", o.Renames, o.Deletes, o.Files)
	}
	if o.Dir == "" || path.IsAbs(o.Dir) {
		return fmt.Errorf("--dir %q: want a relative folder", o.Dir)
	}
	return nil
}

type workloadResult struct {
	StartNS   int64   `json:"start_ns"`
	EndNS     int64   `json:"end_ns"`
	Seconds   float64 `json:"seconds"`
	Creates   int     `json:"creates"`
	Writes    int     `json:"writes"` // WRITE-level operations of the mixed part (large-file chunks + overwrites)
	Bytes     int64   `json:"bytes"`  // file bytes written, all parts
	Renames   int     `json:"renames"`
	Deletes   int     `json:"deletes"`
	Mkdirs    int     `json:"mkdirs"`
	OpsPerSec float64 `json:"ops_s"` // namespace and write operations per second
	// PhaseEndNS is when each part ended (unix ns): "creates", "writes",
	// "overwrites", "renames", "deletes"; to line a trace up with the
	// workload.
	PhaseEndNS map[string]int64 `json:"phase_end_ns"`
}

const (
	filesPerDir = 100
	bigFile     = 16 << 20 // the mixed writes' new files
	chunk       = 1 << 20  // written as 1 MiB application writes
	overwrite   = 64 << 10 // and overwritten in 64 KiB pieces
)

// workload runs the client side. The mount's connections are made inside
// o.NetNS; every later call uses them.
func workload(ctx context.Context, o workloadOptions, log io.Writer) (workloadResult, error) {
	var tgt *nfsc.Target
	var mnt *nfsc.Mount
	err := netns.Do(o.NetNS, func() error {
		var err error
		mnt, err = nfsc.DialMount(o.Server, time.Second)
		if err != nil {
			return fmt.Errorf("portmapper/MOUNT at %s: %w", o.Server, err)
		}
		tgt, err = mnt.Mount(o.Export, nfsrpc.NewAuthUnix("replbench", o.UID, o.GID).Auth())
		if err != nil {
			mnt.Close()
			return fmt.Errorf("MNT %s: %w", o.Export, err)
		}
		return nil
	})
	if err != nil {
		return workloadResult{}, err
	}
	defer mnt.Close()
	defer tgt.Close()

	rng := rand.New(rand.NewPCG(o.Seed, 0x7265706c))
	buf := make([]byte, chunk)
	fill := func(b []byte) {
		for i := 0; i+8 <= len(b); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				b[i+j] = byte(v >> (8 * j))
			}
		}
	}
	r := workloadResult{PhaseEndNS: map[string]int64{}}
	r.StartNS = time.Now().UnixNano()
	phase := func(name string) { r.PhaseEndNS[name] = time.Now().UnixNano() }
	mkdir := func(p string) error {
		if _, err := tgt.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("MKDIR %s: %w", p, err)
		}
		r.Mkdirs++
		return nil
	}
	write := func(p string, off int64, b []byte) error {
		f, err := tgt.OpenFile(p, 0o644)
		if err != nil {
			return fmt.Errorf("open %s: %w", p, err)
		}
		if off != 0 {
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				return fmt.Errorf("seek %s: %w", p, err)
			}
		}
		if _, err := f.Write(b); err != nil {
			return fmt.Errorf("WRITE %s at %d: %w", p, off, err)
		}
		r.Bytes += int64(len(b))
		return nil
	}
	if _, _, err := tgt.Lookup(o.Dir); err != nil {
		if err := mkdir(o.Dir); err != nil {
			return r, err
		}
	}
	for _, d := range []string{o.Dir + "/small", o.Dir + "/big", o.Dir + "/renamed"} {
		if err := mkdir(d); err != nil {
			return r, err
		}
	}
	small := func(i int) string { return fmt.Sprintf("%s/small/d%03d/f%06d", o.Dir, i/filesPerDir, i) }

	// 1. small-file creates, 1-8 KiB each.
	for i := range o.Files {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		if i%filesPerDir == 0 {
			if err := mkdir(path.Dir(small(i))); err != nil {
				return r, err
			}
		}
		b := buf[:1024*(1+rng.IntN(8))]
		fill(b)
		if err := write(small(i), 0, b); err != nil {
			return r, err
		}
		r.Creates++
	}
	phase("creates")
	fmt.Fprintf(log, "replbench: %d small files created\n", r.Creates)

	// 2. mixed writes: half the bytes as new 16 MiB files written in 1 MiB
	// pieces, half as 64 KiB overwrites at random offsets in them.
	total := int64(o.WriteMiB) << 20
	seq := total / 2
	var bigs []string
	paced := newPacer(o.WriteRate)
	for done := int64(0); done < seq; {
		p := fmt.Sprintf("%s/big/b%04d", o.Dir, len(bigs))
		bigs = append(bigs, p)
		for off := int64(0); off < bigFile && done < seq; off += chunk {
			if ctx.Err() != nil {
				return r, ctx.Err()
			}
			fill(buf)
			if err := paced.wait(ctx, chunk); err != nil {
				return r, err
			}
			if err := write(p, off, buf); err != nil {
				return r, err
			}
			done += chunk
			r.Writes++
		}
	}
	phase("writes")
	for done := int64(0); done < total-seq && len(bigs) > 0; done += overwrite {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		p := bigs[rng.IntN(len(bigs))]
		fi, _, err := tgt.Lookup(p)
		if err != nil {
			return r, fmt.Errorf("LOOKUP %s: %w", p, err)
		}
		lim := fi.Size() - overwrite
		off := int64(0)
		if lim > 0 {
			off = rng.Int64N(lim/4096+1) * 4096
		}
		b := buf[:overwrite]
		fill(b)
		if err := paced.wait(ctx, overwrite); err != nil {
			return r, err
		}
		if err := write(p, off, b); err != nil {
			return r, err
		}
		r.Writes++
	}
	phase("overwrites")
	fmt.Fprintf(log, "replbench: %d MiB of mixed writes done\n", o.WriteMiB)

	// 3. renames into another folder, 4. deletes: distinct small files.
	perm := rng.Perm(o.Files)
	for _, i := range perm[:o.Renames] {
		to := fmt.Sprintf("%s/renamed/r%06d", o.Dir, i)
		if err := tgt.Rename(small(i), to); err != nil {
			return r, fmt.Errorf("RENAME %s %s: %w", small(i), to, err)
		}
		r.Renames++
	}
	phase("renames")
	for _, i := range perm[o.Renames : o.Renames+o.Deletes] {
		if err := tgt.Remove(small(i)); err != nil {
			return r, fmt.Errorf("REMOVE %s: %w", small(i), err)
		}
		r.Deletes++
	}
	phase("deletes")
	r.EndNS = time.Now().UnixNano()
	r.Seconds = float64(r.EndNS-r.StartNS) / 1e9
	if r.Seconds > 0 {
		r.OpsPerSec = float64(r.Creates+r.Writes+r.Renames+r.Deletes+r.Mkdirs) / r.Seconds
	}
	return r, nil
}

// pacer holds writes to a rate: the write of the bytes after the first n
// starts no earlier than n/rate after the first.
type pacer struct {
	rate  float64 // bytes per second; 0: no pacing
	start time.Time
	n     int64
}

func newPacer(mibPerSec float64) *pacer { return &pacer{rate: mibPerSec * (1 << 20)} }

// wait waits until n more bytes may be written.
func (p *pacer) wait(ctx context.Context, n int64) error {
	if p.rate <= 0 {
		return nil
	}
	if p.start.IsZero() {
		p.start = time.Now()
	}
	at := p.start.Add(time.Duration(float64(p.n) / p.rate * float64(time.Second)))
	p.n += n
	d := time.Until(at)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
