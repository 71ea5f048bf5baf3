package api_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ftnas/appliance/api"
	"ftnas/appliance/api/apitest"
	"ftnas/appliance/store"
)

func TestClientRoundTrip(t *testing.T) {
	fake := apitest.NewFake("nas1")
	sock := apitest.Serve(t, fake, nil)
	c := api.NewClient(sock)
	defer c.Close()
	ctx := context.Background()

	sh, err := c.AddShare(ctx, api.AddShareRequest{Name: "Media", Path: "media/"})
	if err != nil {
		t.Fatal(err)
	}
	if sh.Path != "media" || !sh.NFS || !sh.SMB || sh.Export != "/Media" {
		t.Errorf("AddShare = %+v", sh)
	}
	_, err = c.AddShare(ctx, api.AddShareRequest{Name: "media", Path: "x"})
	var ae *api.Error
	if !errors.Is(err, store.ErrExists) || !errors.As(err, &ae) || ae.StatusCode != 409 || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("duplicate AddShare = %#v", err)
	}
	if _, err := c.AddShare(ctx, api.AddShareRequest{Name: "x", Path: "../x"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("invalid AddShare = %v", err)
	}
	shares, err := c.ListShares(ctx)
	if err != nil || len(shares) != 1 || shares[0].Name != "Media" {
		t.Errorf("ListShares = %+v, %v", shares, err)
	}
	if err := c.RemoveShare(ctx, "Media"); err != nil {
		t.Error(err)
	}
	if err := c.RemoveShare(ctx, "Media"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RemoveShare twice = %v", err)
	}
	// Names are escaped in the path.
	if err := c.RemoveShare(ctx, "a/b c?"); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), `"a/b c?"`) {
		t.Errorf("RemoveShare(odd name) = %v", err)
	}

	u, err := c.AddUser(ctx, api.AddUserRequest{Name: "alice", Password: "pw one"})
	if err != nil || u.UID != 10000 || u.GID != 10000 {
		t.Fatalf("AddUser = %+v, %v", u, err)
	}
	if err := c.SetPassword(ctx, "alice", "pw two"); err != nil {
		t.Fatal(err)
	}
	if pw, _ := fake.Password("alice"); pw != "pw two" {
		t.Errorf("password on server = %q", pw)
	}
	users, err := c.ListUsers(ctx)
	if err != nil || len(users) != 1 || users[0].Name != "alice" {
		t.Errorf("ListUsers = %+v, %v", users, err)
	}
	if err := c.RemoveUser(ctx, "alice"); err != nil {
		t.Error(err)
	}
	if err := c.SetPassword(ctx, "alice", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetPassword(removed) = %v", err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Hostname != "nas1" || st.Shares != 0 {
		t.Errorf("Status = %+v, %v", st, err)
	}
	fake.FailWith(errors.New("boom"))
	_, err = c.Status(ctx)
	if !errors.As(err, &ae) || ae.StatusCode != 500 || err.Error() != "boom" || errors.Is(err, store.ErrInvalid) {
		t.Errorf("server failure = %#v", err)
	}
}

func TestClientNoServer(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nasd.sock")
	_, err := api.NewClient(missing).Status(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is nasd running? socket "+missing) {
		t.Errorf("missing socket = %v", err)
	}
	// A stale socket: bound, then the listener closed without unlinking.
	stale := filepath.Join(dir, "stale.sock")
	makeStale(t, stale)
	_, err = api.NewClient(stale).ListShares(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is nasd running? socket "+stale) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("refused = %v", err)
	}
}

func makeStale(t *testing.T, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("no stale socket: %v", err)
	}
}

func TestListen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	sock := filepath.Join(dir, "nasd.sock")
	l, err := api.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, %v; want 0600", fi.Mode(), err)
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Errorf("created parent mode = %v, want 0700", di.Mode().Perm())
	}
	// Live: refused, and the live socket survives.
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := api.Listen(sock); err == nil || !strings.Contains(err.Error(), "another nasd is serving "+sock) {
		t.Errorf("second Listen = %v", err)
	}
	if c, err := net.Dial("unix", sock); err != nil {
		t.Errorf("first listener hurt: %v", err)
	} else {
		c.Close()
	}
	l.Close()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left after Close: %v", err)
	}

	// Stale: replaced.
	makeStale(t, sock)
	l2, err := api.Listen(sock)
	if err != nil {
		t.Fatalf("Listen over stale socket: %v", err)
	}
	l2.Close()

	// Not a socket: left alone.
	os.WriteFile(sock, []byte("precious"), 0o600)
	if _, err := api.Listen(sock); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a file = %v", err)
	}
	if b, _ := os.ReadFile(sock); string(b) != "precious" {
		t.Error("Listen clobbered a regular file")
	}

	long := "/" + strings.Repeat("x", 120) + "/nasd.sock"
	if _, err := api.Listen(long); err == nil || !strings.Contains(err.Error(), "at most 107") {
		t.Errorf("Listen(long) = %v", err)
	}
}
