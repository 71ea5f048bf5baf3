package smb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hirochachacha/go-smb2"
)

// DefaultProbeTimeout bounds Probe when ctx has no deadline.
const DefaultProbeTimeout = 10 * time.Second

// Probe checks that smbd at addr (host:port) serves files: it dials TCP,
// negotiates SMB2 and logs in with NTLM as user, mounts share, lists its
// root, unmounts and logs off. The error names the step that failed
// ("dial", "login", "mount", "readdir", "unmount", "logoff").
func Probe(ctx context.Context, addr, user, password, share string) (err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultProbeTimeout)
		defer cancel()
	}
	step := func(name string, err error) error {
		return fmt.Errorf("smb probe %s: %s: %w", addr, name, err)
	}
	switch {
	case user == "":
		return step("login", errors.New("user is empty"))
	case share == "":
		return step("mount", errors.New("share is empty"))
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return step("dial", err)
	}
	defer conn.Close()
	// go-smb2 does not watch ctx during I/O after the dial; a deadline on
	// the connection and closing it on cancel bound every step.
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return step("dial", err)
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	dialer := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: user, Password: password}}
	sess, err := dialer.DialContext(ctx, conn)
	if err != nil {
		return step("login (negotiate and NTLM session setup as "+user+")", err)
	}
	sess = sess.WithContext(ctx)
	defer func() {
		if lerr := sess.Logoff(); lerr != nil && err == nil {
			err = step("logoff", lerr)
		}
	}()
	fs, err := sess.Mount(share)
	if err != nil {
		return step("mount "+share, err)
	}
	fs = fs.WithContext(ctx)
	_, rerr := fs.ReadDir(".")
	uerr := fs.Umount()
	if rerr != nil {
		return step("readdir "+share, rerr)
	}
	if uerr != nil {
		return step("unmount "+share, uerr)
	}
	return nil
}
