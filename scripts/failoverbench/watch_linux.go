//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// watch prints "UNIX_NS MEMBER add|del" whenever vip is added to or
// removed from any interface in a member's namespace, starting with the
// addresses present when it subscribed, and "# ready" once every
// subscription is in place. It runs until ctx ends.
//
// Each member has its own netlink socket and goroutine; a line is stamped
// when its goroutine reads the event, so events of different members may
// be stamped out of order by a scheduling delay (a few ms on a loaded
// machine). The report allows for that with its overlap tolerance.
// Write errors end the watch.
func watch(ctx context.Context, vipText string, members []member, w io.Writer) error {
	vip, err := netip.ParseAddr(vipText)
	if err != nil || !vip.Is4() {
		return fmt.Errorf("watch: --vip %q: want an IPv4 address", vipText)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	emit := func(line string) error {
		mu.Lock()
		defer mu.Unlock()
		_, err := io.WriteString(w, line)
		return err
	}
	errs := make(chan error, len(members)*2)
	type sub struct {
		m  member
		ch chan netlink.AddrUpdate
	}
	var subs []sub
	for _, m := range members {
		h, err := netns.GetFromName(m.NetNS)
		if err != nil {
			return fmt.Errorf("watch: %s: open network namespace %s: %w", m.Name, m.NetNS, err)
		}
		ch := make(chan netlink.AddrUpdate, 256)
		err = netlink.AddrSubscribeWithOptions(ch, ctx.Done(), netlink.AddrSubscribeOptions{
			Namespace:    &h,
			ListExisting: true,
			ErrorCallback: func(err error) {
				select {
				case errs <- fmt.Errorf("watch: %s: netlink: %w", m.Name, err):
				default:
				}
			},
		})
		h.Close() // the subscription's socket keeps the namespace
		if err != nil {
			return fmt.Errorf("watch: %s: subscribe to address changes in %s: %w", m.Name, m.NetNS, err)
		}
		subs = append(subs, sub{m, ch})
	}
	for _, s := range subs {
		go func() {
			for u := range s.ch {
				at := time.Now().UnixNano()
				ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
				if !ok || ip.Unmap() != vip {
					continue
				}
				verb := "del"
				if u.NewAddr {
					verb = "add"
				}
				if err := emit(fmt.Sprintf("%d %s %s\n", at, s.m.Name, verb)); err != nil {
					select {
					case errs <- fmt.Errorf("watch: write: %w", err):
					default:
					}
					return
				}
			}
		}()
	}
	err = emit("# ready\n")
	if err == nil {
		select {
		case <-ctx.Done():
		case err = <-errs:
		}
	}
	// The subscriptions end with ctx. Their goroutines are not waited
	// for: a netlink read blocked in the kernel is not woken by the close,
	// and the process is about to exit.
	return err
}
