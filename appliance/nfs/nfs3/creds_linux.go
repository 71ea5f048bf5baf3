package nfs3

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cred is the identity a request runs with, after squashing.
type cred struct {
	uid, gid uint32
	groups   []uint32
}

// nobody is the identity squashed callers get.
const nobody = 65534

func (c cred) isRoot() bool { return c.uid == 0 }

// inGroup reports whether gid is the caller's primary or a supplementary group.
func (c cred) inGroup(gid uint32) bool {
	if c.gid == gid {
		return true
	}
	for _, g := range c.groups {
		if g == gid {
			return true
		}
	}
	return false
}

// asCaller runs fn on a locked OS thread whose file-system identity is c, so
// the kernel checks permissions and new files belong to the caller. The
// setfsuid/setfsgid/setgroups calls are raw syscalls: they change this thread
// only (glibc and Go's syscall.Setgroups would change every thread).
func asCaller(c cred, fn func() error) error {
	if c.uid == 0 && c.gid == 0 {
		return fn()
	}
	runtime.LockOSThread()
	if err := setThreadCreds(c); err != nil {
		// Leave the thread locked: the runtime discards it when this
		// goroutine ends, rather than reusing a thread in an unknown state.
		resetThreadCreds()
		return fmt.Errorf("nfs3: switch to uid %d gid %d: %w", c.uid, c.gid, err)
	}
	err := fn()
	if rerr := resetThreadCreds(); rerr != nil {
		return err // thread stays locked and is discarded
	}
	runtime.UnlockOSThread()
	return err
}

func setThreadCreds(c cred) error {
	var gp unsafe.Pointer
	if len(c.groups) > 0 {
		gp = unsafe.Pointer(&c.groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(c.groups)), uintptr(gp), 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	unix.RawSyscall(unix.SYS_SETFSGID, uintptr(c.gid), 0, 0)
	unix.RawSyscall(unix.SYS_SETFSUID, uintptr(c.uid), 0, 0)
	// setfsuid reports the previous value, not errors: read it back.
	if got, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, ^uintptr(0), 0, 0); uint32(got) != c.uid {
		return fmt.Errorf("setfsuid(%d) did not take effect (have %d)", c.uid, got)
	}
	if got, _, _ := unix.RawSyscall(unix.SYS_SETFSGID, ^uintptr(0), 0, 0); uint32(got) != c.gid {
		return fmt.Errorf("setfsgid(%d) did not take effect (have %d)", c.gid, got)
	}
	return nil
}

func resetThreadCreds() error {
	unix.RawSyscall(unix.SYS_SETFSUID, 0, 0, 0)
	unix.RawSyscall(unix.SYS_SETFSGID, 0, 0, 0)
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return e
	}
	if got, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, ^uintptr(0), 0, 0); got != 0 {
		return fmt.Errorf("fsuid stuck at %d", got)
	}
	return nil
}
