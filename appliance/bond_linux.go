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
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"ftnas/appliance/api"
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

// sentinelError gives an error from the bonding package a store sentinel,
// for the API's status codes, keeping its message.
type sentinelError struct{ err, kind error }

func (e *sentinelError) Error() string        { return e.err.Error() }
func (e *sentinelError) Unwrap() error        { return e.err }
func (e *sentinelError) Is(target error) bool { return target == e.kind }

// classify marks the controller's refusals (errors with no cause below
// them: "no carrier", "no ARP reply", ...) as bad requests; datapath
// failures (which wrap their cause) stay internal errors.
func classify(err error) error {
	if err == nil || errors.Unwrap(err) != nil || errors.Is(err, bonding.ErrStopped) {
		return err
	}
	kind := store.ErrInvalid
	switch msg := err.Error(); {
	case strings.Contains(msg, "no such interface"):
		kind = store.ErrNotFound
	case strings.Contains(msg, "already in the bond"), strings.Contains(msg, "already being checked"):
		kind = store.ErrExists
	}
	return &sentinelError{err: err, kind: kind}
}

func (s *bondService) add(ctx context.Context, r api.BondAddRequest) (api.BondStatus, error) {
	if err := store.ValidateNICName(r.NIC); err != nil {
		return api.BondStatus{}, fmt.Errorf("bond add: %w", err)
	}
	if _, err := store.ParseProbeTarget(r.ProbeTarget); err != nil {
		return api.BondStatus{}, fmt.Errorf("bond add %s: %w", r.NIC, err)
	}
	// The request's context ends if the client goes away; the add must
	// then still be recorded, so it runs to its end.
	ctx = context.WithoutCancel(ctx)
	s.ops.Lock()
	defer s.ops.Unlock()
	_, cfg := s.current()
	s.mu.Lock()
	why, waiting := s.pending[r.NIC]
	s.mu.Unlock()
	switch {
	case r.NIC == BondInterface:
		return api.BondStatus{}, fmt.Errorf("%w bond add %s: that is the bond itself", store.ErrInvalid, r.NIC)
	case waiting:
		return api.BondStatus{}, fmt.Errorf("bond add %s: %w: configured already, waiting to join (%s); nasd retries every %v", r.NIC, store.ErrExists, why, bondRetryInterval)
	case slices.Contains(cfg.Members, r.NIC):
		return api.BondStatus{}, fmt.Errorf("bond add %s: %w: already a member of the bond", r.NIC, store.ErrExists)
	case r.ProbeTarget != "" && r.ProbeTarget != cfg.ProbeTarget && len(cfg.Members) > 0:
		return api.BondStatus{}, fmt.Errorf("%w bond add %s: the bond probes %q; remove every member to change the probe target", store.ErrInvalid, r.NIC, cfg.ProbeTarget)
	}
	if r.ProbeTarget != "" {
		cfg.ProbeTarget = r.ProbeTarget
	}
	if _, err := netlink.LinkByName(r.NIC); err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return api.BondStatus{}, fmt.Errorf("bond add %s: %w: no such interface (see ip link)", r.NIC, store.ErrNotFound)
		}
		return api.BondStatus{}, fmt.Errorf("bond add %s: %w", r.NIC, err)
	}
	run, err := s.ensureRun(cfg)
	if err != nil {
		return api.BondStatus{}, err
	}
	actx, cancel := context.WithTimeout(ctx, run.cfg.AddTimeout+bondOpTimeout)
	defer cancel()
	if err := run.agent.Add(actx, r.NIC); err != nil {
		s.stopIfEmpty(run)
		return api.BondStatus{}, classify(err)
	}
	st, err := run.agent.Status(actx)
	if err != nil {
		return api.BondStatus{}, err
	}
	cfg.Members = append(slices.Clone(cfg.Members), r.NIC)
	cfg.Datapath = run.kind
	if st.Bonded {
		cfg.Addrs = cfg.Addrs[:0:0]
		for _, p := range st.Identity.Addrs {
			cfg.Addrs = append(cfg.Addrs, p.String())
		}
		cfg.Routes = s.routesOf(BondInterface)
	}
	if err := s.save(cfg); err != nil {
		if rerr := run.agent.Remove(actx, r.NIC); rerr != nil {
			err = errors.Join(err, fmt.Errorf("bond add %s: undo: %w", r.NIC, rerr))
		}
		s.stopIfEmpty(run)
		return api.BondStatus{}, fmt.Errorf("bond add %s: not recorded, so undone: %w", r.NIC, err)
	}
	return s.status(ctx)
}

func (s *bondService) remove(ctx context.Context, nic string) error {
	ctx = context.WithoutCancel(ctx)
	s.ops.Lock()
	defer s.ops.Unlock()
	run, cfg := s.current()
	if !slices.Contains(cfg.Members, nic) {
		return fmt.Errorf("bond rm %s: %w: not a member of the bond", nic, store.ErrNotFound)
	}
	s.mu.Lock()
	_, waiting := s.pending[nic]
	s.mu.Unlock()
	if !waiting && run != nil {
		rctx, cancel := context.WithTimeout(ctx, bondOpTimeout)
		defer cancel()
		before, err := run.agent.Status(rctx)
		if err != nil {
			return err
		}
		// A configured member the agent does not have (it never joined)
		// only leaves the configuration.
		if slices.ContainsFunc(before.NICs, func(n bonding.NICStatus) bool { return n.Name == nic }) {
			if err := run.agent.Remove(rctx, nic); err != nil {
				return classify(err)
			}
			if after, err := run.agent.Status(rctx); err == nil && before.Bonded && !after.Bonded {
				s.announce(nic, before.Identity.Addrs) // the bond dissolved into nic
			}
		}
	}
	cfg.Members = slices.DeleteFunc(slices.Clone(cfg.Members), func(m string) bool { return m == nic })
	if len(cfg.Members) == 0 {
		cfg.Addrs, cfg.Routes, cfg.Datapath = nil, nil, ""
	}
	err := s.save(cfg)
	s.mu.Lock()
	delete(s.pending, nic)
	s.mu.Unlock()
	if run != nil {
		s.stopIfEmpty(run)
	}
	if err != nil {
		return fmt.Errorf("bond rm %s: removed from the running bond, but: %w", nic, err)
	}
	return nil
}

func (s *bondService) setMode(ctx context.Context, mode string) (api.BondStatus, error) {
	m, err := bonding.ParseMode(mode)
	if err != nil {
		return api.BondStatus{}, fmt.Errorf("%w bond mode %q: use %s or %s", store.ErrInvalid, mode, store.BondLoadBalance, store.BondFailover)
	}
	ctx = context.WithoutCancel(ctx)
	s.ops.Lock()
	defer s.ops.Unlock()
	run, cfg := s.current()
	if run != nil {
		mctx, cancel := context.WithTimeout(ctx, bondOpTimeout)
		defer cancel()
		if err := run.agent.SetMode(mctx, m); err != nil {
			return api.BondStatus{}, classify(err)
		}
	}
	cfg.Mode = m.String()
	if err := s.save(cfg); err != nil {
		return api.BondStatus{}, err
	}
	return s.status(ctx)
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// status merges the configuration, the agent's view and the counters.
func (s *bondService) status(ctx context.Context) (api.BondStatus, error) {
	s.mu.Lock()
	run, cfg := s.run, s.cfg
	pending := make(map[string]string, len(s.pending))
	for k, v := range s.pending {
		pending[k] = v
	}
	failures := make(map[string]uint64, len(s.stats.failures))
	for k, v := range s.stats.failures {
		failures[k] = v
	}
	failovers := s.stats.failovers
	s.mu.Unlock()

	kind := s.kindFor(cfg)
	bc, err := controllerConfig(cfg)
	if err != nil {
		return api.BondStatus{}, err
	}
	var st bonding.Status
	if run != nil {
		kind, bc = run.kind, run.cfg
		sctx, cancel := context.WithTimeout(ctx, bondOpTimeout)
		defer cancel()
		if st, err = run.agent.Status(sctx); err != nil {
			return api.BondStatus{}, fmt.Errorf("bond status: %w", err)
		}
	}
	out := api.BondStatus{
		Bonded: st.Bonded, Interface: BondInterface, Datapath: kind, Mode: cfg.Mode, ProbeTarget: cfg.ProbeTarget,
		IntervalMS: ms(bc.Interval), UpDelayMS: ms(bc.UpDelay), Active: slices.Clone(st.Active), Failovers: failovers,
	}
	if run != nil {
		out.Mode = st.Mode.String()
	}
	if st.Bonded {
		out.MAC, out.MTU = st.Identity.MAC.String(), st.Identity.MTU
		for _, p := range st.Identity.Addrs {
			out.Addresses = append(out.Addresses, p.String())
		}
	}
	seen := map[string]bool{}
	member := func(n bonding.NICStatus) api.BondMember {
		seen[n.Name] = true
		return api.BondMember{Name: n.Name, State: n.State.String(), Primary: n.Primary, Active: n.Active,
			Carrier: n.Carrier, Since: n.Since, Reason: n.Reason, Failures: failures[n.Name]}
	}
	for _, m := range cfg.Members {
		i := slices.IndexFunc(st.NICs, func(n bonding.NICStatus) bool { return n.Name == m })
		if i >= 0 {
			out.Members = append(out.Members, member(st.NICs[i]))
			continue
		}
		why := pending[m]
		if why == "" {
			why = "not in the running bond"
		}
		seen[m] = true
		out.Members = append(out.Members, api.BondMember{Name: m, State: "missing", Reason: why, Failures: failures[m]})
	}
	for _, n := range st.NICs {
		if !seen[n.Name] {
			out.Members = append(out.Members, member(n)) // being added right now
		}
	}
	return api.NormBondStatus(out), nil
}

// observed is a datapath that reports the actions it carried out.
type observed struct {
	bonding.Datapath
	applied func(bonding.Action)
}

func (o observed) Apply(a bonding.Action) error {
	err := o.Datapath.Apply(a)
	if err == nil {
		o.applied(a)
	}
	return err
}

// applied and changed run on the agent's goroutine.
func (s *bondService) applied(a bonding.Action) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch a := a.(type) {
	case bonding.SetActive:
		s.stats.setActive(a.NICs)
	case bonding.CreateBond:
		s.stats.bonded = true
	case bonding.DestroyBond:
		s.stats.bonded = false
	}
}

func (s *bondService) changed(c bonding.Changed) {
	s.mu.Lock()
	s.stats.change(c)
	s.mu.Unlock()
}

// bondStats counts what the metrics and the status report: each member's
// state, failures (a member taken out of rotation) and failovers (a member
// that was carrying traffic taken out).
type bondStats struct {
	bonded    bool
	states    map[string]bonding.State
	active    []string
	failures  map[string]uint64
	failovers uint64
}

func newBondStats() bondStats {
	return bondStats{states: map[string]bonding.State{}, failures: map[string]uint64{}}
}

// change takes a controller state change. The controller reports a change
// before the new active set, so active still holds the old one here.
func (b *bondStats) change(c bonding.Changed) {
	if c.To == bonding.Gone {
		delete(b.states, c.NIC)
	} else {
		b.states[c.NIC] = c.To
	}
	if c.From == bonding.Up && c.To == bonding.Down {
		b.failures[c.NIC]++
		if slices.Contains(b.active, c.NIC) {
			b.failovers++
		}
	}
}

func (b *bondStats) setActive(nics []string) { b.active = slices.Clone(nics) }

// reset forgets the running bond (its agent stopped); counters stay.
func (b *bondStats) reset() {
	clear(b.states)
	b.active, b.bonded = nil, false
}

// bondCollector exports the bond's state at scrape time.
type bondCollector struct {
	s                                 *bondService
	bonded, memberUp, members, active *prometheus.Desc
	failures, failovers               *prometheus.Desc
}

func newBondCollector(s *bondService) bondCollector {
	return bondCollector{
		s:        s,
		bonded:   prometheus.NewDesc("ftnas_bond_bonded", "1 while the bond interface exists.", nil, nil),
		memberUp: prometheus.NewDesc("ftnas_bond_member_up", "1 while a configured bond member is up (healthy, in rotation); 0 when down, recovering, being checked or missing.", []string{"nic"}, nil),
		members:  prometheus.NewDesc("ftnas_bond_members", "Configured bond members by state (up, down, recovering, checking, missing).", []string{"state"}, nil),
		active:   prometheus.NewDesc("ftnas_bond_active_members", "Bond members carrying outgoing traffic.", nil, nil),
		failures: prometheus.NewDesc("ftnas_bond_member_failures_total", "Times a member was taken out of rotation (carrier lost, or silent) since nasd started.", []string{"nic"}, nil),
		failovers: prometheus.NewDesc("ftnas_bond_failovers_total",
			"Times a member carrying traffic was taken out of rotation since nasd started.", nil, nil),
	}
}

func (c bondCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bonded, c.memberUp, c.members, c.active, c.failures, c.failovers} {
		ch <- d
	}
}

func (c bondCollector) Collect(ch chan<- prometheus.Metric) {
	var out []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...))
	}
	s := c.s
	s.mu.Lock()
	names := slices.Clone(s.cfg.Members)
	for n := range s.stats.states {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	counts := map[string]int{"up": 0, "down": 0, "recovering": 0, "checking": 0, "missing": 0}
	for _, n := range names {
		state := "missing"
		if st, ok := s.stats.states[n]; ok {
			state = st.String()
		}
		counts[state]++
		up := 0.0
		if state == "up" {
			up = 1
		}
		gauge(c.memberUp, up, n)
		counter(c.failures, float64(s.stats.failures[n]), n)
	}
	for state, n := range counts {
		gauge(c.members, float64(n), state)
	}
	bonded := 0.0
	if s.stats.bonded {
		bonded = 1
	}
	gauge(c.bonded, bonded)
	gauge(c.active, float64(len(s.stats.active)))
	counter(c.failovers, float64(s.stats.failovers))
	s.mu.Unlock()
	for _, m := range out {
		ch <- m
	}
}

// The backend's BondBackend methods.

var _ api.BondBackend = (*backend)(nil)

var errNoBond = errors.New("bond: not started")

func (b *backend) BondStatus(ctx context.Context) (api.BondStatus, error) {
	if b.bond == nil {
		return api.BondStatus{}, errNoBond
	}
	return b.bond.status(ctx)
}

func (b *backend) AddBondMember(ctx context.Context, r api.BondAddRequest) (api.BondStatus, error) {
	if b.bond == nil {
		return api.BondStatus{}, errNoBond
	}
	return b.bond.add(ctx, r)
}

func (b *backend) RemoveBondMember(ctx context.Context, nic string) error {
	if b.bond == nil {
		return errNoBond
	}
	return b.bond.remove(ctx, nic)
}

func (b *backend) SetBondMode(ctx context.Context, mode string) (api.BondStatus, error) {
	if b.bond == nil {
		return api.BondStatus{}, errNoBond
	}
	return b.bond.setMode(ctx, mode)
}
