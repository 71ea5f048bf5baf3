//go:build linux

package smb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Passdb manages the users in smbd's tdbsam passdb through pdbedit.
// Its methods are safe for concurrent use; they are serialized.
type Passdb struct {
	confPath string
	log      *slog.Logger
	pdbedit  string // pdbedit binary
	now      func() time.Time

	mu sync.Mutex
}

// NewPassdb returns a Passdb for the smb.conf at confPath (which names the
// tdbsam file). log may be nil.
func NewPassdb(confPath string, log *slog.Logger) *Passdb {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Passdb{confPath: confPath, log: log, pdbedit: "pdbedit", now: time.Now}
}

// SetUser adds name to the passdb, or updates it, with the given NT hash
// (32 hex digits). The unix account name must already exist. The hash is
// passed to pdbedit in an anonymous memory file, never in argv or on disk.
func (p *Passdb) SetUser(ctx context.Context, name, ntHashHex string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.setUser(ctx, name, ntHashHex)
}

func (p *Passdb) setUser(ctx context.Context, name, ntHashHex string) error {
	if err := CheckUserName(name); err != nil {
		return fmt.Errorf("smb: passdb set user: %w", err)
	}
	h, err := normalizeNTHash(ntHashHex)
	if err != nil {
		return fmt.Errorf("smb: passdb set user %q: %w", name, err)
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("smb: passdb set user %q: unix account: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return fmt.Errorf("smb: passdb set user %q: unix uid %q: %w", name, u.Uid, err)
	}
	f, err := memFile("ftnas-smbpasswd", []byte(smbpasswdLine(name, uid, h, p.now())))
	if err != nil {
		return fmt.Errorf("smb: passdb set user %q: %w", name, err)
	}
	defer f.Close()
	// The child sees the memfd as fd 3 (first of ExtraFiles).
	if _, err := p.run(ctx, []*os.File{f}, "-i", "smbpasswd:/dev/fd/3"); err != nil {
		return fmt.Errorf("smb: passdb set user %q: import: %w", name, err)
	}
	// pdbedit -i exits 0 even when it skipped the entry; check the result.
	out, err := p.run(ctx, nil, "-L", "-w", "-u", name)
	if err != nil {
		return fmt.Errorf("smb: passdb set user %q: verify: %w", name, err)
	}
	got, err := parseSmbpasswdList(out)
	if err != nil {
		return fmt.Errorf("smb: passdb set user %q: verify: %w", name, err)
	}
	if got[name] != h {
		return fmt.Errorf("smb: passdb set user %q: pdbedit import did not store the new hash", name)
	}
	p.log.Info("smb passdb: user set", "user", name)
	return nil
}

// DeleteUser removes name from the passdb. Deleting a user that is not
// there is not an error.
func (p *Passdb) DeleteUser(ctx context.Context, name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := CheckUserName(name); err != nil {
		return fmt.Errorf("smb: passdb delete user: %w", err)
	}
	names, err := p.listUsers(ctx)
	if err != nil {
		return fmt.Errorf("smb: passdb delete user %q: %w", name, err)
	}
	found := false
	for _, n := range names {
		found = found || n == name
	}
	if !found {
		return nil
	}
	return p.deleteUser(ctx, name)
}

func (p *Passdb) deleteUser(ctx context.Context, name string) error {
	if _, err := p.run(ctx, nil, "-x", "-u", name); err != nil {
		return fmt.Errorf("smb: passdb delete user %q: %w", name, err)
	}
	p.log.Info("smb passdb: user deleted", "user", name)
	return nil
}

// ListUsers returns the passdb's user names, sorted.
func (p *Passdb) ListUsers(ctx context.Context) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	names, err := p.listUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("smb: passdb list users: %w", err)
	}
	return names, nil
}

func (p *Passdb) listUsers(ctx context.Context) ([]string, error) {
	out, err := p.run(ctx, nil, "-L")
	if err != nil {
		return nil, err
	}
	return parseUserList(out)
}

// Sync makes the passdb hold exactly the users in want (name -> NT hash
// hex): it adds missing users, updates changed hashes and deletes users
// not in want. want is validated before anything changes. It carries on
// past a failing user and returns all failures joined.
func (p *Passdb) Sync(ctx context.Context, want map[string]string) error {
	norm, err := normalizeWant(want)
	if err != nil {
		return fmt.Errorf("smb: passdb sync: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out, err := p.run(ctx, nil, "-L", "-w")
	if err != nil {
		return fmt.Errorf("smb: passdb sync: list: %w", err)
	}
	have, err := parseSmbpasswdList(out)
	if err != nil {
		return fmt.Errorf("smb: passdb sync: list: %w", err)
	}
	set, del := planSync(have, norm)
	var errs []error
	for _, name := range set {
		if err := p.setUser(ctx, name, norm[name]); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range del {
		if err := p.deleteUser(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// run runs pdbedit with the config and args. Its stdout is returned; on
// failure the error carries stderr (never stdout, which may hold hashes).
func (p *Passdb) run(ctx context.Context, extra []*os.File, args ...string) ([]byte, error) {
	argv := append([]string{"-s", p.confPath}, args...)
	cmd := exec.CommandContext(ctx, p.pdbedit, argv...)
	cmd.ExtraFiles = extra
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 512 {
			msg = msg[:512] + "..."
		}
		if msg != "" {
			return nil, fmt.Errorf("pdbedit %s: %w: %s", strings.Join(args, " "), err, msg)
		}
		return nil, fmt.Errorf("pdbedit %s: %w", strings.Join(args, " "), err)
	}
	return stdout.Bytes(), nil
}

// memFile returns an anonymous in-memory file holding data, positioned at
// its start. Nothing reaches a file system.
func memFile(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("write memfd: %w", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("seek memfd: %w", err)
	}
	return f, nil
}
