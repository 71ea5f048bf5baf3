package kernelbond

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"ftnas/bonding"
	"ftnas/bonding/internal/links"
	"ftnas/bonding/internal/nsexec"
)

// Options configure a Datapath.
type Options struct {
	// Namespace is the path of the network namespace (empty: the caller's).
	Namespace string
	// BondName is the bond device's name; default "bond0".
	BondName string
	// MIIMon is the driver's carrier poll interval; default 100ms.
	MIIMon time.Duration
	Logger *slog.Logger
}

// Datapath is the Linux bonding driver behind the controller.
type Datapath struct {
	opts    Options
	log     *slog.Logger
	ns      netns.NsHandle
	nl      *netlink.Handle
	links   links.Handle
	mode    bonding.Mode
	carrier chan bonding.Carrier
	stop    chan struct{}
	once    sync.Once
	done    chan struct{}

	bmu     sync.Mutex
	bounces bounceFilter // the carrier losses Enslave causes, hidden

	// Apply's state (ProbeAnswers and Close read it too).
	mu      sync.Mutex
	nics    map[string]*nicState // prepared NICs and members
	members []member             // in the order they were enslaved
}

// nicState is what the datapath keeps about a prepared NIC or member.
type nicState struct {
	ownMAC [6]byte // its own MAC, which it has while out of the bond
	prober *prober // opened by its first SendProbe
}

var _ bonding.Datapath = (*Datapath)(nil)

// New opens the datapath. It does not check for the bonding driver: the
// first CreateBond fails if it is missing.
func New(opts Options) (*Datapath, error) {
	if opts.BondName == "" {
		opts.BondName = "bond0"
	}
	if opts.MIIMon == 0 {
		opts.MIIMon = 100 * time.Millisecond
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
		return nil, fmt.Errorf("kernelbond: open network namespace %q: %w", opts.Namespace, err)
	}
	// Only rtnetlink: without a family list the handle also opens XFRM and
	// netfilter sockets, which fail where xfrm_user and nfnetlink are not
	// loaded (the appliance's kernel at boot).
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("kernelbond: netlink handle: %w", err)
	}
	d := &Datapath{opts: opts, log: log, ns: ns, nl: h, links: links.Handle{NL: h, Log: log},
		carrier: make(chan bonding.Carrier, 64), stop: make(chan struct{}), done: make(chan struct{}),
		nics: map[string]*nicState{}}
	updates := make(chan netlink.LinkUpdate, 64)
	if err := netlink.LinkSubscribeWithOptions(updates, d.stop, netlink.LinkSubscribeOptions{Namespace: &d.ns}); err != nil {
		h.Close()
		ns.Close()
		return nil, fmt.Errorf("kernelbond: subscribe to link changes: %w", err)
	}
	// Members of a bond are LAG ports, whose carrier changes the kernel
	// reports at once, so notifications suffice here.
	go func() {
		defer close(d.done)
		d.watch(updates)
	}()
	return d, nil
}

// watch turns link updates into carrier changes for the controller,
// leaving out the losses Enslave causes.
func (d *Datapath) watch(updates <-chan netlink.LinkUpdate) {
	last := map[string]bool{}
	tick := time.NewTicker(bounceGrace / 10)
	defer tick.Stop()
	send := func(c bonding.Carrier) bool {
		select {
		case d.carrier <- c:
			return true
		case <-d.stop:
			return false
		}
	}
	for {
		select {
		case u, ok := <-updates:
			if !ok {
				return
			}
			a := u.Link.Attrs()
			up := a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0 && u.Header.Type != unix.RTM_DELLINK
			if was, ok := last[a.Name]; ok && was == up {
				continue
			}
			last[a.Name] = up
			d.bmu.Lock()
			pass := d.bounces.pass(a.Name, up, time.Now())
			d.bmu.Unlock()
			if !pass {
				d.log.Debug("kernelbond: carrier change from enslaving, not reported", "nic", a.Name, "up", up)
				continue
			}
			if !send(bonding.Carrier{NIC: a.Name, Up: up}) {
				return
			}
		case now := <-tick.C:
			d.bmu.Lock()
			lost := d.bounces.expired(now)
			d.bmu.Unlock()
			for _, nic := range lost {
				d.log.Warn("kernelbond: member has no carrier since it was enslaved", "nic", nic, "after", bounceGrace)
				if !send(bonding.Carrier{NIC: nic, Up: false}) {
					return
				}
			}
		}
	}
}

// Close stops the datapath; the bond device stays.
func (d *Datapath) Close() error {
	d.once.Do(func() {
		close(d.stop)
		<-d.done
		d.mu.Lock()
		for _, n := range d.nics {
			if n.prober != nil {
				n.prober.close()
			}
		}
		d.nics = nil
		d.mu.Unlock()
		d.nl.Close()
		d.ns.Close()
	})
	return nil
}

// Link reports a NIC's facts.
func (d *Datapath) Link(name string) (bonding.LinkInfo, error) {
	info, err := d.links.Link(name)
	if err != nil {
		return info, fmt.Errorf("kernelbond: %w", err)
	}
	return info, nil
}

// Activity reports nothing: a member counts as alive only through the
// answers to its own probes (ProbeAnswers). Frames of others arriving
// through it prove nothing about the way out.
func (d *Datapath) Activity() []string { return nil }

// ProbeAnswers returns the NICs through which the answer to their last
// SendProbe arrived since the previous call.
func (d *Datapath) ProbeAnswers() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for name, n := range d.nics {
		if n.prober != nil && n.prober.take() {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Carrier delivers carrier changes.
func (d *Datapath) Carrier() <-chan bonding.Carrier { return d.carrier }

func (d *Datapath) exec(req *nl.NetlinkRequest) error {
	return nsexec.Do(d.ns, func() error {
		_, err := req.Execute(unix.NETLINK_ROUTE, 0)
		return err
	})
}

func (d *Datapath) index(name string) (int32, error) {
	l, err := d.nl.LinkByName(name)
	if err != nil {
		return 0, err
	}
	return int32(l.Attrs().Index), nil
}

// Apply executes one controller action.
func (d *Datapath) Apply(a bonding.Action) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nics == nil {
		return fmt.Errorf("kernelbond: %T: datapath closed", a)
	}
	switch a := a.(type) {
	case bonding.Prepare:
		// The driver gives members the bond's MAC and MTU when it enslaves
		// them; note the NIC's own MAC for its probes out of the bond.
		l, err := d.nl.LinkByName(a.NIC)
		if err != nil {
			return fmt.Errorf("kernelbond: prepare %s: %w", a.NIC, err)
		}
		n := d.nics[a.NIC]
		if n == nil {
			n = &nicState{}
			d.nics[a.NIC] = n
		}
		copy(n.ownMAC[:], l.Attrs().HardwareAddr)
		return nil
	case bonding.Release:
		d.forget(a.NIC)
		l, err := d.nl.LinkByName(a.NIC)
		if err != nil {
			return fmt.Errorf("kernelbond: release %s: %w", a.NIC, err)
		}
		if err := d.links.Match(l, a.MAC, a.MTU); err != nil {
			return fmt.Errorf("kernelbond: release %s: %w", a.NIC, err)
		}
		return d.nl.LinkSetUp(l)
	case bonding.CreateBond:
		return d.create(a)
	case bonding.DestroyBond:
		d.members = nil
		return d.destroy(a)
	case bonding.Enslave:
		if err := d.enslave(a.NIC); err != nil {
			return err
		}
		d.members = slices.DeleteFunc(d.members, func(m member) bool { return m.Name == a.NIC })
		d.members = append(d.members, member{Name: a.NIC})
		return nil
	case bonding.Unenslave:
		d.members = slices.DeleteFunc(d.members, func(m member) bool { return m.Name == a.NIC })
		idx, err := d.index(a.NIC)
		if err != nil {
			return fmt.Errorf("kernelbond: release %s: %w", a.NIC, err)
		}
		if err := d.exec(setMasterRequest(idx, 0)); err != nil {
			return fmt.Errorf("kernelbond: release %s: %w", a.NIC, err)
		}
		return nil
	case bonding.SetActive:
		return d.setActive(a)
	case bonding.SendProbe:
		return d.sendProbe(a)
	case bonding.Announce:
		return nil // the driver sends gratuitous ARP after a failover (num_grat_arp)
	}
	return fmt.Errorf("kernelbond: unknown action %T", a)
}

// forget drops what the datapath keeps about a NIC the controller lets go.
func (d *Datapath) forget(nic string) {
	if n := d.nics[nic]; n != nil && n.prober != nil {
		n.prober.close()
	}
	delete(d.nics, nic)
	d.members = slices.DeleteFunc(d.members, func(m member) bool { return m.Name == nic })
}

// enslave makes nic a slave of the bond.
func (d *Datapath) enslave(nic string) error {
	slave, err := d.nl.LinkByName(nic)
	if err != nil {
		return fmt.Errorf("kernelbond: enslave %s: %w", nic, err)
	}
	bond, err := d.index(d.opts.BondName)
	if err != nil {
		return fmt.Errorf("kernelbond: enslave %s: %w", nic, err)
	}
	// The driver enslaves only down links and sets them up again;
	// the carrier loss in between is ours, not a fault.
	d.bmu.Lock()
	d.bounces.expected(nic, time.Now())
	d.bmu.Unlock()
	if err := d.nl.LinkSetDown(slave); err != nil {
		d.bmu.Lock()
		d.bounces.cancel(nic)
		d.bmu.Unlock()
		return fmt.Errorf("kernelbond: enslave %s: set down: %w", nic, err)
	}
	if err := d.exec(setMasterRequest(int32(slave.Attrs().Index), bond)); err != nil {
		d.nl.LinkSetUp(slave)
		return fmt.Errorf("kernelbond: enslave %s to %s: %w", nic, d.opts.BondName, err)
	}
	return nil
}

// forceOut releases a member from the bond, so the driver stops sending
// through it, and sets it up again for its probes. The bond keeps its MAC
// and addresses; the member gets its own MAC back from the driver.
func (d *Datapath) forceOut(nic string) error {
	slave, err := d.nl.LinkByName(nic)
	if err != nil {
		return fmt.Errorf("kernelbond: take %s out of the bond: %w", nic, err)
	}
	// The driver closes a slave it releases; setting it up again is ours.
	d.bmu.Lock()
	d.bounces.expected(nic, time.Now())
	d.bmu.Unlock()
	if err := d.exec(setMasterRequest(int32(slave.Attrs().Index), 0)); err != nil {
		d.bmu.Lock()
		d.bounces.cancel(nic)
		d.bmu.Unlock()
		return fmt.Errorf("kernelbond: take %s out of the bond: %w", nic, err)
	}
	if err := d.nl.LinkSetUp(slave); err != nil {
		return fmt.Errorf("kernelbond: take %s out of the bond: set up: %w", nic, err)
	}
	if l, err := d.nl.LinkByName(nic); err == nil {
		if n := d.nics[nic]; n != nil && len(l.Attrs().HardwareAddr) == 6 {
			copy(n.ownMAC[:], l.Attrs().HardwareAddr)
		}
	}
	return nil
}

// follow makes the driver's slaves follow the controller's SetActive (see
// plan). A failed move is reported and the others still made.
func (d *Datapath) follow(a bonding.SetActive) error {
	var errs []error
	for _, mv := range plan(d.members, a.Mode, a.NICs) {
		i := slices.IndexFunc(d.members, func(m member) bool { return m.Name == mv.NIC })
		if mv.Enslave {
			if err := d.enslave(mv.NIC); err != nil {
				errs = append(errs, err)
				continue
			}
			d.log.Info("kernelbond: member back in the bond", "nic", mv.NIC)
			d.members[i].Out = false
			continue
		}
		if err := d.forceOut(mv.NIC); err != nil {
			errs = append(errs, err)
			continue
		}
		d.log.Info("kernelbond: member taken out of the bond (the controller took it out of the rotation)", "nic", mv.NIC)
		d.members[i].Out = true
	}
	return errors.Join(errs...)
}

// sendProbe sends the controller's probe through one NIC: from the bond
// while it is a slave, as an RFC 5227 probe from its own MAC while it is
// not (see probeFor).
func (d *Datapath) sendProbe(a bonding.SendProbe) error {
	n := d.nics[a.NIC]
	if n == nil {
		return fmt.Errorf("kernelbond: probe through %s: not prepared", a.NIC)
	}
	if len(a.SrcMAC) != 6 {
		return fmt.Errorf("kernelbond: probe through %s: bad source MAC %v", a.NIC, a.SrcMAC)
	}
	enslaved := slices.ContainsFunc(d.members, func(m member) bool { return m.Name == a.NIC && !m.Out })
	pr, err := probeFor(enslaved, [6]byte(a.SrcMAC), n.ownMAC, a.SrcIP, a.Target)
	if err != nil {
		return err
	}
	if n.prober == nil {
		idx, err := d.index(a.NIC)
		if err != nil {
			return fmt.Errorf("kernelbond: probe through %s: %w", a.NIC, err)
		}
		if n.prober, err = openProber(d.ns, a.NIC, int(idx), d.log); err != nil {
			return err
		}
	}
	return n.prober.send(pr)
}

func (d *Datapath) create(a bonding.CreateBond) error {
	id := a.Identity
	req, err := createRequest(d.opts.BondName, a.Mode, d.opts.MIIMon, id.MAC, id.MTU)
	if err != nil {
		return err
	}
	src, err := d.nl.LinkByName(id.From)
	if err != nil {
		return fmt.Errorf("kernelbond: create bond: primary %s: %w", id.From, err)
	}
	if err := d.exec(req); err != nil {
		if errors.Is(err, unix.EEXIST) {
			// Loading the driver without max_bonds=0 makes an empty bond0.
			return fmt.Errorf("kernelbond: create bond %s: a device of that name already exists (bonding loaded without max_bonds=0?): %w", d.opts.BondName, err)
		}
		return fmt.Errorf("kernelbond: create bond %s (does the kernel have the bonding driver?): %w", d.opts.BondName, err)
	}
	d.mode = a.Mode
	bond, err := d.nl.LinkByName(d.opts.BondName)
	if err == nil {
		err = d.nl.LinkSetUp(bond)
	}
	if err == nil {
		routes := d.links.RoutesVia(src)
		if err = d.links.MoveAddrs(src, bond, id.Addrs, routes); err != nil {
			d.links.MoveAddrs(bond, src, id.Addrs, routes)
		}
	}
	if err != nil {
		if idx, ierr := d.index(d.opts.BondName); ierr == nil {
			d.exec(deleteRequest(idx))
		}
		return fmt.Errorf("kernelbond: create bond %s: %w", d.opts.BondName, err)
	}
	return nil
}

func (d *Datapath) destroy(a bonding.DestroyBond) error {
	var routes []netlink.Route
	if bond, err := d.nl.LinkByName(d.opts.BondName); err == nil {
		routes = d.links.RoutesVia(bond)
		if err := d.exec(deleteRequest(int32(bond.Attrs().Index))); err != nil {
			return fmt.Errorf("kernelbond: delete %s: %w", d.opts.BondName, err)
		}
	}
	to, err := d.nl.LinkByName(a.To)
	if err != nil {
		return fmt.Errorf("kernelbond: dissolve bond: %s: %w", a.To, err)
	}
	if err := d.nl.LinkSetUp(to); err != nil {
		return fmt.Errorf("kernelbond: dissolve bond: set %s up: %w", a.To, err)
	}
	return d.links.MoveAddrs(nil, to, a.Identity.Addrs, routes)
}

func (d *Datapath) setActive(a bonding.SetActive) error {
	bond, err := d.nl.LinkByName(d.opts.BondName)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil // dissolved
		}
		return fmt.Errorf("kernelbond: set active: %w", err)
	}
	idx := int32(bond.Attrs().Index)
	if a.Mode != d.mode && a.Mode != 0 {
		req, err := setModeRequest(idx, a.Mode)
		if err != nil {
			return err
		}
		if err := d.nl.LinkSetDown(bond); err != nil {
			return fmt.Errorf("kernelbond: set mode: %w", err)
		}
		err = d.exec(req)
		if uerr := d.nl.LinkSetUp(bond); err == nil {
			err = uerr
		}
		if err != nil {
			return fmt.Errorf("kernelbond: set mode %v: %w", a.Mode, err)
		}
		d.mode = a.Mode
	}
	ferr := d.follow(a)
	if a.Mode == bonding.Failover && len(a.NICs) > 0 {
		slave, err := d.index(a.NICs[0])
		if err != nil {
			return errors.Join(ferr, fmt.Errorf("kernelbond: set active %s: %w", a.NICs[0], err))
		}
		if err := d.exec(activeSlaveRequest(idx, slave)); err != nil {
			return errors.Join(ferr, fmt.Errorf("kernelbond: set active %s: %w", a.NICs[0], err))
		}
	}
	return ferr
}
