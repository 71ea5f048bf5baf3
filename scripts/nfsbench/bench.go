package main

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// options are the settings shared by every operation.
type options struct {
	Server  string
	Export  string
	UID     uint32
	GID     uint32
	Depth   int
	Chunk   uint64
	Timeout time.Duration
}

func (o options) cred() authSysCred {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "nfsbench"
	}
	return authSysCred{Machine: host, UID: o.UID, GID: o.GID, GIDs: []uint32{o.GID}}
}

// session is a mounted export.
type session struct {
	opts      options
	cred      authSysCred
	mountPort int
	nfsPort   int
	root      []byte
	info      fsinfo
}

// openSession resolves the ports through the portmapper, mounts the export
// and reads FSINFO of its root.
func openSession(o options) (*session, error) {
	s := &session{opts: o, cred: o.cred()}
	var err error
	if s.mountPort, err = getPort(o.Server, progMount, 3, s.cred, o.Timeout); err != nil {
		return nil, err
	}
	if s.nfsPort, err = getPort(o.Server, progNFS, 3, s.cred, o.Timeout); err != nil {
		return nil, err
	}
	if s.root, err = mount(o.Server, s.mountPort, o.Export, s.cred, o.Timeout); err != nil {
		return nil, err
	}
	c, err := s.dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.null(); err != nil {
		return nil, err
	}
	if s.info, err = c.fsinfo(s.root); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *session) dial() (*nfsConn, error) {
	return dialNFS(s.opts.Server, s.nfsPort, s.cred, s.opts.Timeout)
}

// close unmounts; a failure is reported on stderr but does not fail the
// measurement, which is complete by then.
func (s *session) close() {
	if err := unmount(s.opts.Server, s.mountPort, s.opts.Export, s.cred, s.opts.Timeout); err != nil {
		fmt.Fprintf(os.Stderr, "nfsbench: warning: %v\n", err)
	}
}

// parallel runs n workers and returns the first error; after an error the
// others see stop() true and should return.
func parallel(n int, worker func(id int, stop func() bool) error) error {
	var (
		wg      sync.WaitGroup
		once    sync.Once
		first   error
		stopped atomic.Bool
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			if err := worker(id, stopped.Load); err != nil {
				once.Do(func() { first = err })
				stopped.Store(true)
			}
		}(i)
	}
	wg.Wait()
	return first
}

// verfTracker checks that every WRITE and the COMMIT carry one verifier.
type verfTracker struct {
	mu   sync.Mutex
	set  bool
	verf [8]byte
}

func (t *verfTracker) check(v [8]byte, what string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.set {
		t.set, t.verf = true, v
		return nil
	}
	if v != t.verf {
		return fmt.Errorf("%s: write verifier changed from %x to %x during the run (server lost uncommitted data?)", what, t.verf, v)
	}
	return nil
}

type writeResult struct {
	Op            string  `json:"op"`
	Server        string  `json:"server"`
	File          string  `json:"file"`
	Bytes         uint64  `json:"bytes"`
	Chunk         uint64  `json:"chunk"`
	Depth         int     `json:"depth"`
	Seconds       float64 `json:"seconds"`
	CommitSeconds float64 `json:"commit_seconds"`
	MBs           float64 `json:"mbs"`
}

func runWrite(s *session, file string, size uint64) (writeResult, error) {
	chunk := min(s.opts.Chunk, uint64(s.info.WTMax))
	c, err := s.dial()
	if err != nil {
		return writeResult{}, err
	}
	defer c.Close()
	fh, err := c.create(s.root, file, createUnchecked)
	if err != nil {
		return writeResult{}, err
	}
	filler := newFiller()
	nchunks := (size + chunk - 1) / chunk
	var next atomic.Uint64
	var verf verfTracker
	start := time.Now()
	err = parallel(s.opts.Depth, func(_ int, stop func() bool) error {
		for !stop() {
			i := next.Add(1) - 1
			if i >= nchunks {
				return nil
			}
			off := i * chunk
			n := int(min(chunk, size-off))
			w, err := c.write(fh, off, n, stableUnstable, func(dst []byte) []byte {
				return appendPattern(dst, filler, off, n)
			})
			if err != nil {
				return err
			}
			if int(w.Count) != n {
				return fmt.Errorf("WRITE at offset %d: server wrote %d of %d bytes", off, w.Count, n)
			}
			if err := verf.check(w.Verf, "WRITE"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return writeResult{}, err
	}
	commitStart := time.Now()
	v, err := c.commit(fh)
	if err != nil {
		return writeResult{}, err
	}
	end := time.Now()
	if err := verf.check(v, "COMMIT"); err != nil {
		return writeResult{}, err
	}
	a, err := c.getattr(fh)
	if err != nil {
		return writeResult{}, err
	}
	if a.Size != size {
		return writeResult{}, fmt.Errorf("GETATTR after COMMIT: %s is %d bytes, wrote %d", file, a.Size, size)
	}
	secs := end.Sub(start).Seconds()
	return writeResult{
		Op: "write", Server: s.opts.Server, File: file, Bytes: size, Chunk: chunk, Depth: s.opts.Depth,
		Seconds: secs, CommitSeconds: end.Sub(commitStart).Seconds(), MBs: float64(size) / 1e6 / secs,
	}, nil
}

type readResult struct {
	Op      string  `json:"op"`
	Server  string  `json:"server"`
	File    string  `json:"file"`
	Bytes   uint64  `json:"bytes"`
	Chunk   uint64  `json:"chunk"`
	Depth   int     `json:"depth"`
	Verify  bool    `json:"verify"`
	Seconds float64 `json:"seconds"`
	MBs     float64 `json:"mbs"`
}

func runRead(s *session, file string, verify bool) (readResult, error) {
	chunk := min(s.opts.Chunk, uint64(s.info.RTMax))
	c, err := s.dial()
	if err != nil {
		return readResult{}, err
	}
	defer c.Close()
	fh, err := c.lookup(s.root, file)
	if err != nil {
		return readResult{}, err
	}
	a, err := c.getattr(fh)
	if err != nil {
		return readResult{}, err
	}
	size := a.Size
	if size == 0 {
		return readResult{}, fmt.Errorf("read: %s is empty; run write first", file)
	}
	filler := newFiller()
	nchunks := (size + chunk - 1) / chunk
	var next, total atomic.Uint64
	start := time.Now()
	err = parallel(s.opts.Depth, func(_ int, stop func() bool) error {
		var scratch []byte
		for !stop() {
			i := next.Add(1) - 1
			if i >= nchunks {
				return nil
			}
			pos := i * chunk
			end := min(pos+chunk, size)
			for pos < end {
				data, eof, err := c.read(fh, pos, uint32(end-pos))
				if err != nil {
					return err
				}
				if len(data) == 0 {
					return fmt.Errorf("READ at offset %d: no data (eof %v) in a file of %d bytes", pos, eof, size)
				}
				if eof && pos+uint64(len(data)) < size {
					return fmt.Errorf("READ at offset %d: eof after %d bytes in a file of %d bytes", pos, len(data), size)
				}
				if verify {
					if scratch, err = checkPattern(data, filler, scratch, pos); err != nil {
						return fmt.Errorf("READ %s: %w", file, err)
					}
				}
				pos += uint64(len(data))
				total.Add(uint64(len(data)))
			}
		}
		return nil
	})
	if err != nil {
		return readResult{}, err
	}
	secs := time.Since(start).Seconds()
	if total.Load() != size {
		return readResult{}, fmt.Errorf("read %d bytes of %s, size is %d", total.Load(), file, size)
	}
	return readResult{
		Op: "read", Server: s.opts.Server, File: file, Bytes: size, Chunk: chunk, Depth: s.opts.Depth,
		Verify: verify, Seconds: secs, MBs: float64(size) / 1e6 / secs,
	}, nil
}

type createResult struct {
	Op       string  `json:"op"`
	Server   string  `json:"server"`
	Dir      string  `json:"dir"`
	Files    int     `json:"files"`
	Conns    int     `json:"conns"`
	Depth    int     `json:"depth"`
	Seconds  float64 `json:"seconds"`
	CreatesS float64 `json:"creates_s"`
}

func createName(i uint64) string { return fmt.Sprintf("f%06d", i) }

func runCreate(s *session, dir string, count, conns int) (createResult, error) {
	c0, err := s.dial()
	if err != nil {
		return createResult{}, err
	}
	defer c0.Close()
	dirfh, err := c0.mkdir(s.root, dir)
	if err != nil {
		return createResult{}, err
	}
	cs := []*nfsConn{c0}
	for len(cs) < conns {
		c, err := s.dial()
		if err != nil {
			return createResult{}, err
		}
		defer c.Close()
		cs = append(cs, c)
	}
	var next atomic.Uint64
	start := time.Now()
	err = parallel(conns*s.opts.Depth, func(id int, stop func() bool) error {
		c := cs[id%conns]
		for !stop() {
			i := next.Add(1) - 1
			if i >= uint64(count) {
				return nil
			}
			if _, err := c.create(dirfh, createName(i), createGuarded); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return createResult{}, err
	}
	secs := time.Since(start).Seconds()
	for _, i := range []uint64{0, uint64(count) - 1} {
		fh, err := c0.lookup(dirfh, createName(i))
		if err != nil {
			return createResult{}, fmt.Errorf("check after create: %w", err)
		}
		if a, err := c0.getattr(fh); err != nil || a.Type != 1 || a.Size != 0 {
			return createResult{}, fmt.Errorf("check after create: %s: type %d size %d (want regular, empty): %v", createName(i), a.Type, a.Size, err)
		}
	}
	return createResult{
		Op: "create", Server: s.opts.Server, Dir: dir, Files: count, Conns: conns, Depth: s.opts.Depth,
		Seconds: secs, CreatesS: float64(count) / secs,
	}, nil
}
