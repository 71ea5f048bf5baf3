package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"ftnas/appliance/store"
	"ftnas/bonding"
	"ftnas/bonding/kernelbond"
	"ftnas/bonding/userland"
)

// The network bond (issue 7): nasd runs a bonding.Agent over the userland
// datapath (TAP + AF_PACKET) or the kernel's bonding driver, built from the
// store's bond configuration at boot and changed through the API.
//
// Lifecycle: the agent and its datapath run only while the bond has
// members. At boot every configured member is added again in order; a
// member that cannot join (missing, no carrier, no probe answer) stays
// configured, shows as "missing" and is retried every bondRetryInterval.
// If the NIC forming the bond has no IPv4 address (the userland bond's
// addresses and routes vanish with its TAP device when nasd dies), the
// addresses and routes the store recorded are put back on it first; the
// routes are recorded when a member is added and, if an operator changes
// them, on the next retry tick. When nasd stops, the bond is
// dissolved, members removed in reverse order, so the primary carries the
// addresses again as a plain interface until the next boot.

// Bond constants.
const (
	// BondInterface is the bond interface's name.
	BondInterface = "bond0"
	// bondRetryInterval is how often configured members that are not in
	// the bond are tried again.
	bondRetryInterval = 2 * time.Second
	// bondOpTimeout bounds an agent request beyond its own add timeout.
	bondOpTimeout = 10 * time.Second

	bondAuto = "auto"
)

// bondDatapath is a bonding.Datapath that can be closed.
type bondDatapath interface {
	bonding.Datapath
	Close() error
}

// bondRun is a running agent and its datapath.
type bondRun struct {
	kind   string // store.BondDatapathUserland or store.BondDatapathKernel
	cfg    bonding.Config
	agent  *bonding.Agent
	dp     bondDatapath
	cancel context.CancelFunc
	done   chan struct{}
}

// bondService owns the bond: the store's configuration and the agent.
type bondService struct {
	log    *slog.Logger
	st     *store.Store
	pref   string // --bond-datapath: auto, userland or kernel
	kernel func() bool

	ops sync.Mutex // one change at a time: API requests, retries, shutdown

	mu      sync.Mutex // guards the fields below; never held while waiting for the agent
	run     *bondRun
	cfg     store.Bond        // the stored configuration, cached
	pending map[string]string // configured members not in the running bond: why
	stats   bondStats
}

// parseBondDatapath checks Config.BondDatapath.
func parseBondDatapath(s string) (string, error) {
	switch s {
	case "", bondAuto:
		return bondAuto, nil
	case store.BondDatapathUserland, store.BondDatapathKernel:
		return s, nil
	}
	return "", fmt.Errorf("--bond-datapath %q: use auto, userland or kernel", s)
}

// kernelBonding reports whether the kernel has the bonding driver loaded.
func kernelBonding() bool {
	_, err := os.Stat("/sys/class/net/bonding_masters")
	return err == nil
}

// newBondService makes the bond's owner; start brings the bond up.
func newBondService(cfg *Config, st *store.Store) (*bondService, error) {
	pref, err := parseBondDatapath(cfg.BondDatapath)
	if err != nil {
		return nil, err
	}
	return &bondService{
		log: cfg.Log.With("component", "bond"), st: st, pref: pref, kernel: kernelBonding,
		pending: map[string]string{}, stats: newBondStats(),
	}, nil
}

// start rebuilds the bond from the store and starts the retry loop.
// Failing to rebuild is logged, not fatal: nasd then serves over whatever
// network there is. The returned stop dissolves the bond.
func (s *bondService) start() (stop func()) {
	s.restore()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(bondRetryInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.retry()
			}
		}
	}()
	return func() {
		cancel()
		<-done
		s.shutdown()
	}
}

// kindFor picks the datapath for a bond with configuration cfg.
func (s *bondService) kindFor(cfg store.Bond) string {
	switch {
	case s.pref != bondAuto:
		return s.pref
	case len(cfg.Members) > 0 && cfg.Datapath != "":
		return cfg.Datapath // the one it was formed with
	case s.kernel():
		return store.BondDatapathKernel
	}
	return store.BondDatapathUserland
}

// controllerConfig turns the stored configuration into the controller's.
func controllerConfig(cfg store.Bond) (bonding.Config, error) {
	mode, err := bonding.ParseMode(cfg.Mode)
	if err != nil {
		return bonding.Config{}, err
	}
	target, err := store.ParseProbeTarget(cfg.ProbeTarget)
	if err != nil {
		return bonding.Config{}, err
	}
	c := bonding.Config{Mode: mode, Interval: cfg.Interval, UpDelay: cfg.UpDelay, ProbeTarget: target}.WithDefaults()
	return c, c.Validate()
}

func (s *bondService) current() (*bondRun, store.Bond) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.run, s.cfg
}

// ensureRun starts the agent if it is not running.
func (s *bondService) ensureRun(cfg store.Bond) (*bondRun, error) {
	if r, _ := s.current(); r != nil {
		return r, nil
	}
	kind := s.kindFor(cfg)
	bc, err := controllerConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("bond: %w", err)
	}
	c, err := bonding.New(bc)
	if err != nil {
		return nil, fmt.Errorf("bond: %w", err)
	}
	var dp bondDatapath
	switch kind {
	case store.BondDatapathKernel:
		s.removeStaleKernelBond()
		dp, err = kernelbond.New(kernelbond.Options{BondName: BondInterface, MIIMon: bc.Interval, Logger: s.log})
	default:
		dp, err = userland.New(userland.Options{BondName: BondInterface, Logger: s.log})
	}
	if err != nil {
		return nil, fmt.Errorf("bond: open the %s datapath: %w", kind, err)
	}
	r := &bondRun{kind: kind, cfg: bc, dp: dp, done: make(chan struct{})}
	r.agent = bonding.NewAgent(c, observed{Datapath: dp, applied: s.applied}, bonding.AgentOptions{Logger: s.log, OnChange: s.changed})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.agent.Run(ctx)
	}()
	s.mu.Lock()
	s.run = r
	s.mu.Unlock()
	s.log.Info("bond: agent started", "datapath", kind, "mode", bc.Mode.String(), "interval", bc.Interval,
		"up_delay", bc.UpDelay, "probe_target", bc.ProbeTarget)
	return r, nil
}

// stopRun stops the agent and closes its datapath (the bond as the
// datapath left it: dissolve it first).
func (s *bondService) stopRun() {
	s.mu.Lock()
	r := s.run
	s.run = nil
	s.stats.reset()
	s.mu.Unlock()
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
	if err := r.dp.Close(); err != nil {
		s.log.Warn("bond: close datapath", "err", err)
	}
}

// stopIfEmpty stops the agent when the bond has no NICs left.
func (s *bondService) stopIfEmpty(r *bondRun) {
	ctx, cancel := context.WithTimeout(context.Background(), bondOpTimeout)
	defer cancel()
	if st, err := r.agent.Status(ctx); err == nil && len(st.NICs) == 0 {
		s.stopRun()
	}
}

// removeStaleKernelBond deletes a kernel bond a previous nasd left behind
// (the driver's bond outlives the process); its addresses are restored on
// the primary from the store.
func (s *bondService) removeStaleKernelBond() {
	l, err := netlink.LinkByName(BondInterface)
	if err != nil || l.Type() != "bond" {
		return
	}
	if err := netlink.LinkDel(l); err != nil {
		s.log.Warn("bond: remove the bond a previous nasd left", "bond", BondInterface, "err", err)
		return
	}
	s.log.Info("bond: removed the bond a previous nasd left", "bond", BondInterface)
}

// restore rebuilds the bond from the store at boot.
func (s *bondService) restore() {
	s.ops.Lock()
	defer s.ops.Unlock()
	cfg, err := s.st.Bond()
	if err != nil {
		s.log.Error("bond: cannot read the bond configuration; running without a bond", "err", err)
		s.mu.Lock()
		s.cfg = store.Bond{Mode: store.BondLoadBalance, Members: []string{}}
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	s.cfg = cfg
	for _, m := range cfg.Members {
		s.pending[m] = "not added yet"
	}
	s.mu.Unlock()
	if len(cfg.Members) == 0 {
		return
	}
	s.log.Info("bond: restoring", "members", strings.Join(cfg.Members, ","), "mode", cfg.Mode, "datapath", s.kindFor(cfg))
	s.joinPending()
}

// retry tries the members that are configured but not in the bond, and
// records the bond's routes if an operator changed them.
func (s *bondService) retry() {
	s.ops.Lock()
	defer s.ops.Unlock()
	s.mu.Lock()
	n := len(s.pending)
	s.mu.Unlock()
	if n > 0 {
		s.joinPending()
	}
	r, cfg := s.current()
	if r == nil || len(cfg.Members) == 0 {
		return
	}
	if _, err := netlink.LinkByName(BondInterface); err != nil {
		return // not formed
	}
	if routes := s.routesOf(BondInterface); !slices.Equal(routes, cfg.Routes) {
		cfg.Routes = routes
		if err := s.save(cfg); err != nil {
			s.log.Warn("bond: record the bond's routes", "err", err)
		}
	}
}

// joinPending adds the pending members in their configured order. Called
// with ops held.
func (s *bondService) joinPending() {
	_, cfg := s.current()
	for _, nic := range cfg.Members {
		s.mu.Lock()
		prev, waiting := s.pending[nic]
		s.mu.Unlock()
		if !waiting {
			continue
		}
		err := s.join(cfg, nic)
		s.mu.Lock()
		if err == nil {
			delete(s.pending, nic)
		} else {
			s.pending[nic] = err.Error()
		}
		s.mu.Unlock()
		switch {
		case err == nil:
			s.log.Info("bond: member joined", "nic", nic)
		case err.Error() != prev:
			s.log.Warn("bond: configured member cannot join; retrying", "nic", nic, "err", err, "every", bondRetryInterval)
		}
	}
}

// join adds a configured member at boot or on retry: it sets the NIC up
// and, if it is to form the bond and has no IPv4 address, gives it the
// addresses the store recorded.
func (s *bondService) join(cfg store.Bond, nic string) error {
	l, err := netlink.LinkByName(nic)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return fmt.Errorf("bond: %s: no such interface", nic)
		}
		return fmt.Errorf("bond: %s: %w", nic, err)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("bond: set %s up: %w", nic, err)
		}
	}
	r, err := s.ensureRun(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.AddTimeout+bondOpTimeout)
	defer cancel()
	st, err := r.agent.Status(ctx)
	if err != nil {
		return err
	}
	if !st.Bonded {
		if err := s.restoreAddrs(l, cfg.Addrs, cfg.Routes); err != nil {
			return err
		}
	}
	if err := r.agent.Add(ctx, nic); err != nil {
		s.stopIfEmpty(r)
		return err
	}
	return nil
}

// restoreAddrs puts the bond's recorded addresses and routes on l if it
// has no IPv4 address (after a crash: the userland bond's TAP took them
// along when it vanished). The datapath moves them on to the bond.
func (s *bondService) restoreAddrs(l netlink.Link, addrs, routes []string) error {
	have, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("bond: addresses of %s: %w", l.Attrs().Name, err)
	}
	if len(have) > 0 || len(addrs) == 0 {
		return nil
	}
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return fmt.Errorf("bond: recorded address %q: %w", a, err)
		}
		ipn := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: ipn}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("bond: put %v back on %s: %w", p, l.Attrs().Name, err)
		}
	}
	for _, r := range routes {
		dst, gw, err := store.ParseBondRoute(r)
		if err != nil {
			return fmt.Errorf("bond: recorded %w", err)
		}
		nr := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), 32)}}
		if gw.IsValid() {
			nr.Gw = gw.AsSlice()
		} else {
			nr.Scope = netlink.SCOPE_LINK
		}
		if err := netlink.RouteAdd(nr); err != nil && !errors.Is(err, unix.EEXIST) {
			// The addresses are back: the node is reachable on its subnet.
			s.log.Warn("bond: cannot put a recorded route back", "nic", l.Attrs().Name, "route", r, "err", err)
		}
	}
	s.log.Info("bond: put the bond's recorded addresses back on the NIC forming it", "nic", l.Attrs().Name,
		"addrs", strings.Join(addrs, ","), "routes", strings.Join(routes, ","))
	return nil
}

// routesOf lists the IPv4 routes of the main table through the link name
// other than those the kernel makes for its addresses, as Bond.Routes
// holds them.
func (s *bondService) routesOf(name string) []string {
	l, err := netlink.LinkByName(name)
	var rs []netlink.Route
	if err == nil {
		rs, err = netlink.RouteList(l, netlink.FAMILY_V4)
	}
	if err != nil {
		s.log.Warn("bond: list the routes to record", "link", name, "err", err)
		return nil
	}
	var out []string
	for _, r := range rs {
		if r.Protocol == unix.RTPROT_KERNEL || r.Table != unix.RT_TABLE_MAIN {
			continue
		}
		dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if r.Dst != nil {
			ones, _ := r.Dst.Mask.Size()
			a, _ := netip.AddrFromSlice(r.Dst.IP.To4())
			dst = netip.PrefixFrom(a, ones)
		}
		gw, _ := netip.AddrFromSlice(r.Gw.To4())
		if !dst.Addr().Is4() || len(out) == store.MaxBondAddrs {
			continue
		}
		out = append(out, store.FormatBondRoute(dst, gw))
	}
	return out
}

// shutdown dissolves the bond: members leave in reverse order, so the
// first one carries the addresses again.
func (s *bondService) shutdown() {
	s.ops.Lock()
	defer s.ops.Unlock()
	r, cfg := s.current()
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), bondOpTimeout)
	defer cancel()
	st, err := r.agent.Status(ctx)
	if err != nil {
		s.log.Error("bond: cannot dissolve the bond", "err", err)
		s.stopRun()
		return
	}
	var order []string
	for _, m := range slices.Backward(cfg.Members) {
		if slices.ContainsFunc(st.NICs, func(n bonding.NICStatus) bool { return n.Name == m }) {
			order = append(order, m)
		}
	}
	for _, n := range slices.Backward(st.NICs) {
		if !slices.Contains(order, n.Name) {
			order = append([]string{n.Name}, order...) // not configured: leave first
		}
	}
	for _, nic := range order {
		if err := r.agent.Remove(ctx, nic); err != nil {
			s.log.Warn("bond: dissolve: remove member", "nic", nic, "err", err)
		}
	}
	if len(order) > 0 && st.Bonded {
		s.announce(order[len(order)-1], st.Identity.Addrs)
	}
	s.log.Info("bond: dissolved for shutdown", "members", strings.Join(order, ","))
	s.stopRun()
}

// announce sends gratuitous ARP for addrs through nic, which carries them
// as a plain interface again after the bond dissolved: switches still
// send its MAC to whichever member used it last.
func (s *bondService) announce(nic string, addrs []netip.Prefix) {
	ifi, err := net.InterfaceByName(nic)
	if err == nil && len(ifi.HardwareAddr) != 6 {
		err = fmt.Errorf("hardware address %v is not Ethernet", ifi.HardwareAddr)
	}
	var c *packet.Conn
	if err == nil {
		c, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
	}
	if err != nil {
		s.log.Warn("bond: announce the addresses on the plain interface", "nic", nic, "err", err)
		return
	}
	defer c.Close()
	src := [6]byte(ifi.HardwareAddr)
	for _, p := range addrs {
		if !p.Addr().Is4() {
			continue
		}
		f := userland.AppendARP(nil, userland.Broadcast, src, userland.ARP{Op: userland.ARPRequest, SenderMAC: src, SenderIP: p.Addr(), TargetIP: p.Addr()})
		if _, err := c.WriteTo(f, &packet.Addr{HardwareAddr: net.HardwareAddr(userland.Broadcast[:])}); err != nil {
			s.log.Warn("bond: announce the addresses on the plain interface", "nic", nic, "addr", p, "err", err)
		}
	}
}

// save stores cfg and caches it. Called with ops held.
func (s *bondService) save(cfg store.Bond) error {
	cfg, err := s.st.SetBond(cfg)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
	return nil
}
