package qemu

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"ftnas/images/guest"
)

// VM is a running qemu.
type VM struct {
	cmd     *exec.Cmd
	stdin   interface{ Write([]byte) (int, error) }
	qmpPath string
	start   time.Time
	timer   *time.Timer

	mu      sync.Mutex
	out     []byte        // all console output
	cursor  int           // where the next Expect starts
	changed chan struct{} // closed and replaced on every output or exit
	stderr  bytes.Buffer
	line    []byte // partial console line for logf
	logf    func(format string, args ...any)

	done    chan struct{} // closed when qemu has exited and output is drained
	waitErr error
	killed  bool // by Kill or the timeout
	timeout bool
}

// Start starts qemu. logf, if not nil, gets every console line and
// qemu's stderr. The VM is killed after o.Timeout; call Kill to end it
// sooner.
func Start(o Options, logf func(format string, args ...any)) (*VM, error) {
	vm := &VM{changed: make(chan struct{}), done: make(chan struct{}), logf: logf}
	if o.QMP {
		dir, err := os.MkdirTemp("", "ftnas-qmp-")
		if err != nil {
			return nil, fmt.Errorf("qemu: start: %w", err)
		}
		vm.qmpPath = filepath.Join(dir, "qmp.sock")
	}
	args, err := Args(o, vm.qmpPath)
	if err != nil {
		vm.removeQMPDir()
		return nil, err
	}
	vm.cmd = exec.Command(o.binary(), args...)
	vm.cmd.Stdout = consoleWriter{vm}
	vm.cmd.Stderr = stderrWriter{vm}
	vm.cmd.SysProcAttr = sysProcAttr()
	stdin, err := vm.cmd.StdinPipe()
	if err != nil {
		vm.removeQMPDir()
		return nil, fmt.Errorf("qemu: start: %w", err)
	}
	vm.stdin = stdin
	vm.start = time.Now()
	if err := vm.cmd.Start(); err != nil {
		vm.removeQMPDir()
		return nil, fmt.Errorf("qemu: start %s: %w", o.binary(), err)
	}
	vm.timer = time.AfterFunc(o.timeout(), func() {
		vm.mu.Lock()
		vm.timeout = true
		vm.mu.Unlock()
		vm.Kill()
	})
	go func() {
		err := vm.cmd.Wait()
		vm.timer.Stop()
		vm.removeQMPDir()
		vm.mu.Lock()
		vm.flushLine()
		vm.waitErr = err
		vm.signal()
		vm.mu.Unlock()
		close(vm.done)
	}()
	return vm, nil
}

func (vm *VM) removeQMPDir() {
	if vm.qmpPath != "" {
		os.RemoveAll(filepath.Dir(vm.qmpPath))
	}
}

type consoleWriter struct{ vm *VM }

func (w consoleWriter) Write(p []byte) (int, error) {
	vm := w.vm
	vm.mu.Lock()
	defer vm.mu.Unlock()
	vm.out = append(vm.out, p...)
	if vm.logf != nil {
		for _, c := range p {
			switch c {
			case '\n':
				vm.flushLine()
			case '\r':
			default:
				vm.line = append(vm.line, c)
			}
		}
	}
	vm.signal()
	return len(p), nil
}

type stderrWriter struct{ vm *VM }

func (w stderrWriter) Write(p []byte) (int, error) {
	vm := w.vm
	vm.mu.Lock()
	defer vm.mu.Unlock()
	vm.stderr.Write(p)
	if vm.logf != nil {
		vm.logf("qemu stderr: %s", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// flushLine logs the partial console line; vm.mu is held.
func (vm *VM) flushLine() {
	if vm.logf != nil && len(vm.line) > 0 {
		vm.logf("console %6.2fs: %s", time.Since(vm.start).Seconds(), vm.line)
	}
	vm.line = vm.line[:0]
}

// signal wakes Expect; vm.mu is held.
func (vm *VM) signal() {
	close(vm.changed)
	vm.changed = make(chan struct{})
}

// Expect waits until the console output after the previous match matches
// re and returns the submatches; the next Expect starts after this match.
// While qemu runs, only complete lines are matched. It fails when qemu
// exits (or is killed at the timeout) first.
func (vm *VM) Expect(re *regexp.Regexp) ([]string, error) {
	for {
		vm.mu.Lock()
		tail := vm.out[vm.cursor:]
		select {
		case <-vm.done:
		default:
			// Only whole lines, so a pattern does not match a line
			// that is still arriving.
			tail = tail[:bytes.LastIndexByte(tail, '\n')+1]
		}
		loc := re.FindSubmatchIndex(tail)
		if loc != nil {
			m := make([]string, len(loc)/2)
			for i := range m {
				if loc[2*i] >= 0 {
					m[i] = string(tail[loc[2*i]:loc[2*i+1]])
				}
			}
			vm.cursor += loc[1]
			vm.mu.Unlock()
			return m, nil
		}
		ch := vm.changed
		vm.mu.Unlock()
		select {
		case <-ch:
		case <-vm.done:
			vm.mu.Lock()
			matched := re.Match(vm.out[vm.cursor:])
			vm.mu.Unlock()
			if !matched {
				return nil, fmt.Errorf("qemu: console never matched %q: %w", re, vm.exitError())
			}
		}
	}
}

// Result waits for the guest's result line: nil for PASS, an error with
// the guest's message for FAIL, or why no result came.
func (vm *VM) Result() error {
	m, err := vm.Expect(guest.ResultPattern)
	if err != nil {
		return err
	}
	if m[1] != "PASS" {
		return fmt.Errorf("qemu: guest failed: %s", m[2])
	}
	return nil
}

// exitError describes how qemu ended; it is called after done.
func (vm *VM) exitError() error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	msg := strings.TrimSpace(vm.stderr.String())
	switch {
	case vm.timeout:
		return fmt.Errorf("qemu killed at its timeout after %v", time.Since(vm.start).Round(time.Millisecond))
	case vm.killed:
		return errors.New("qemu was killed")
	case vm.waitErr != nil && msg != "":
		return fmt.Errorf("qemu exited: %v: %s", vm.waitErr, msg)
	case vm.waitErr != nil:
		return fmt.Errorf("qemu exited: %w", vm.waitErr)
	default:
		return errors.New("qemu exited")
	}
}

// Wait waits for qemu to exit. It returns nil when qemu exited by itself
// with status 0 (the guest powered off or rebooted under -no-reboot).
func (vm *VM) Wait() error {
	<-vm.done
	vm.mu.Lock()
	ok := vm.waitErr == nil && !vm.killed && !vm.timeout
	vm.mu.Unlock()
	if ok {
		return nil
	}
	return vm.exitError()
}

// Done is closed when qemu has exited.
func (vm *VM) Done() <-chan struct{} { return vm.done }

// Elapsed is the time since qemu started.
func (vm *VM) Elapsed() time.Duration { return time.Since(vm.start) }

// Console returns all console output so far.
func (vm *VM) Console() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return string(vm.out)
}

// WriteConsole sends s to the guest's serial console.
func (vm *VM) WriteConsole(s string) error {
	if _, err := vm.stdin.Write([]byte(s)); err != nil {
		return fmt.Errorf("qemu: write console: %w", err)
	}
	return nil
}

// Kill kills qemu and waits for it to exit. It is safe to call more than
// once and after qemu has exited.
func (vm *VM) Kill() {
	select {
	case <-vm.done:
		return
	default:
	}
	vm.mu.Lock()
	vm.killed = true
	vm.mu.Unlock()
	_ = vm.cmd.Process.Kill()
	<-vm.done
}
