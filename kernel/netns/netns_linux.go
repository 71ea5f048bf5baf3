package netns

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread switched into network namespace name and
// returns fn's error. The caller's goroutine and thread never change
// namespace: fn runs on a fresh goroutine locked to its thread, which is
// switched back afterwards (or, if that fails, discarded by the runtime).
// The empty name runs fn in the caller's namespace, still on its own
// locked thread.
func Do(name string, fn func() error) error {
	var target *os.File
	if name != "" {
		p, err := Path(name)
		if err != nil {
			return err
		}
		target, err = os.Open(p)
		if err != nil {
			return fmt.Errorf("netns: open namespace %s: %w", name, err)
		}
		defer target.Close()
		if err := checkNetNS(target); err != nil {
			return fmt.Errorf("netns: %s: %w", name, err)
		}
	}
	errc := make(chan error, 1)
	go func() {
		// Stays locked unless the thread is back in its own namespace: a
		// goroutine that exits locked takes its thread with it.
		runtime.LockOSThread()
		errc <- run(name, target, fn)
	}()
	return <-errc
}

// run executes on the locked thread.
func run(name string, target *os.File, fn func() error) (err error) {
	if target == nil {
		defer runtime.UnlockOSThread()
		return fn()
	}
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return fmt.Errorf("netns: open own namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("netns: enter %s: %w", name, err)
	}
	defer func() {
		if rerr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); rerr != nil {
			// Leave the thread locked: it dies with this goroutine.
			if err == nil {
				err = fmt.Errorf("netns: leave %s: %w", name, rerr)
			}
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// checkNetNS fails unless f is a network namespace file (an nsfs inode
// whose NS_GET_NSTYPE is CLONE_NEWNET), so a stray path is named rather
// than handed to setns.
func checkNetNS(f *os.File) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("statfs: %w", err)
	}
	if st.Type != unix.NSFS_MAGIC {
		return fmt.Errorf("%s is not a namespace file (a leftover of a failed `ip netns add`?)", f.Name())
	}
	return nil
}
