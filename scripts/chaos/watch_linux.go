//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"ftnas/appliance/api"
)

// watchNode is what the watcher needs of one node.
type watchNode struct {
	name    string
	api     *api.Client
	nl      *netlink.Handle
	pidfile string
}

// watcher samples every node's cluster status, VIP and nasd process
// every period until stopped.
type watcher struct {
	nodes  []watchNode
	vip    net.IP
	period time.Duration

	mu      sync.Mutex
	samples []Sample
}

func newWatcher(l *labInfo, period time.Duration) (*watcher, error) {
	w := &watcher{vip: net.ParseIP(l.VIP), period: period}
	for _, n := range l.Nodes {
		h, err := netns.GetFromName(n.NS)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("watcher: %s: open namespace %s: %w", n.Name, n.NS, err)
		}
		nl, err := netlink.NewHandleAt(h)
		h.Close()
		if err != nil {
			w.close()
			return nil, fmt.Errorf("watcher: %s: netlink in %s: %w", n.Name, n.NS, err)
		}
		w.nodes = append(w.nodes, watchNode{name: n.Name, api: api.NewClient(n.API), nl: nl, pidfile: l.pidfile(n.Name)})
	}
	return w, nil
}

func (w *watcher) close() {
	for _, n := range w.nodes {
		n.nl.Close()
		n.api.Close()
	}
}

// run samples until ctx ends.
func (w *watcher) run(ctx context.Context) {
	t := time.NewTicker(w.period)
	defer t.Stop()
	for {
		s := w.sample(ctx)
		w.mu.Lock()
		w.samples = append(w.samples, s)
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// take returns the samples so far and forgets them.
func (w *watcher) take() []Sample {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.samples
	w.samples = nil
	return s
}

// servingNode names the node the latest sample that saw one serving
// found serving (a frozen or busy node may not answer every sample);
// n1 when none was seen.
func (w *watcher) servingNode() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.samples) - 1; i >= 0; i-- {
		for _, n := range w.samples[i].Nodes {
			if n.Up && n.Serving {
				return n.Name
			}
		}
	}
	return "n1"
}

func (w *watcher) sample(ctx context.Context) Sample {
	s := Sample{T: time.Now().UnixNano(), Nodes: make([]NodeSample, len(w.nodes))}
	var wg sync.WaitGroup
	for i, n := range w.nodes {
		wg.Go(func() {
			x := NodeSample{Name: n.name}
			x.Running, x.Frozen = procState(n.pidfile)
			if addrs, err := n.nl.AddrList(nil, netlink.FAMILY_V4); err == nil {
				for _, a := range addrs {
					if a.IP.Equal(w.vip) {
						x.VIP = true
					}
				}
			}
			if x.Running {
				c, cancel := context.WithTimeout(ctx, 3*w.period)
				st, err := n.api.ClusterStatus(c)
				cancel()
				if err == nil {
					x.Up, x.State, x.Serving, x.Epoch = true, st.State, st.Serving, st.Epoch
				}
			}
			s.Nodes[i] = x
		})
	}
	wg.Wait()
	return s
}

// procState reads the lab's pid file of a node's nasd: running (and not
// stopped) and frozen (SIGSTOP).
func procState(pidfile string) (running, frozen bool) {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return false, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false, false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false, false
	}
	s := string(st)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false, false
	}
	switch s[i+2] {
	case 'T', 't':
		return false, true
	case 'Z', 'X':
		return false, false
	}
	return true, false
}
