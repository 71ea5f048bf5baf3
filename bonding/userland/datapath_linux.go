package userland

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"ftnas/bonding"
	"ftnas/bonding/internal/links"
	"ftnas/bonding/internal/nsexec"
)

// Datapath is the userland bond: a TAP device carrying the bond's identity
// and an AF_PACKET socket on every member. It implements bonding.Datapath.
type Datapath struct {
	opts Options
	log  *slog.Logger
	ns   netns.NsHandle
	nl   *netlink.Handle

	links links.Handle

	mu     sync.Mutex // control path: ports, tap
	ports  map[string]*port
	tap    *tapDev
	active atomic.Pointer[[]*port]
	id     atomic.Pointer[identity]
	cur    atomic.Pointer[tapDev] // for the receive goroutines

	carrier   chan bonding.Carrier
	emitMu    sync.Mutex
	lastUp    map[string]bool // last carrier state reported, by NIC
	closed    chan struct{}
	closeOnce sync.Once
	watchDone chan struct{}

	noMember atomic.Uint64 // frames from the TAP dropped: no healthy member
}

var _ bonding.Datapath = (*Datapath)(nil)

// Options configure a Datapath.
type Options struct {
	// Namespace is the path of the network namespace the NICs live in (for
	// example /run/netns/NAME); empty means the one New is called in.
	Namespace string
	// BondName is the TAP device's name; default "bond0".
	BondName string
	// Batch is how many frames one system call moves; default 64.
	Batch int
	// CarrierPoll is how often the members' carrier is read from their
	// drivers; default 10ms.
	CarrierPoll time.Duration
	Logger      *slog.Logger
}

// tapDev is the bond interface and its reader.
type tapDev struct {
	f     *os.File
	rc    syscall.RawConn
	index int
	bufs  [][]byte
	lens  []int
	n     int
	err   error
	// members is the member set spread is counting for.
	members *[]*port
	spread  spreader
	done    chan struct{}
	closed  atomic.Bool
}

func (t *tapDev) close() {
	t.closed.Store(true)
	t.f.Close() // the TAP device and its addresses go away
	<-t.done
}

// New opens the datapath: a netlink handle and a carrier watch in the
// namespace. Nothing on the NICs changes until the controller says so.
func New(opts Options) (*Datapath, error) {
	if opts.BondName == "" {
		opts.BondName = "bond0"
	}
	if opts.Batch <= 0 {
		opts.Batch = 64
	}
	if opts.CarrierPoll <= 0 {
		opts.CarrierPoll = 10 * time.Millisecond
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var ns netns.NsHandle
	var err error
	if opts.Namespace == "" {
		ns, err = netns.Get()
	} else {
		ns, err = netns.GetFromPath(opts.Namespace)
	}
	if err != nil {
		return nil, fmt.Errorf("userland: open network namespace %q: %w", opts.Namespace, err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("userland: netlink handle in %q: %w", opts.Namespace, err)
	}
	d := &Datapath{
		opts: opts, log: log, ns: ns, nl: h, links: links.Handle{NL: h, Log: log},
		ports:     map[string]*port{},
		carrier:   make(chan bonding.Carrier, 64),
		lastUp:    map[string]bool{},
		closed:    make(chan struct{}),
		watchDone: make(chan struct{}),
	}
	if err := d.watchCarrier(); err != nil {
		h.Close()
		ns.Close()
		return nil, err
	}
	return d, nil
}

// watchCarrier subscribes to link changes in the namespace and polls the
// ports' link state (see port.linkState), and turns both into deduplicated
// carrier events.
func (d *Datapath) watchCarrier() error {
	updates := make(chan netlink.LinkUpdate, 256)
	done := make(chan struct{})
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		Namespace: &d.ns,
		ErrorCallback: func(err error) {
			select {
			case <-d.closed:
			default:
				d.log.Warn("userland: link subscription", "err", err)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("userland: subscribe to link changes: %w", err)
	}
	go func() {
		defer close(d.watchDone)
		tick := time.NewTicker(d.opts.CarrierPoll)
		defer tick.Stop()
		for {
			select {
			case <-d.closed:
				close(done)
				for range updates { // drain until the subscription closes it
				}
				return
			case u, ok := <-updates:
				if !ok {
					return
				}
				a := u.Link.Attrs()
				d.emit(a.Name, a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0 && u.Header.Type != unix.RTM_DELLINK)
			case <-tick.C:
				d.mu.Lock()
				ports := make([]*port, 0, len(d.ports))
				for _, p := range d.ports {
					ports = append(ports, p)
				}
				d.mu.Unlock()
				for _, p := range ports {
					if up, ok := p.linkState(); ok {
						d.emit(p.name, up)
					}
				}
			}
		}
	}()
	return nil
}

// emit reports a NIC's carrier if it changed.
func (d *Datapath) emit(name string, up bool) {
	d.emitMu.Lock()
	defer d.emitMu.Unlock()
	if was, seen := d.lastUp[name]; seen && was == up {
		return
	}
	d.lastUp[name] = up
	select {
	case d.carrier <- bonding.Carrier{NIC: name, Up: up}:
	case <-d.closed:
	}
}

// Link reports a NIC's facts.
func (d *Datapath) Link(name string) (bonding.LinkInfo, error) {
	info, err := d.links.Link(name)
	if err != nil {
		return info, fmt.Errorf("userland: %w", err)
	}
	return info, nil
}

// Carrier delivers carrier changes of the namespace's links.
func (d *Datapath) Carrier() <-chan bonding.Carrier { return d.carrier }

// Activity returns the NICs that received frames since the last call.
func (d *Datapath) Activity() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for name, p := range d.ports {
		if p.rxSeen.Swap(false) {
			out = append(out, name)
		}
	}
	return out
}

// ProbeAnswers returns the NICs through which the answer to their last
// SendProbe (an ARP reply from the target to the prober) arrived since the
// last call.
func (d *Datapath) ProbeAnswers() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for name, p := range d.ports {
		if p.probed.Swap(false) {
			out = append(out, name)
		}
	}
	return out
}

// Apply executes one controller action.
func (d *Datapath) Apply(a bonding.Action) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch a := a.(type) {
	case bonding.Prepare:
		return d.prepare(a)
	case bonding.Release:
		return d.release(a)
	case bonding.CreateBond:
		return d.createBond(a.Identity)
	case bonding.DestroyBond:
		return d.destroyBond(a.Identity, a.To)
	case bonding.Enslave:
		p := d.ports[a.NIC]
		if p == nil {
			return fmt.Errorf("userland: enslave %s: not prepared", a.NIC)
		}
		if p.dropFD < 0 {
			err := nsexec.Do(d.ns, func() error {
				fd, err := attachIngressDrop(p.index)
				p.dropFD = fd
				return err
			})
			if err != nil {
				return fmt.Errorf("userland: enslave %s: %w", a.NIC, err)
			}
		}
		p.member.Store(true)
		return nil
	case bonding.Unenslave:
		if p := d.ports[a.NIC]; p != nil {
			p.member.Store(false)
			if p.dropFD >= 0 {
				unix.Close(p.dropFD)
				p.dropFD = -1
			}
		}
		return nil
	case bonding.SetActive:
		ps := make([]*port, 0, len(a.NICs))
		for _, n := range a.NICs {
			if p := d.ports[n]; p != nil {
				ps = append(ps, p)
			}
		}
		d.active.Store(&ps)
		return nil
	case bonding.SendProbe:
		p := d.ports[a.NIC]
		if p == nil || len(a.SrcMAC) != 6 || !a.SrcIP.Is4() || !a.Target.Is4() {
			return fmt.Errorf("userland: probe %s: not prepared or bad addresses (%v %v -> %v)", a.NIC, a.SrcMAC, a.SrcIP, a.Target)
		}
		src := [6]byte(a.SrcMAC)
		p.probe.Store(uint64(newProbeKey(a.Target, a.SrcIP)))
		return p.sendControl(AppendARP(nil, Broadcast, src, ARP{Op: ARPRequest, SenderMAC: src, SenderIP: a.SrcIP, TargetIP: a.Target}))
	case bonding.Announce:
		p := d.ports[a.NIC]
		if p == nil || len(a.Identity.MAC) != 6 {
			return fmt.Errorf("userland: announce on %s: not prepared", a.NIC)
		}
		src := [6]byte(a.Identity.MAC)
		for _, pf := range a.Identity.Addrs {
			if !pf.Addr().Is4() {
				continue
			}
			f := AppendARP(nil, Broadcast, src, ARP{Op: ARPRequest, SenderMAC: src, SenderIP: pf.Addr(), TargetIP: pf.Addr()})
			if err := p.sendControl(f); err != nil {
				return fmt.Errorf("userland: announce: %w", err)
			}
		}
		return nil
	}
	return fmt.Errorf("userland: unknown action %T", a)
}

func (d *Datapath) prepare(a bonding.Prepare) error {
	l, err := d.nl.LinkByName(a.NIC)
	if err != nil {
		return fmt.Errorf("userland: prepare %s: %w", a.NIC, err)
	}
	if err := d.links.Match(l, a.MAC, a.MTU); err != nil {
		return fmt.Errorf("userland: prepare %s: %w", a.NIC, err)
	}
	if d.ports[a.NIC] != nil {
		return nil
	}
	at := l.Attrs()
	p, err := openPort(d.ns, &net.Interface{Index: at.Index, Name: at.Name, MTU: at.MTU, HardwareAddr: at.HardwareAddr}, d.opts.Batch)
	if err != nil {
		return fmt.Errorf("userland: prepare %s: %w", a.NIC, err)
	}
	d.ports[a.NIC] = p
	d.emitMu.Lock()
	delete(d.lastUp, a.NIC) // report its carrier afresh: an old state may be stale
	d.emitMu.Unlock()
	go d.receive(p)
	return nil
}

func (d *Datapath) release(a bonding.Release) error {
	var errs []error
	if p := d.ports[a.NIC]; p != nil {
		delete(d.ports, a.NIC)
		p.close()
	}
	l, err := d.nl.LinkByName(a.NIC)
	var nf netlink.LinkNotFoundError
	switch {
	case errors.As(err, &nf):
		// gone: nothing to restore
	case err != nil:
		errs = append(errs, err)
	default:
		errs = append(errs, d.links.Match(l, a.MAC, a.MTU))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("userland: release %s: %w", a.NIC, err)
	}
	return nil
}

func (d *Datapath) createBond(id bonding.Identity) (err error) {
	if d.tap != nil {
		return fmt.Errorf("userland: create bond %s: already exists", d.opts.BondName)
	}
	src, err := d.nl.LinkByName(id.From)
	if err != nil {
		return fmt.Errorf("userland: create bond: primary %s: %w", id.From, err)
	}
	var f *os.File
	if err := nsexec.Do(d.ns, func() error {
		var err error
		f, err = openTAP(d.opts.BondName)
		return err
	}); err != nil {
		return fmt.Errorf("userland: create bond: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	tl, err := d.nl.LinkByName(d.opts.BondName)
	if err != nil {
		return fmt.Errorf("userland: create bond: %w", err)
	}
	if err := d.links.Match(tl, id.MAC, id.MTU); err != nil {
		return fmt.Errorf("userland: create bond %s: %w", d.opts.BondName, err)
	}
	if err := d.nl.LinkSetUp(tl); err != nil {
		return fmt.Errorf("userland: create bond: set %s up: %w", d.opts.BondName, err)
	}
	routes := d.links.RoutesVia(src)
	if err := d.links.MoveAddrs(src, tl, id.Addrs, routes); err != nil {
		if rerr := d.links.MoveAddrs(tl, src, id.Addrs, routes); rerr != nil {
			d.log.Error("userland: give addresses back after failed create", "nic", id.From, "err", rerr)
		}
		return fmt.Errorf("userland: create bond: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("userland: create bond: %w", err)
	}
	t := &tapDev{f: f, rc: rc, index: tl.Attrs().Index, bufs: make([][]byte, d.opts.Batch), lens: make([]int, d.opts.Batch), done: make(chan struct{})}
	mem := make([]byte, d.opts.Batch*frameBufLen)
	for i := range t.bufs {
		t.bufs[i] = mem[i*frameBufLen : (i+1)*frameBufLen : (i+1)*frameBufLen]
	}
	var v4 []netip.Addr
	for _, p := range id.Addrs {
		if p.Addr().Is4() {
			v4 = append(v4, p.Addr())
		}
	}
	d.id.Store(&identity{mac: [6]byte(id.MAC), addrs: v4})
	d.tap = t
	d.cur.Store(t)
	go d.transmit(t)
	return nil
}

func (d *Datapath) destroyBond(id bonding.Identity, to string) error {
	var routes []netlink.Route
	if t := d.tap; t != nil {
		if tl, err := d.nl.LinkByName(d.opts.BondName); err == nil {
			routes = d.links.RoutesVia(tl)
		}
		d.id.Store(nil)
		d.cur.Store(nil)
		d.tap = nil
		t.close()
	}
	l, err := d.nl.LinkByName(to)
	if err != nil {
		return fmt.Errorf("userland: dissolve bond: %s: %w", to, err)
	}
	if err := d.links.MoveAddrs(nil, l, id.Addrs, routes); err != nil {
		return fmt.Errorf("userland: dissolve bond: %w", err)
	}
	return nil
}

// read is the TAP RawConn.Read callback: read frames until none is left
// or the batch is full.
func (t *tapDev) read(fd uintptr) bool {
	for t.n < len(t.bufs) {
		k, err := unix.Read(int(fd), t.bufs[t.n])
		switch err {
		case nil:
			t.lens[t.n] = k
			t.n++
		case unix.EINTR:
		case unix.EAGAIN:
			return t.n > 0
		default:
			t.err = err
			return true
		}
	}
	return true
}

// transmit moves frames from the TAP device to the active members,
// round-robin frame by frame, one sendmmsg per member per batch.
func (d *Datapath) transmit(t *tapDev) {
	defer close(t.done)
	readFn := t.read
	var used []*port
	for {
		t.n, t.err = 0, nil
		if err := t.rc.Read(readFn); err != nil {
			if !t.closed.Load() {
				d.log.Error("userland: read from TAP", "err", err)
			}
			return
		}
		if t.err != nil && t.n == 0 {
			if !t.closed.Load() {
				d.log.Error("userland: read from TAP", "err", t.err)
			}
			return
		}
		ap := d.active.Load()
		if ap == nil || len(*ap) == 0 {
			d.noMember.Add(uint64(t.n))
			continue
		}
		ports := *ap
		if ap != t.members {
			t.members = ap
			t.spread.reset(len(ports))
		}
		used = used[:0]
		for i := range t.n {
			p := ports[t.spread.pick(t.lens[i])]
			if p.txN == 0 {
				used = append(used, p)
			}
			p.queue(t.bufs[i][:t.lens[i]])
		}
		for _, p := range used {
			p.flush()
		}
	}
}

// receive moves frames from one member into the TAP device (members only)
// and answers ARP requests for the bond's addresses on the member they
// came in on.
func (d *Datapath) receive(p *port) {
	defer close(p.done)
	for {
		n, err := p.readBatch()
		if err != nil {
			if p.closed.Load() {
				return
			}
			d.log.Debug("userland: receive", "nic", p.name, "err", err)
			if errors.Is(err, unix.ENETDOWN) || errors.Is(err, unix.ENXIO) {
				continue
			}
			return
		}
		if n == 0 {
			continue
		}
		p.rxSeen.Store(true)
		member := p.member.Load()
		id := d.id.Load()
		probe := probeKey(p.probe.Load())
		p.toTap = p.toTap[:0]
		for i := range n {
			m := &p.rxMsgs[i]
			if m.hdr.Flags&unix.MSG_TRUNC != 0 || int(m.n) < VnetHdrLen {
				p.rxDropped.Add(1)
				continue
			}
			b := p.rxBufs[i][:m.n]
			p.rxFrames.Add(1)
			p.rxBytes.Add(uint64(len(b) - VnetHdrLen))
			if isProbeAnswer(b[VnetHdrLen:], probe) {
				p.probed.Store(true)
			}
			v, q := classify(b[VnetHdrLen:], id)
			switch {
			case v == answer:
				p.reply = appendReply(p.reply[:0], id, q)
				if err := p.sendControl(p.reply); err != nil {
					d.log.Debug("userland: ARP reply", "nic", p.name, "err", err)
				} else {
					p.answered.Add(1)
				}
			case v == drop || !member:
				p.rxDropped.Add(1)
			default:
				p.toTap = append(p.toTap, b)
			}
		}
		if len(p.toTap) == 0 {
			continue
		}
		t := d.cur.Load()
		if t == nil {
			p.rxDropped.Add(uint64(len(p.toTap)))
			continue
		}
		p.tapOff = 0
		if err := t.rc.Write(p.tapFn); err != nil {
			p.rxDropped.Add(uint64(len(p.toTap) - p.tapOff))
		}
	}
}

// Stats returns the datapath's counters.
func (d *Datapath) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Stats{Ports: map[string]PortStats{}, NoMember: d.noMember.Load()}
	for name, p := range d.ports {
		s.Ports[name] = PortStats{
			RxFrames: p.rxFrames.Load(), RxBytes: p.rxBytes.Load(), RxDropped: p.rxDropped.Load(), ARPAnswered: p.answered.Load(),
			TxFrames: p.txFrames.Load(), TxBytes: p.txBytes.Load(), TxDropped: p.txDropped.Load(),
			TapWriteErrors: p.tapErrs.Load(), Member: p.member.Load(),
		}
	}
	return s
}

// Close stops the datapath: closes every socket and the TAP device (whose
// addresses go with it). NICs keep the MAC and MTU the bond gave them; to
// give everything back, remove every NIC through the controller first.
func (d *Datapath) Close() error {
	d.closeOnce.Do(func() {
		close(d.closed)
		d.mu.Lock()
		for name, p := range d.ports {
			p.close()
			delete(d.ports, name)
		}
		if t := d.tap; t != nil {
			d.tap = nil
			d.cur.Store(nil)
			t.close()
		}
		d.mu.Unlock()
		<-d.watchDone
		d.nl.Close()
		d.ns.Close()
	})
	return nil
}
