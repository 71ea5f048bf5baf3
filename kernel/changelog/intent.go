package changelog

import (
	"fmt"
	"strconv"
	"strings"
)

// Open flags (asm-generic/fcntl.h, the same on amd64 and arm64).
const (
	oAccMode = 0o3
	oRdOnly  = 0o0
	oTrunc   = 0o1000
)

// syscallState is a task's /proc/<tid>/syscall: the system call it is
// blocked in and its arguments.
type syscallState struct {
	Nr   int64
	Args [6]uint64
}

// parseSyscall decodes /proc/<tid>/syscall ("nr a0 a1 a2 a3 a4 a5 sp pc").
// A task that is not in a system call reads "-1 sp pc" or "running": ok is
// false for those.
func parseSyscall(s string) (syscallState, bool, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return syscallState{}, false, fmt.Errorf("changelog: parse /proc syscall: empty")
	}
	if f[0] == "running" || f[0] == "-1" {
		return syscallState{}, false, nil
	}
	if len(f) < 7 {
		return syscallState{}, false, fmt.Errorf("changelog: parse /proc syscall %q: %d fields, want at least 7", s, len(f))
	}
	var st syscallState
	nr, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return syscallState{}, false, fmt.Errorf("changelog: parse /proc syscall %q: number: %w", s, err)
	}
	st.Nr = nr
	for i := range st.Args {
		v, err := strconv.ParseUint(strings.TrimPrefix(f[i+1], "0x"), 16, 64)
		if err != nil {
			return syscallState{}, false, fmt.Errorf("changelog: parse /proc syscall %q: argument %d: %w", s, i, err)
		}
		st.Args[i] = v
	}
	return st, true, nil
}

// openSyscalls are the numbers of the calls that open files and where their
// flags are, for the running architecture.
type openSyscalls struct {
	flagsArg map[int64]int  // call → index of its flags argument
	creat    int64          // creat(2), always for writing; -1 if the architecture has none
	openat2  int64          // openat2(2): flags are the first field of struct open_how at Args[2]
	readOnly map[int64]bool // calls that open only to read (execve, execveat)
}

// writeIntent reports whether the open the task is blocked in may write the
// file (opened for writing, or truncating). known is false if the task is
// not in an open call this knows (io_uring workers, kernel threads, another
// ABI), so the caller can be conservative. readHow reads the flags of an
// openat2 call from the task's memory at addr.
func (o openSyscalls) writeIntent(st syscallState, readHow func(addr uint64) (uint64, error)) (write, known bool) {
	var flags uint64
	switch {
	case st.Nr == o.creat:
		return true, true
	case o.readOnly[st.Nr]:
		return false, true
	case st.Nr == o.openat2:
		v, err := readHow(st.Args[2])
		if err != nil {
			return false, false
		}
		flags = v
	default:
		i, ok := o.flagsArg[st.Nr]
		if !ok {
			return false, false
		}
		flags = st.Args[i]
	}
	return flags&oAccMode != oRdOnly || flags&oTrunc != 0, true
}
