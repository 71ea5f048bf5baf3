package api

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Share is a share as the API shows it.
type Share struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	NFS      bool   `json:"nfs"`
	SMB      bool   `json:"smb"`
	ReadOnly bool   `json:"read_only"`
	// SyncReplication: in a pair, NFS commits wait for the standby.
	SyncReplication bool   `json:"sync_replication"`
	FSID            uint64 `json:"fsid"`
	// Export is the NFS export path, "/NAME", when NFS is on; else "".
	Export string `json:"export"`
	// UNC is `\\host\NAME` when SMB is on; else "".
	UNC string `json:"unc"`
	// Clients is the NFS allow-list; empty means every client.
	Clients []string `json:"clients"`
}

// AddShareRequest asks for a new share. When neither NFS nor SMB is set,
// the handler sets both before the Backend sees it.
type AddShareRequest struct {
	Name            string   `json:"name"`
	Path            string   `json:"path"`
	NFS             bool     `json:"nfs"`
	SMB             bool     `json:"smb"`
	ReadOnly        bool     `json:"read_only"`
	SyncReplication bool     `json:"sync_replication"`
	Clients         []string `json:"clients"`
}

// User is a user as the API shows it.
type User struct {
	Name string `json:"name"`
	UID  uint32 `json:"uid"`
	GID  uint32 `json:"gid"`
}

// AddUserRequest asks for a new user.
type AddUserRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// String hides the password from %v and friends.
func (r AddUserRequest) String() string {
	return fmt.Sprintf("{Name:%q Password:<redacted>}", r.Name)
}

// GoString hides the password from %#v.
func (r AddUserRequest) GoString() string { return "api.AddUserRequest" + r.String() }

// LogValue hides the password from slog.
func (r AddUserRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", r.Name))
}

// PasswordRequest sets a user's password.
type PasswordRequest struct {
	Password string `json:"password"`
}

// String hides the password from %v and friends.
func (PasswordRequest) String() string { return "{Password:<redacted>}" }

// GoString hides the password from %#v.
func (PasswordRequest) GoString() string { return "api.PasswordRequest{Password:<redacted>}" }

// LogValue hides the password from slog.
func (PasswordRequest) LogValue() slog.Value { return slog.StringValue("<redacted>") }

// Service is the state of one of nasd's services (smb, nfs, ...).
type Service struct {
	Name    string    `json:"name"`
	State   string    `json:"state"`
	Healthy bool      `json:"healthy"`
	Detail  string    `json:"detail"`
	Since   time.Time `json:"since"`
}

// Status is the node's overall state.
type Status struct {
	Version          string    `json:"version"`
	Hostname         string    `json:"hostname"`
	StartedAt        time.Time `json:"started_at"`
	Volume           string    `json:"volume"`
	VolumeTotalBytes uint64    `json:"volume_total_bytes"`
	VolumeFreeBytes  uint64    `json:"volume_free_bytes"`
	Shares           int       `json:"shares"`
	Users            int       `json:"users"`
	Services         []Service `json:"services"`
}

// Backend is what the API serves; the appliance package implements it.
// Errors should wrap store.ErrInvalid, store.ErrNotFound or
// store.ErrExists where they apply, so clients get the right status.
type Backend interface {
	Status(ctx context.Context) (Status, error)
	ListShares(ctx context.Context) ([]Share, error)
	AddShare(ctx context.Context, r AddShareRequest) (Share, error)
	RemoveShare(ctx context.Context, name string) error
	ListUsers(ctx context.Context) ([]User, error)
	AddUser(ctx context.Context, r AddUserRequest) (User, error)
	RemoveUser(ctx context.Context, name string) error
	SetPassword(ctx context.Context, name, password string) error
}
