package appliance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"ftnas/appliance/api"
	"ftnas/appliance/store"
	"ftnas/bonding"
)

// The bond's API: members added and removed, the mode, the status
// (bond_linux.go runs the bond).

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
