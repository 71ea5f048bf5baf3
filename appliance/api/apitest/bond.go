package apitest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/store"
)

// BondFake is a Fake that also serves the bond (api.BondBackend) over a
// set of pretend NICs. It refuses what nasd refuses, with the store's
// sentinels.
type BondFake struct {
	*Fake
	nics      map[string]bool // name -> carrier
	members   []api.BondMember
	mode      string
	target    string
	failovers uint64
	addrs     []string
	now       time.Time
}

var _ api.BondBackend = (*BondFake)(nil)

// NewBondFake returns an empty backend with an empty, unbonded bond whose
// primary will lend it addrs; now stamps state changes.
func NewBondFake(host string, now time.Time, addrs ...string) *BondFake {
	return &BondFake{Fake: NewFake(host), nics: map[string]bool{}, mode: store.BondLoadBalance, addrs: addrs, now: now}
}

// SetNIC makes a pretend NIC exist, with or without carrier.
func (f *BondFake) SetNIC(name string, carrier bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nics[name] = carrier
}

// Fail takes a member out of rotation as the fault detector would.
func (f *BondFake) Fail(name, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.members {
		m := &f.members[i]
		if m.Name == name && m.State != "down" {
			if m.State == "up" {
				f.failovers++
			}
			m.State, m.Reason, m.Since, m.Carrier = "down", reason, f.now, false
			m.Failures++
		}
	}
}

func (f *BondFake) status() api.BondStatus {
	st := api.BondStatus{
		Bonded: len(f.members) > 0, Interface: "bond0", Datapath: store.BondDatapathUserland, Mode: f.mode,
		ProbeTarget: f.target, IntervalMS: 100, UpDelayMS: 500, Members: []api.BondMember{}, Active: []string{},
		Addresses: []string{}, Failovers: f.failovers,
	}
	if st.Bonded {
		st.MAC, st.MTU, st.Addresses = "02:00:00:00:00:01", 1500, slices.Clone(f.addrs)
	}
	for i, m := range f.members {
		m.Primary = i == 0
		m.Active = m.State == "up" && (f.mode == store.BondLoadBalance || len(st.Active) == 0)
		if m.Active {
			st.Active = append(st.Active, m.Name)
		}
		st.Members = append(st.Members, m)
	}
	return st
}

// BondStatus implements api.BondBackend.
func (f *BondFake) BondStatus(context.Context) (api.BondStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return api.BondStatus{}, f.fail
	}
	return f.status(), nil
}

// AddBondMember implements api.BondBackend.
func (f *BondFake) AddBondMember(_ context.Context, r api.BondAddRequest) (api.BondStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return api.BondStatus{}, f.fail
	}
	if err := store.ValidateNICName(r.NIC); err != nil {
		return api.BondStatus{}, err
	}
	if _, err := store.ParseProbeTarget(r.ProbeTarget); err != nil {
		return api.BondStatus{}, err
	}
	if slices.ContainsFunc(f.members, func(m api.BondMember) bool { return m.Name == r.NIC }) {
		return api.BondStatus{}, fmt.Errorf("bond add %s: %w: already a member", r.NIC, store.ErrExists)
	}
	if r.ProbeTarget != "" && r.ProbeTarget != f.target && len(f.members) > 0 {
		return api.BondStatus{}, fmt.Errorf("%w bond add %s: the bond probes %q; remove every member to change the probe target", store.ErrInvalid, r.NIC, f.target)
	}
	carrier, ok := f.nics[r.NIC]
	switch {
	case !ok:
		return api.BondStatus{}, fmt.Errorf("bond add %s: %w: no such interface", r.NIC, store.ErrNotFound)
	case !carrier:
		return api.BondStatus{}, fmt.Errorf("%w bond add %s: no carrier (cable unplugged or switch port down?)", store.ErrInvalid, r.NIC)
	}
	if r.ProbeTarget != "" {
		f.target = r.ProbeTarget
	}
	f.members = append(f.members, api.BondMember{Name: r.NIC, State: "up", Carrier: true, Since: f.now, Reason: "added"})
	return f.status(), nil
}

// RemoveBondMember implements api.BondBackend.
func (f *BondFake) RemoveBondMember(_ context.Context, nic string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	i := slices.IndexFunc(f.members, func(m api.BondMember) bool { return m.Name == nic })
	if i < 0 {
		return fmt.Errorf("bond rm %s: %w: not a member of the bond", nic, store.ErrNotFound)
	}
	f.members = slices.Delete(f.members, i, i+1)
	return nil
}

// SetBondMode implements api.BondBackend.
func (f *BondFake) SetBondMode(_ context.Context, mode string) (api.BondStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return api.BondStatus{}, f.fail
	}
	if _, err := store.ValidateBond(store.Bond{Mode: mode}); err != nil || mode == "" {
		return api.BondStatus{}, fmt.Errorf("%w bond mode %q: use load-balance or failover", store.ErrInvalid, mode)
	}
	f.mode = mode
	return f.status(), nil
}
