package changelog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Gate holds writers of a volume back while the journal cannot take more:
// a second fanotify group (content class: permission events, which FID
// groups cannot have). While it is held, the group's mark on the
// filesystem asks before every open, and an open that may write (opened
// for writing, or truncating) waits until Release — or MaxHold, whichever
// is first; the gate never denies anything. While the gate is open the
// mark is removed, so opens cost nothing: no permission event, no round
// trip through this process.
type Gate struct {
	volume  string
	file    *os.File
	volFD   int // the volume's directory, to mark and unmark its filesystem
	log     *slog.Logger
	ignore  func(pid int) bool
	onHold  func(Held)
	maxHold time.Duration
	maxHeld int
	self    int
	opens   openSyscalls
	done    chan struct{}

	mu      sync.Mutex
	holding bool
	marked  bool // the permission mark is on the filesystem
	closed  bool
	held    []heldOpen
	timer   *time.Timer
}

type heldOpen struct {
	fd       int32
	deadline time.Time
}

// OpenGate creates the permission group and starts answering. It checks
// that the volume's filesystem can be marked (marking it, then removing the
// mark): the mark is only on while the gate is held. While it is on, every
// open on the filesystem waits for this process's answer, so the answering
// goroutine starts before OpenGate returns. It needs CAP_SYS_ADMIN.
func OpenGate(o GateOptions) (*Gate, error) {
	if o.Volume == "" {
		return nil, errors.New("changelog: gate: no volume")
	}
	if err := checkVolume(o.Volume); err != nil {
		return nil, fmt.Errorf("changelog: gate: volume %s: %w", o.Volume, err)
	}
	g := &Gate{
		volume:  o.Volume,
		log:     o.Log,
		ignore:  o.Ignore,
		onHold:  o.OnHold,
		maxHold: o.MaxHold,
		maxHeld: o.MaxHeld,
		self:    os.Getpid(),
		done:    make(chan struct{}),
		opens: openSyscalls{
			flagsArg: map[int64]int{unix.SYS_OPENAT: 2, unix.SYS_OPEN_BY_HANDLE_AT: 2},
			creat:    -1,
			openat2:  unix.SYS_OPENAT2,
			readOnly: map[int64]bool{unix.SYS_EXECVE: true, unix.SYS_EXECVEAT: true},
		},
	}
	legacyOpens(&g.opens)
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.maxHold <= 0 {
		g.maxHold = 30 * time.Second
	}
	if g.maxHeld <= 0 {
		g.maxHeld = 1024
	}
	// Opened before anything is marked: while the mark is on, an open by
	// this process waits for an answer too.
	var err error
	g.volFD, err = unix.Open(o.Volume, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("changelog: gate: open volume %s: %w", o.Volume, err)
	}
	f, err := openGroup(gateInitFlags, gateEventFlags, o.Volume, unix.FAN_OPEN_PERM)
	if err != nil {
		unix.Close(g.volFD)
		return nil, fmt.Errorf("changelog: gate: %w", err)
	}
	g.file, g.marked = f, true
	if err := g.markLocked(false); err != nil {
		unix.Close(g.volFD)
		f.Close()
		return nil, fmt.Errorf("changelog: gate: volume %s: %w", o.Volume, err)
	}
	go g.serve()
	return g, nil
}

// markLocked puts the permission mark on the volume's filesystem (on) or
// takes it off. Opens already waiting for an answer stay in the group's
// queue and are answered as ever.
func (g *Gate) markLocked(on bool) error {
	if g.marked == on {
		return nil
	}
	op := uint(unix.FAN_MARK_REMOVE)
	if on {
		op = unix.FAN_MARK_ADD
	}
	rc, err := g.file.SyscallConn()
	if err != nil {
		return err
	}
	var merr error
	if err := rc.Control(func(fd uintptr) {
		merr = unix.FanotifyMark(int(fd), op|unix.FAN_MARK_FILESYSTEM, unix.FAN_OPEN_PERM, g.volFD, "")
	}); err != nil {
		return err
	}
	if merr != nil {
		return fmt.Errorf("fanotify_mark(%#x FAN_MARK_FILESYSTEM, FAN_OPEN_PERM): %w", op, merr)
	}
	g.marked = on
	return nil
}

// Hold starts holding writers' opens.
func (g *Gate) Hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.holding && !g.closed {
		if err := g.markLocked(true); err != nil {
			// Not held: the writers reach the filter's bounded queue,
			// whose overflow is answered by a rescan.
			g.log.Error("changelog: gate cannot hold writers", "volume", g.volume, "err", err)
			return
		}
		g.holding = true
		g.log.Info("changelog: gate holding writers", "volume", g.volume)
	}
}

// Release lets every held open through and stops holding.
func (g *Gate) Release() {
	g.mu.Lock()
	was := g.holding
	g.holding = false
	held := g.takeLocked(time.Time{})
	if !g.closed {
		if err := g.markLocked(false); err != nil {
			// Still marked: opens are asked about, and allowed at once.
			g.log.Warn("changelog: gate: remove the permission mark", "volume", g.volume, "err", err)
		}
	}
	g.mu.Unlock()
	g.allow(held)
	if was {
		g.log.Info("changelog: gate released writers", "volume", g.volume, "released", len(held))
	}
}

// Holding reports whether the gate is holding writers.
func (g *Gate) Holding() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.holding
}

// Held is the number of opens being held.
func (g *Gate) Held() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.held)
}

// Close lets every held open through and removes the gate. (Were the
// process to die instead, the kernel would allow them itself.)
func (g *Gate) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed, g.holding = true, false
	held := g.takeLocked(time.Time{})
	g.mu.Unlock()
	g.allow(held)
	err := g.file.Close()
	<-g.done
	unix.Close(g.volFD)
	if err != nil {
		return fmt.Errorf("changelog: gate: close fanotify group of %s: %w", g.volume, err)
	}
	return nil
}

// takeLocked removes and returns the held opens whose deadline is not after
// by (all of them for the zero time), and re-arms the timer for the rest.
func (g *Gate) takeLocked(by time.Time) []heldOpen {
	var out, keep []heldOpen
	for _, h := range g.held {
		if by.IsZero() || !h.deadline.After(by) {
			out = append(out, h)
		} else {
			keep = append(keep, h)
		}
	}
	g.held = keep
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	if len(keep) > 0 {
		g.timer = time.AfterFunc(time.Until(keep[0].deadline), g.expire)
	}
	return out
}

// expire lets through the opens held for MaxHold.
func (g *Gate) expire() {
	g.mu.Lock()
	late := g.takeLocked(time.Now())
	g.mu.Unlock()
	if len(late) > 0 {
		g.log.Warn("changelog: gate held writers past the limit; letting them through", "volume", g.volume, "opens", len(late), "max_hold", g.maxHold)
	}
	g.allow(late)
}

// allow answers held opens with FAN_ALLOW.
func (g *Gate) allow(hs []heldOpen) {
	for _, h := range hs {
		g.answer(h.fd)
	}
}

// answer allows one open and releases its descriptor.
func (g *Gate) answer(fd int32) {
	if err := respond(g.file, fd, true); err != nil && !errors.Is(err, os.ErrClosed) {
		g.log.Error("changelog: gate: answer permission event", "err", err)
	}
	unix.Close(int(fd))
}

// serve reads permission events until the group is closed.
func (g *Gate) serve() {
	defer close(g.done)
	buf := make([]byte, 16<<10)
	for {
		n, err := g.file.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			g.log.Error("changelog: gate: read permission events", "volume", g.volume, "err", err)
			return // closing the group (Close, or exit) allows whatever is pending
		}
		evs, err := Parse(buf[:n])
		if err != nil {
			g.log.Error("changelog: gate: bad permission event", "err", err)
		}
		for _, ev := range evs {
			g.decide(ev)
		}
	}
}

// decide answers one permission event now, or holds it.
func (g *Gate) decide(ev Event) {
	if ev.FD < 0 {
		return // nothing to answer
	}
	g.mu.Lock()
	holding := g.holding
	g.mu.Unlock()
	if !holding || !g.mayHold(int(ev.Pid)) {
		g.answer(ev.FD)
		return
	}
	p, _, _ := fdPath(int(ev.FD))
	g.mu.Lock()
	if !g.holding || g.closed {
		g.mu.Unlock()
		g.answer(ev.FD)
		return
	}
	if len(g.held) >= g.maxHeld {
		g.mu.Unlock()
		g.log.Warn("changelog: gate full; letting a writer through", "volume", g.volume, "path", p, "held", g.maxHeld)
		g.answer(ev.FD)
		return
	}
	g.held = append(g.held, heldOpen{fd: ev.FD, deadline: time.Now().Add(g.maxHold)})
	if g.timer == nil {
		g.timer = time.AfterFunc(g.maxHold, g.expire)
	}
	g.mu.Unlock()
	if g.onHold != nil {
		g.onHold(Held{Pid: tgidOf(int(ev.Pid)), Tid: int(ev.Pid), Path: p})
	}
}

// mayHold reports whether the open by thread tid is one to hold: not by this
// process or an ignored one, and possibly for writing. An open whose intent
// cannot be read is held (it is let through at MaxHold at the latest).
func (g *Gate) mayHold(tid int) bool {
	if tid <= 0 {
		return true // a task outside this PID namespace: nothing to inspect
	}
	pid := tgidOf(tid)
	if pid == g.self {
		return false // this process must never wait on itself
	}
	if pid != 0 && g.ignore != nil && g.ignore(pid) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/syscall")
	if err != nil {
		return true
	}
	st, ok, err := parseSyscall(string(b))
	if err != nil || !ok {
		return true
	}
	write, known := g.opens.writeIntent(st, func(addr uint64) (uint64, error) { return readWord(tid, addr) })
	return write || !known
}

// tgidOf is the process of thread tid (0 if it cannot be read).
func tgidOf(tid int) int {
	if tid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return 0
	}
	_, rest, ok := bytes.Cut(b, []byte("\nTgid:"))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	pid, err := strconv.Atoi(string(bytes.TrimSpace(line)))
	if err != nil {
		return 0
	}
	return pid
}

// readWord reads 8 bytes at addr in the memory of task tid.
func readWord(tid int, addr uint64) (uint64, error) {
	var b [8]byte
	local := []unix.Iovec{{Base: &b[0], Len: 8}}
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: 8}}
	n, err := unix.ProcessVMReadv(tid, local, remote, 0)
	if err != nil {
		return 0, err
	}
	if n != 8 {
		return 0, fmt.Errorf("short read of %d bytes", n)
	}
	return binary.NativeEndian.Uint64(b[:]), nil
}
