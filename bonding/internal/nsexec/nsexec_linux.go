package nsexec

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn on a fresh OS thread switched into network namespace ns and
// waits for it. Sockets, TAP devices and BPF links fn creates belong to ns
// and stay there; the goroutines that later use them may run anywhere. The
// thread is never switched back: it stays locked and is discarded when the
// goroutine ends, so no other goroutine can ever run in ns by accident. fn
// must not start goroutines that expect to be in ns.
func Do(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter network namespace %v: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
