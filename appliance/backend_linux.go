package appliance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/fileid"
	"ftnas/appliance/smb"
	"ftnas/appliance/store"
	"ftnas/kernel/tickle"

	"golang.org/x/sys/unix"
)

// backend implements the local API over the store and the services.
type backend struct {
	cfg     *Config
	st      *store.Store
	ex      *exports
	smb     *smbService // nil with NoSMB
	nfs     *nfsService
	tree    *fileid.Tree
	started time.Time
	// cluster is this node's part of a pair; nil when stand-alone.
	cluster *clusterRuntime
	// serving is cluster for the NFS server's goroutines (set once the
	// pair runs, after NFS started).
	serving atomic.Pointer[clusterRuntime]
	// peerConns are the master's client connections from its last config
	// snapshot (this node tickles them when it takes over).
	peerConns atomic.Pointer[[]tickle.Conn]
	// restart asks Run to restart the services (cluster membership
	// changed).
	restart chan struct{}
	// bond is the network bond (bond_linux.go); it lives across restarts.
	bond *bondService
	// raid serves the md arrays (raid_linux.go); made by raidManager,
	// tests set it over a fake sysfs.
	raid *raidManager

	mu sync.Mutex // one configuration change at a time
	// genMu orders the changes of the write generation (writegen_linux.go).
	genMu sync.Mutex
}

var _ api.Backend = (*backend)(nil)

func (b *backend) Status(context.Context) (api.Status, error) {
	shares, err := b.st.ListShares()
	if err != nil {
		return api.Status{}, err
	}
	users, err := b.st.ListUsers()
	if err != nil {
		return api.Status{}, err
	}
	host, _ := os.Hostname()
	s := api.Status{
		Version: b.cfg.Version, Hostname: host, StartedAt: b.started, Volume: b.cfg.Volume,
		Shares: len(shares), Users: len(users),
	}
	var fs unix.Statfs_t
	if unix.Statfs(b.cfg.Volume, &fs) == nil {
		s.VolumeTotalBytes = fs.Blocks * uint64(fs.Bsize)
		s.VolumeFreeBytes = fs.Bavail * uint64(fs.Bsize)
	}
	s.Services = append(s.Services, api.Service{
		Name: "nfs", State: "running", Healthy: true, Since: b.started,
		Detail: fmt.Sprintf("NFSv3 on %s, portmapper on %s", b.cfg.hostPort(b.cfg.NFSPort), b.cfg.hostPort(b.cfg.PortmapPort)),
	})
	if b.smb != nil {
		h, ss := b.smb.status()
		detail := h.detail
		if ss.LastError != "" && !h.ok {
			detail += "; smbd: " + ss.LastError
		}
		if ss.Restarts > 0 {
			detail += fmt.Sprintf("; restarted %d times", ss.Restarts)
		}
		since := h.since
		if since.IsZero() {
			since = ss.Since
		}
		s.Services = append(s.Services, api.Service{Name: "smb", State: string(ss.Phase), Healthy: h.ok, Detail: detail, Since: since})
	} else {
		s.Services = append(s.Services, api.Service{Name: "smb", State: "disabled", Detail: "nasd runs with --no-smb"})
	}
	return s, nil
}

func (b *backend) apiShare(s store.Share) api.Share {
	out := api.Share{Name: s.Name, Path: s.Path, NFS: s.NFS, SMB: s.SMB, ReadOnly: s.ReadOnly, FSID: s.FSID, Clients: s.Clients, SyncReplication: s.SyncReplication}
	if out.Clients == nil {
		out.Clients = []string{}
	}
	host, _ := os.Hostname()
	if b.cfg.Listen != "" {
		host = b.cfg.Listen
	}
	if s.NFS {
		out.Export = "/" + s.Name
	}
	if s.SMB {
		out.UNC = `\\` + host + `\` + s.Name
	}
	return out
}

func (b *backend) ListShares(context.Context) ([]api.Share, error) {
	shares, err := b.st.ListShares()
	if err != nil {
		return nil, err
	}
	out := make([]api.Share, 0, len(shares))
	for _, s := range shares {
		out = append(out, b.apiShare(s))
	}
	return out, nil
}

func (b *backend) AddShare(ctx context.Context, r api.AddShareRequest) (api.Share, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := store.ValidateShareName(r.Name); err != nil {
		return api.Share{}, err
	}
	rel, err := store.CleanSharePath(r.Path)
	if err != nil {
		return api.Share{}, err
	}
	if err := store.ValidateClients(r.Clients); err != nil {
		return api.Share{}, err
	}
	if _, err := b.st.GetShare(r.Name); err == nil {
		return api.Share{}, fmt.Errorf("%w: share %q", store.ErrExists, r.Name)
	}
	_, statErr := os.Lstat(b.cfg.Volume + "/" + rel)
	abs, err := store.ResolveSharePath(b.cfg.Volume, rel, true)
	if err != nil {
		return api.Share{}, err
	}
	if errors.Is(statErr, os.ErrNotExist) {
		// A folder nasd made is open to every NAS user; files in it keep
		// their owners, whichever protocol made them.
		if err := os.Chmod(abs, 0o777); err != nil {
			return api.Share{}, fmt.Errorf("share %s: set mode of %s: %w", r.Name, abs, err)
		}
	}
	sh, err := b.st.AddShare(store.Share{
		Name: r.Name, Path: rel, NFS: r.NFS, SMB: r.SMB, ReadOnly: r.ReadOnly, SyncReplication: r.SyncReplication,
		RootSquash: true, Clients: r.Clients,
	})
	if err != nil {
		return api.Share{}, err
	}
	if err := b.applyShares(ctx); err != nil {
		return b.apiShare(sh), fmt.Errorf("share %s added, but applying it failed: %w", sh.Name, err)
	}
	return b.apiShare(sh), nil
}

func (b *backend) RemoveShare(ctx context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.st.RemoveShare(name); err != nil {
		return err
	}
	return b.applyShares(ctx)
}

// applyShares pushes the store's shares to the NFS exports and smb.conf.
func (b *backend) applyShares(ctx context.Context) error {
	shares, err := b.st.ListShares()
	if err != nil {
		return err
	}
	if err := b.ex.Set(shares); err != nil {
		return err
	}
	if b.smb != nil {
		return b.smb.apply(ctx, shares)
	}
	return nil
}

func (b *backend) ListUsers(context.Context) ([]api.User, error) {
	users, err := b.st.ListUsers()
	if err != nil {
		return nil, err
	}
	out := make([]api.User, 0, len(users))
	for _, u := range users {
		out = append(out, api.User{Name: u.Name, UID: u.UID, GID: u.GID})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (b *backend) AddUser(ctx context.Context, r api.AddUserRequest) (api.User, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := store.ValidateUserName(r.Name); err != nil {
		return api.User{}, err
	}
	if err := smb.CheckUserName(r.Name); err != nil {
		return api.User{}, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	if err := store.ValidatePassword(r.Password); err != nil {
		return api.User{}, err
	}
	if _, err := b.st.GetUser(r.Name); err == nil {
		return api.User{}, fmt.Errorf("%w: user %q", store.ErrExists, r.Name)
	}
	if _, err := user.Lookup(r.Name); err == nil {
		return api.User{}, fmt.Errorf("%w: a system account named %q already exists; pick another name", store.ErrExists, r.Name)
	}
	u := store.User{Name: r.Name}
	if err := u.SetPassword(r.Password); err != nil {
		return api.User{}, err
	}
	// The store allocates UIDs from 10000 up and never reuses one; skip
	// any that the system already uses for somebody else.
	var err error
	for tries := 0; ; tries++ {
		var got store.User
		got, err = b.st.AddUser(u)
		if err != nil {
			return api.User{}, err
		}
		if !idTaken(got.UID, got.GID) {
			u = got
			break
		}
		if err := b.st.RemoveUser(got.Name); err != nil {
			return api.User{}, err
		}
		if tries == 1000 {
			return api.User{}, fmt.Errorf("add user %s: no free UID/GID near %d", u.Name, got.UID)
		}
	}
	undo := func(cause error) (api.User, error) {
		if b.smb != nil {
			b.smb.passdb.DeleteUser(ctx, u.Name)
		}
		removeAccount(ctx, u.Name)
		if err := b.st.RemoveUser(u.Name); err != nil {
			cause = errors.Join(cause, err)
		}
		return api.User{}, fmt.Errorf("add user %s: %w", u.Name, cause)
	}
	if err := ensureAccount(ctx, u.Name, u.UID, u.GID); err != nil {
		return undo(err)
	}
	if b.smb != nil {
		if err := b.smb.passdb.SetUser(ctx, u.Name, u.NTHash); err != nil {
			return undo(err)
		}
	}
	return api.User{Name: u.Name, UID: u.UID, GID: u.GID}, nil
}

// idTaken reports whether a system account or group already has uid or gid.
func idTaken(uid, gid uint32) bool {
	if _, err := user.LookupId(fmt.Sprint(uid)); err == nil {
		return true
	}
	_, err := user.LookupGroupId(fmt.Sprint(gid))
	return err == nil
}

func (b *backend) RemoveUser(ctx context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, err := b.st.GetUser(name)
	if err != nil {
		return err
	}
	if b.smb != nil {
		if err := b.smb.passdb.DeleteUser(ctx, u.Name); err != nil {
			return err
		}
	}
	if err := removeAccount(ctx, u.Name); err != nil {
		return err
	}
	return b.st.RemoveUser(u.Name)
}

func (b *backend) SetPassword(ctx context.Context, name, password string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := store.ValidatePassword(password); err != nil {
		return err
	}
	u, err := b.st.GetUser(name)
	if err != nil {
		return err
	}
	if err := u.SetPassword(password); err != nil {
		return err
	}
	if b.smb != nil {
		if err := b.smb.passdb.SetUser(ctx, u.Name, u.NTHash); err != nil {
			return err
		}
	}
	_, err = b.st.UpdateUser(u)
	return err
}
