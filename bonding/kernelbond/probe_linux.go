package kernelbond

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"ftnas/bonding/internal/nsexec"
	"ftnas/bonding/userland"
)

// prober is one NIC's ARP probe socket: AF_PACKET bound to the NIC for
// EtherType ARP, with replyFilter attached. A protocol-specific socket
// sees a slave's frames after tc ingress and after the bond's rx_handler
// (the kernel delivers them to the taps of the device they came in on),
// so it sees what the member really receives, in the bond or out of it;
// the probe goes out of this NIC only.
type prober struct {
	name     string
	conn     *packet.Conn
	want     atomic.Pointer[probe] // the last probe sent
	answered atomic.Bool           // its answer arrived since the last take
	closed   atomic.Bool
	done     chan struct{}
}

// openProber opens the probe socket on NIC index inside ns and starts its
// reader.
func openProber(ns netns.NsHandle, name string, index int, log *slog.Logger) (*prober, error) {
	filter, err := replyFilter()
	if err != nil {
		return nil, fmt.Errorf("kernelbond: probe socket on %s: assemble filter: %w", name, err)
	}
	var c *packet.Conn
	err = nsexec.Do(ns, func() error {
		var err error
		c, err = packet.Listen(&net.Interface{Index: index, Name: name}, packet.Raw, unix.ETH_P_ARP, &packet.Config{Filter: filter})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("kernelbond: probe socket on %s: %w", name, err)
	}
	p := &prober{name: name, conn: c, done: make(chan struct{})}
	go p.read(log)
	return p, nil
}

func (p *prober) read(log *slog.Logger) {
	defer close(p.done)
	buf := make([]byte, 256)
	for {
		n, _, err := p.conn.ReadFrom(buf)
		if err != nil {
			if p.closed.Load() {
				return
			}
			// The kernel reports ENETDOWN once when the NIC goes down
			// (enslaving, releasing) and rebinds when it comes up.
			if errors.Is(err, unix.ENETDOWN) {
				continue
			}
			log.Warn("kernelbond: probe socket: receive failed; no more probe answers through this NIC", "nic", p.name, "err", err)
			return
		}
		if w := p.want.Load(); w != nil && w.answeredBy(buf[:n]) {
			p.answered.Store(true)
		}
	}
}

// send sends pr out of the NIC; from now on its answer counts.
func (p *prober) send(pr probe) error {
	p.want.Store(&pr)
	if _, err := p.conn.WriteTo(pr.frame(), &packet.Addr{HardwareAddr: userland.Broadcast[:]}); err != nil {
		return fmt.Errorf("kernelbond: probe %v through %s: %w", pr.Target, p.name, err)
	}
	return nil
}

// take reports whether an answer arrived since the last take.
func (p *prober) take() bool { return p.answered.Swap(false) }

func (p *prober) close() {
	p.closed.Store(true)
	p.conn.Close()
	<-p.done
}
