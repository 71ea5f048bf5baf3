package apitest

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"ftnas/appliance/api"
	"ftnas/appliance/store"
)

// RaidFake is a Fake that also serves the md arrays (api.RaidBackend).
// Tests set Arrays; scrub and replace refuse what nasd refuses, with the
// store's sentinels, change the array as md would at the start, and are
// recorded in Actions ("scrub md0", "replace md0 sdb2 sdc2").
type RaidFake struct {
	*Fake
	Arrays  []api.RaidArray
	Actions []string
}

var _ api.RaidBackend = (*RaidFake)(nil)

// NewRaidFake returns a backend without md arrays.
func NewRaidFake(host string) *RaidFake {
	return &RaidFake{Fake: NewFake(host)}
}

// SetArrays replaces the arrays RaidStatus reports.
func (f *RaidFake) SetArrays(arrays ...api.RaidArray) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Arrays = arrays
}

// Done returns the recorded actions.
func (f *RaidFake) Done() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.Actions)
}

func (f *RaidFake) find(op, name string) (*api.RaidArray, error) {
	for i := range f.Arrays {
		if f.Arrays[i].Name == name {
			return &f.Arrays[i], nil
		}
	}
	return nil, fmt.Errorf("raid %s %s: %w: no such md array", op, name, store.ErrNotFound)
}

// RaidStatus implements api.RaidBackend.
func (f *RaidFake) RaidStatus(context.Context) (api.RaidStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return api.RaidStatus{}, f.fail
	}
	st := api.RaidStatus{}
	for _, a := range f.Arrays {
		a.Members = slices.Clone(a.Members)
		st.Arrays = append(st.Arrays, a)
	}
	return st, nil
}

// ScrubRaid implements api.RaidBackend.
func (f *RaidFake) ScrubRaid(_ context.Context, array string) (api.RaidArray, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return api.RaidArray{}, f.fail
	}
	a, err := f.find("scrub", array)
	if err != nil {
		return api.RaidArray{}, err
	}
	switch {
	case a.Degraded > 0:
		return api.RaidArray{}, fmt.Errorf("%w raid scrub %s: the array is degraded (%d missing); replace the failed member first", store.ErrInvalid, array, a.Degraded)
	case a.SyncAction != "idle":
		return api.RaidArray{}, fmt.Errorf("%w raid scrub %s: busy with %s; try again when it is idle", store.ErrInvalid, array, a.SyncAction)
	}
	a.SyncAction, a.SyncProgress, a.ETASeconds = "check", 0, -1
	f.Actions = append(f.Actions, "scrub "+array)
	return *a, nil
}

// ReplaceRaidMember implements api.RaidBackend.
func (f *RaidFake) ReplaceRaidMember(_ context.Context, array string, r api.RaidReplaceRequest) (api.RaidArray, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return api.RaidArray{}, f.fail
	}
	a, err := f.find("replace", array)
	if err != nil {
		return api.RaidArray{}, err
	}
	old, nw := strings.TrimPrefix(r.Old, "/dev/"), strings.TrimPrefix(r.New, "/dev/")
	if old == "" || nw == "" {
		return api.RaidArray{}, fmt.Errorf("%w raid replace %s: name the member (old) and the new device (new)", store.ErrInvalid, array)
	}
	has := func(n string) bool {
		return slices.ContainsFunc(a.Members, func(m api.RaidMember) bool { return m.Name == n })
	}
	if !has(old) {
		return api.RaidArray{}, fmt.Errorf("raid replace %s: %w: %s is not a member", array, store.ErrNotFound, old)
	}
	if has(nw) {
		return api.RaidArray{}, fmt.Errorf("%w raid replace %s: %s is already a member", store.ErrInvalid, array, nw)
	}
	a.Members = append(slices.Clone(a.Members), api.RaidMember{Name: nw, Slot: -1, State: []string{"spare", "replacement"}})
	a.SyncAction, a.SyncProgress, a.ETASeconds = "recover", 0, -1
	f.Actions = append(f.Actions, fmt.Sprintf("replace %s %s %s", array, old, nw))
	return *a, nil
}
