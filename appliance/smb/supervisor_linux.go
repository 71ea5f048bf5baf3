//go:build linux

package smb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// runState is the Supervisor's view of Run (guarded by Supervisor.mu).
type runState struct {
	child  *child // current smbd, nil when none
	active bool   // Run in progress
}

// child is one smbd process. Its pid is also its process group and
// session id (Setsid). A goroutine owns the process: it waits for the exit
// without reaping, kills what is left of the group and of this config's
// helpers, and only then reaps, so the pid cannot be reused while anyone
// may still signal it.
type child struct {
	pid  int
	done chan struct{} // closed once smbd is reaped and cleaned up
	err  error         // exit status, valid after done

	mu     sync.Mutex
	reaped bool // set (under mu) just before reaping; no signals after
}

// signal sends sig to smbd's main process, if it has not been reaped.
func (c *child) signal(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reaped {
		return os.ErrProcessDone
	}
	return unix.Kill(c.pid, sig)
}

// killGroup sends SIGKILL to smbd's whole process group.
func (c *child) killGroup() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.reaped {
		_ = unix.Kill(-c.pid, unix.SIGKILL)
	}
}

// Run supervises smbd until ctx is cancelled. It first stops a stale smbd
// left by an earlier nasd with the same config, then starts smbd in its
// own session and restarts it with exponential back-off whenever it exits.
// On return no smbd (nor helper) using this config is left running. It
// returns nil after ctx is cancelled, or an error if it cannot start
// supervising at all.
func (s *Supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.run.active {
		s.mu.Unlock()
		return errors.New("smb: supervisor: Run is already active")
	}
	s.run.active = true
	s.state = State{Phase: PhaseStarting, Since: s.cfg.Clock.Now()}
	s.mu.Unlock()
	log := s.cfg.Log

	var cur *child
	defer func() {
		// Every exit path, panics included: stop smbd, then sweep.
		if cur != nil {
			s.stopChild(cur)
		}
		if err := s.sweep(); err != nil {
			log.Error("smb: sweep smbd processes at exit", "err", err)
		}
		s.mu.Lock()
		s.run.active = false
		s.run.child = nil
		s.state.Phase = PhaseStopped
		s.state.PID = 0
		s.state.Since = s.cfg.Clock.Now()
		s.mu.Unlock()
	}()

	if !filepath.IsAbs(s.cfg.ConfPath) {
		// smbd hands the path to samba-dcerpcd, which runs elsewhere.
		return fmt.Errorf("smb: supervisor: config path %q is not absolute", s.cfg.ConfPath)
	}
	if err := s.stopStale(); err != nil {
		return fmt.Errorf("smb: supervisor: stop stale smbd: %w", err)
	}

	backoff := s.cfg.MinBackoff
	for first := true; ; first = false {
		if ctx.Err() != nil {
			return nil
		}
		if !first {
			s.mu.Lock()
			s.state.Restarts++
			s.mu.Unlock()
		}
		if !s.waitReady(ctx) {
			return nil
		}
		s.setPhase(PhaseStarting, 0)
		c, err := s.spawn()
		if err != nil {
			err = fmt.Errorf("smb: start smbd: %w", err)
			log.Error("smb: smbd did not start", "err", err, "retry_in", backoff)
			s.setError(err)
		} else {
			cur = c
			s.mu.Lock()
			s.run.child = c
			s.mu.Unlock()
			s.setPhase(PhaseRunning, c.pid)
			select { // a Kick before this start is spent
			case <-s.kick:
			default:
			}
			log.Info("smb: smbd started", "pid", c.pid, "conf", s.cfg.ConfPath)
			started := s.cfg.Clock.Now()
			select {
			case <-ctx.Done():
				return nil // the deferred stop handles cur
			case <-c.done:
			}
			up := s.cfg.Clock.Now().Sub(started)
			cur = nil
			s.mu.Lock()
			s.run.child = nil
			s.mu.Unlock()
			if up >= s.cfg.StableAfter {
				backoff = s.cfg.MinBackoff
			}
			err := fmt.Errorf("smb: smbd (pid %d) exited after %s: %v", c.pid, up.Round(time.Millisecond), exitText(c.err))
			log.Warn("smb: smbd exited; restarting", "pid", c.pid, "err", err, "retry_in", backoff)
			s.setError(err)
		}
		s.setPhase(PhaseBackoff, 0)
		select {
		case <-ctx.Done():
			return nil
		case <-s.cfg.Clock.After(backoff):
		case <-s.kick:
			log.Info("smb: back-off cut short by Kick")
		}
		backoff = nextBackoff(backoff, s.cfg.MaxBackoff)
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Reload makes the running smbd re-read its config (smbcontrol
// reload-config, which smbd forwards to every client process; SIGHUP to
// the main process if smbcontrol fails).
func (s *Supervisor) Reload(ctx context.Context) error {
	s.mu.Lock()
	c := s.run.child
	s.mu.Unlock()
	if c == nil {
		return errors.New("smb: reload: smbd is not running")
	}
	// smbcontrol fails while a just-started smbd has not set up its
	// messaging yet; SIGHUP then would kill it (its handler is not installed
	// either). So retry smbcontrol for a while before falling back.
	var cerr error
	deadline := time.Now().Add(reloadRetryFor)
	for {
		cmd := exec.CommandContext(ctx, s.cfg.SmbcontrolPath, "-s", s.cfg.ConfPath, strconv.Itoa(c.pid), "reload-config")
		out, err := cmd.CombinedOutput()
		if err == nil {
			s.cfg.Log.Info("smb: smbd reloaded config", "pid", c.pid)
			return nil
		}
		cerr = fmt.Errorf("smbcontrol: %w: %s", err, strings.TrimSpace(string(out)))
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("smb: reload smbd (pid %d): %w", c.pid, ctx.Err())
		case <-c.done:
			// It exited; its successor reads the new config at start.
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	if serr := c.signal(unix.SIGHUP); serr != nil {
		return fmt.Errorf("smb: reload smbd (pid %d): %w; SIGHUP: %v", c.pid, cerr, serr)
	}
	s.cfg.Log.Warn("smb: smbcontrol reload failed; sent SIGHUP", "pid", c.pid, "err", cerr)
	return nil
}

// reloadRetryFor is how long Reload retries smbcontrol.
const reloadRetryFor = 3 * time.Second

// spawn starts smbd. The goroutine that forks keeps its OS thread locked
// until smbd is reaped, because Pdeathsig fires when the forking thread
// (not process) exits.
func (s *Supervisor) spawn() (*child, error) {
	c := &child{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		r, w, err := os.Pipe()
		if err != nil {
			started <- fmt.Errorf("pipe: %w", err)
			return
		}
		cmd := exec.Command(s.cfg.SmbdPath, smbdArgs(s.cfg.ConfPath)...)
		cmd.Dir = "/"
		cmd.Stdout = w
		cmd.Stderr = w
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM}
		err = cmd.Start()
		w.Close()
		if err != nil {
			r.Close()
			started <- err
			return
		}
		c.pid = cmd.Process.Pid
		logDone := make(chan struct{})
		go func() {
			defer close(logDone)
			pipeLog(r, s.cfg.Log, c.pid)
		}()
		started <- nil

		// Wait for the exit but leave the zombie, so pid/pgid stay ours.
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, c.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				break
			}
		}
		c.mu.Lock()
		_ = unix.Kill(-c.pid, unix.SIGKILL) // client processes left behind
		c.reaped = true
		c.mu.Unlock()
		c.err = cmd.Wait()
		if err := s.sweep(); err != nil {
			s.cfg.Log.Error("smb: sweep after smbd exit", "err", err)
		}
		// Helpers outside the group may hold the pipe; don't hang on them.
		select {
		case <-logDone:
		case <-time.After(2 * time.Second):
			r.Close()
			<-logDone
		}
		r.Close()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

// stopChild asks smbd to stop (SIGTERM), kills its group after StopGrace,
// and waits until it is reaped and swept.
func (s *Supervisor) stopChild(c *child) {
	_ = c.signal(unix.SIGTERM)
	t := time.NewTimer(s.cfg.StopGrace)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		s.cfg.Log.Warn("smb: smbd ignored SIGTERM; killing", "pid", c.pid, "grace", s.cfg.StopGrace)
		c.killGroup()
		<-c.done
	}
	s.cfg.Log.Info("smb: smbd stopped", "pid", c.pid)
}

// stopStale stops an smbd left running by an earlier nasd: the pid in the
// pid file, if /proc says it is smbd with this config, gets SIGTERM then
// SIGKILL; then any remaining process of this config is killed.
func (s *Supervisor) stopStale() error {
	data, err := os.ReadFile(s.cfg.ConfPath)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if dir, ok := confValue(data, "pid directory"); ok && dir != "" {
		pidFile := filepath.Join(dir, "smbd.pid")
		if pid, err := readPidFile(pidFile); err == nil && pid > 0 && pid != os.Getpid() {
			if s.matches(pid) {
				s.cfg.Log.Warn("smb: stopping stale smbd", "pid", pid, "pid_file", pidFile)
				if err := s.terminate(pid); err != nil {
					return err
				}
			}
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			s.cfg.Log.Warn("smb: unreadable smbd pid file", "pid_file", pidFile, "err", err)
		}
	}
	return s.sweep()
}

// terminate sends SIGTERM to pid (an smbd not ours), waits up to
// StopGrace, then SIGKILLs it; sweep deals with the rest of its processes.
// A pidfd makes sure a reused pid is never signalled.
func (s *Supervisor) terminate(pid int) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if err == unix.ESRCH {
			return nil
		}
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	if !s.matches(pid) { // recheck: the pidfd now pins this process
		return nil
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0); err != nil && err != unix.ESRCH {
		return fmt.Errorf("signal stale smbd %d: %w", pid, err)
	}
	if waitPidfds([]int{fd}, s.cfg.StopGrace) {
		return nil
	}
	s.cfg.Log.Warn("smb: stale smbd ignored SIGTERM; killing", "pid", pid)
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && err != unix.ESRCH {
		return fmt.Errorf("kill stale smbd %d: %w", pid, err)
	}
	if !waitPidfds([]int{fd}, s.cfg.StopGrace) {
		return fmt.Errorf("stale smbd %d survived SIGKILL", pid)
	}
	return nil
}

// sweep SIGKILLs every process that is smbd (or one of its helpers) using
// this config and waits until they have exited.
func (s *Supervisor) sweep() error {
	pids, err := s.findProcs()
	if err != nil {
		return err
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone already
		}
		if !s.matches(pid) {
			unix.Close(fd)
			continue
		}
		fds = append(fds, fd)
		s.cfg.Log.Info("smb: killing leftover Samba process", "pid", pid, "cmd", procName(pid))
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	}
	if !waitPidfds(fds, s.cfg.StopGrace) {
		return fmt.Errorf("smb: Samba processes for %s survived SIGKILL", s.cfg.ConfPath)
	}
	return nil
}

// findProcs lists the pids whose command line is a Samba server using this
// config. Zombies have an empty cmdline and never match.
func (s *Supervisor) findProcs() ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("smb: scan /proc: %w", err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if s.matches(pid) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// matches reports whether pid runs a Samba server with this config.
func (s *Supervisor) matches(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	argv := splitCmdline(b)
	if len(argv) == 0 || !isSambaServer(argv[0], s.cfg.SmbdPath) {
		return false
	}
	cwd, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	return usesConf(argv[1:], cwd, s.cfg.ConfPath)
}

// procName is argv[0] of pid, for logs.
func procName(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if argv := splitCmdline(b); len(argv) > 0 {
		return filepath.Base(argv[0])
	}
	return "?"
}

// waitPidfds waits until every pidfd is readable (its process exited) or
// the timeout passes; it reports whether all exited.
func waitPidfds(fds []int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for _, fd := range fds {
		for {
			left := time.Until(deadline)
			if left < 0 {
				left = 0
			}
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(pfd, int(left.Milliseconds()))
			if err == unix.EINTR {
				continue
			}
			if err != nil || n == 0 {
				return false
			}
			break
		}
	}
	return true
}

// readPidFile reads a pid file.
func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		return 0, fmt.Errorf("pid file %s: %w", path, err)
	}
	return pid, nil
}
