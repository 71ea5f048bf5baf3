package appliance

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"strings"

	"ftnas/appliance/store"
)

// accountComment marks the system accounts nasd made, so it never adopts or
// removes an account somebody else made.
const accountComment = "ftnas user"

// ensureAccount makes the system account (and its group) of a NAS user, with
// the UID and GID the store allocated, no home and no login shell. An account
// of that name that nasd did not make is an error.
func ensureAccount(ctx context.Context, name string, uid, gid uint32) error {
	err := makeAccount(ctx, name, uid, gid)
	if err != nil && !errors.Is(err, store.ErrExists) && makeAccount(ctx, name, uid, gid) == nil {
		// Made meanwhile, the same, by another nasd on this host (the
		// lab's pair shares /etc/passwd; config sync brings the user
		// to the standby as the master makes it).
		return nil
	}
	return err
}

func makeAccount(ctx context.Context, name string, uid, gid uint32) error {
	if u, err := user.Lookup(name); err == nil {
		if u.Uid != strconv.Itoa(int(uid)) || !strings.HasPrefix(u.Name, accountComment) {
			return fmt.Errorf("%w: a system account named %q already exists (uid %s) and was not made by ftnas; pick another name", store.ErrExists, name, u.Uid)
		}
		return nil
	}
	if g, err := user.LookupGroup(name); err == nil && g.Gid != strconv.Itoa(int(gid)) {
		return fmt.Errorf("%w: a system group named %q already exists (gid %s); pick another name", store.ErrExists, name, g.Gid)
	} else if err != nil {
		if err := run(ctx, "groupadd", "-g", fmt.Sprint(gid), name); err != nil {
			return err
		}
	}
	return run(ctx, "useradd", "-u", fmt.Sprint(uid), "-g", fmt.Sprint(gid), "-M", "-N",
		"-d", "/nonexistent", "-s", "/usr/sbin/nologin", "-c", accountComment, name)
}

// removeAccount deletes a system account nasd made, and its group.
func removeAccount(ctx context.Context, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return nil // already gone
	}
	if !strings.HasPrefix(u.Name, accountComment) {
		return fmt.Errorf("system account %q was not made by ftnas; not removing it", name)
	}
	if err := run(ctx, "userdel", name); err != nil {
		return err
	}
	if _, err := user.LookupGroup(name); err == nil {
		return run(ctx, "groupdel", name)
	}
	return nil
}

// ensureServiceAccount makes a system account for nasd's own use (the SMB
// health probe), with a system UID.
func ensureServiceAccount(ctx context.Context, name string) error {
	if _, err := user.Lookup(name); err == nil {
		return nil
	}
	return run(ctx, "useradd", "--system", "-M", "-U", "-d", "/nonexistent", "-s", "/usr/sbin/nologin",
		"-c", "ftnas service account", name)
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), strings.TrimSpace(string(out)))
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
