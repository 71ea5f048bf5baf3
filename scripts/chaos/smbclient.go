package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"time"

	"github.com/hirochachacha/go-smb2"
)

// ModeSMB is the Mode of an op made by an SMB worker. SMB writes are
// replicated asynchronously on every share (a sync share's RPO 0 holds
// for NFS commits), so the checker counts their losses apart.
const ModeSMB = "smb"

// smbConn is one SMB session with the share mounted, over one TCP
// connection to the VIP.
type smbConn struct {
	raw  net.Conn
	sess *smb2.Session
	fs   *smb2.Share
}

func (c *smbConn) close() {
	// A logoff to a dead server would hang: the connection goes first.
	c.raw.Close()
}

// dialSMB logs in as the worker's user and mounts the share, bounded by
// the attempt time (go-smb2 does not watch a context during I/O, so the
// connection is closed to end it).
func (w *worker) dialSMB() (*smbConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.o.Attempt)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", net.JoinHostPort(w.o.Server, "445"))
	if err != nil {
		return nil, fmt.Errorf("dial %s:445: %w", w.o.Server, err)
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	sd := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: w.o.SMBUser, Password: w.o.SMBPassword}}
	sess, err := sd.DialContext(ctx, raw)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("SMB login as %s: %w", w.o.SMBUser, err)
	}
	share, err := sess.Mount(w.share.Name)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("SMB mount %s: %w", w.share.Name, err)
	}
	return &smbConn{raw: raw, sess: sess, fs: share}, nil
}

// attemptSMB runs one try of op, bounded by the attempt time: a try that
// does not end in time has its connection closed under it.
func (w *worker) attemptSMB(op *Op) error {
	c := w.smb
	kind, name, to, off, data := op.Kind, op.File, op.To, op.Off, op.Data
	type res struct {
		read string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		var r res
		switch kind {
		case OpCreate:
			// Exclusive: a retry that finds the file made it (the
			// worker alone uses its names).
			f, err := c.fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			switch {
			case err == nil:
				r.err = f.Close()
			case errors.Is(err, fs.ErrExist):
			default:
				r.err = err
			}
		case OpWrite, OpAppend:
			f, err := c.fs.OpenFile(name, os.O_RDWR, 0)
			if err != nil {
				r.err = finalIfGone(err)
				break
			}
			if _, err := f.WriteAt([]byte(data), off); err != nil {
				f.Close()
				r.err = err
				break
			}
			if err := f.Sync(); err != nil { // FLUSH: acknowledged once on disk
				f.Close()
				r.err = err
				break
			}
			r.err = f.Close()
		case OpRead:
			b, err := c.fs.ReadFile(name)
			if len(b) > maxData {
				err = errFinal{fmt.Errorf("file longer than %d bytes", maxData)}
			}
			r.read, r.err = string(b), finalIfGone(err)
		case OpRename:
			// Not idempotent: a retry whose first try went through finds
			// the source gone and the target there.
			r.err = c.fs.Rename(name, to)
			if errors.Is(r.err, fs.ErrNotExist) {
				if _, err := c.fs.Stat(to); err == nil {
					r.err = nil
				} else {
					r.err = errFinal{r.err}
				}
			}
		case OpDelete:
			r.err = c.fs.Remove(name)
			if errors.Is(r.err, fs.ErrNotExist) {
				r.err = nil
			}
		}
		ch <- r
	}()
	timer := time.NewTimer(w.o.Attempt)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.err == nil && kind == OpRead {
			op.Data = r.read
		}
		return r.err
	case <-timer.C:
		c.close() // ends the try's I/O
		return fmt.Errorf("%s %s: no answer within %v", kind, name, w.o.Attempt)
	}
}

// finalIfGone: a file the worker's model holds is not there: the server's
// answer, not a transport failure (a loss the final state shows).
func finalIfGone(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errFinal{err}
	}
	return err
}
