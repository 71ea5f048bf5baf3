// Package apitest provides an in-memory api.Backend for tests of the API,
// nasctl and the web console. It validates with the store's rules, so it
// fails the way the real backend does.
package apitest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"ftnas/appliance/api"
	"ftnas/appliance/store"
)

// Fake is an in-memory api.Backend. The zero value is not usable; call
// NewFake.
type Fake struct {
	mu        sync.Mutex
	host      string
	status    api.Status
	shares    map[string]api.Share // by lower-case name
	users     map[string]api.User
	passwords map[string]string // test-only: the last password set per user
	nextFSID  uint64
	nextUID   uint32
	fail      error
}

var _ api.Backend = (*Fake)(nil)

// NewFake returns an empty backend whose UNC paths name host.
func NewFake(host string) *Fake {
	return &Fake{
		host:      host,
		status:    api.Status{Hostname: host},
		shares:    map[string]api.Share{},
		users:     map[string]api.User{},
		passwords: map[string]string{},
		nextFSID:  store.FirstFSID,
		nextUID:   store.FirstUID,
	}
}

// SetStatus sets what Status returns (Shares and Users are counted).
func (f *Fake) SetStatus(st api.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = st
}

// FailWith makes every call return err (nil restores normal service).
func (f *Fake) FailWith(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// Password returns the last password set for a user (tests only).
func (f *Fake) Password(name string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pw, ok := f.passwords[name]
	return pw, ok
}

// Status implements api.Backend.
func (f *Fake) Status(context.Context) (api.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return api.Status{}, f.fail
	}
	st := f.status
	st.Shares, st.Users = len(f.shares), len(f.users)
	st.Services = append([]api.Service{}, st.Services...)
	return st, nil
}

// ListShares implements api.Backend.
func (f *Fake) ListShares(context.Context) ([]api.Share, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	out := []api.Share{}
	for _, s := range f.shares {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out, nil
}

// AddShare implements api.Backend.
func (f *Fake) AddShare(_ context.Context, r api.AddShareRequest) (api.Share, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return api.Share{}, f.fail
	}
	if err := store.ValidateShareName(r.Name); err != nil {
		return api.Share{}, err
	}
	p, err := store.CleanSharePath(r.Path)
	if err != nil {
		return api.Share{}, err
	}
	if err := store.ValidateClients(r.Clients); err != nil {
		return api.Share{}, err
	}
	if !r.NFS && !r.SMB {
		return api.Share{}, fmt.Errorf("%w share %q: export it over NFS, SMB or both", store.ErrInvalid, r.Name)
	}
	key := strings.ToLower(r.Name)
	if old, ok := f.shares[key]; ok {
		return api.Share{}, fmt.Errorf("share %q: %w (as %q)", r.Name, store.ErrExists, old.Name)
	}
	s := api.Share{Name: r.Name, Path: p, NFS: r.NFS, SMB: r.SMB, ReadOnly: r.ReadOnly, FSID: f.nextFSID,
		Clients: append([]string{}, r.Clients...)}
	f.nextFSID++
	if s.NFS {
		s.Export = "/" + s.Name
	}
	if s.SMB {
		s.UNC = `\\` + f.host + `\` + s.Name
	}
	f.shares[key] = s
	return s, nil
}

// RemoveShare implements api.Backend.
func (f *Fake) RemoveShare(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	key := strings.ToLower(name)
	if _, ok := f.shares[key]; !ok {
		return fmt.Errorf("share %q: %w", name, store.ErrNotFound)
	}
	delete(f.shares, key)
	return nil
}

// ListUsers implements api.Backend.
func (f *Fake) ListUsers(context.Context) ([]api.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	out := []api.User{}
	for _, u := range f.users {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// AddUser implements api.Backend.
func (f *Fake) AddUser(_ context.Context, r api.AddUserRequest) (api.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return api.User{}, f.fail
	}
	if err := store.ValidateUserName(r.Name); err != nil {
		return api.User{}, err
	}
	if err := store.ValidatePassword(r.Password); err != nil {
		return api.User{}, err
	}
	if _, ok := f.users[r.Name]; ok {
		return api.User{}, fmt.Errorf("user %q: %w", r.Name, store.ErrExists)
	}
	u := api.User{Name: r.Name, UID: f.nextUID, GID: f.nextUID}
	f.nextUID++
	f.users[r.Name] = u
	f.passwords[r.Name] = r.Password
	return u, nil
}

// RemoveUser implements api.Backend.
func (f *Fake) RemoveUser(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	if _, ok := f.users[name]; !ok {
		return fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	delete(f.users, name)
	delete(f.passwords, name)
	return nil
}

// SetPassword implements api.Backend.
func (f *Fake) SetPassword(_ context.Context, name, password string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	if _, ok := f.users[name]; !ok {
		return fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	if err := store.ValidatePassword(password); err != nil {
		return err
	}
	f.passwords[name] = password
	return nil
}
