package kernelbond

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
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

// ErrNoProbes is returned for SendProbe: ARP probing is not offered on the
// kernel datapath.
var ErrNoProbes = errors.New("kernelbond: ARP probes are not offered on the kernel datapath (run the controller without a probe target)")

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
		carrier: make(chan bonding.Carrier, 64), stop: make(chan struct{}), done: make(chan struct{})}
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

// Activity reports nothing: the driver does its own monitoring.
func (d *Datapath) Activity() []string { return nil }

// ProbeAnswers reports nothing: this datapath sends no probes.
func (d *Datapath) ProbeAnswers() []string { return nil }

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
	switch a := a.(type) {
	case bonding.Prepare:
		// The driver gives members the bond's MAC and MTU when it enslaves
		// them; just check the NIC is there.
		if _, err := d.index(a.NIC); err != nil {
			return fmt.Errorf("kernelbond: prepare %s: %w", a.NIC, err)
		}
		return nil
	case bonding.Release:
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
		return d.destroy(a)
	case bonding.Enslave:
		slave, err := d.nl.LinkByName(a.NIC)
		if err != nil {
			return fmt.Errorf("kernelbond: enslave %s: %w", a.NIC, err)
		}
		bond, err := d.index(d.opts.BondName)
		if err != nil {
			return fmt.Errorf("kernelbond: enslave %s: %w", a.NIC, err)
		}
		// The driver enslaves only down links and sets them up again;
		// the carrier loss in between is ours, not a fault.
		d.bmu.Lock()
		d.bounces.expected(a.NIC, time.Now())
		d.bmu.Unlock()
		if err := d.nl.LinkSetDown(slave); err != nil {
			d.bmu.Lock()
			d.bounces.cancel(a.NIC)
			d.bmu.Unlock()
			return fmt.Errorf("kernelbond: enslave %s: set down: %w", a.NIC, err)
		}
		if err := d.exec(setMasterRequest(int32(slave.Attrs().Index), bond)); err != nil {
			d.nl.LinkSetUp(slave)
			return fmt.Errorf("kernelbond: enslave %s to %s: %w", a.NIC, d.opts.BondName, err)
		}
		return nil
	case bonding.Unenslave:
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
		return ErrNoProbes
	case bonding.Announce:
		return nil // the driver sends gratuitous ARP after a failover (num_grat_arp)
	}
	return fmt.Errorf("kernelbond: unknown action %T", a)
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
	if a.Mode == bonding.Failover && len(a.NICs) > 0 {
		slave, err := d.index(a.NICs[0])
		if err != nil {
			return fmt.Errorf("kernelbond: set active %s: %w", a.NICs[0], err)
		}
		if err := d.exec(activeSlaveRequest(idx, slave)); err != nil {
			return fmt.Errorf("kernelbond: set active %s: %w", a.NICs[0], err)
		}
	}
	return nil
}
