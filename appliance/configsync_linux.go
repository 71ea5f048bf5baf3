package appliance

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"ftnas/appliance/configsync"
	"ftnas/kernel/tickle"
)

// configEvery is how often the master looks again at what it sends
// without being told of a change: the client connection table (SMB
// clients come and go in smbd, not in the store). A change of the store
// (shares, users, the write generation) is sent at once.
const configEvery = 500 * time.Millisecond

// snapshot is this node's configuration.
func (b *backend) snapshot() (configsync.Snapshot, error) {
	shares, err := b.st.ListShares()
	if err != nil {
		return configsync.Snapshot{}, err
	}
	users, err := b.st.ListUsers()
	if err != nil {
		return configsync.Snapshot{}, err
	}
	return configsync.Snapshot{Version: configsync.Version, Shares: shares, Users: users}, nil
}

// serveConfig sends the configuration to every standby that connects, and
// again whenever it changes, until ctx ends.
func serveConfig(ctx context.Context, addr string, tlsCfg *tls.Config, b *backend, log *slog.Logger) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("config sync: listen on %s: %w", addr, err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("config sync: accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := sendConfig(ctx, tls.Server(c, tlsCfg), b)
			if ctx.Err() == nil {
				log.Info("config sync: standby session ended", "peer", c.RemoteAddr(), "err", err)
			}
		}()
	}
}

func sendConfig(ctx context.Context, c *tls.Conn, b *backend) error {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("config sync: TLS handshake: %w", err)
	}
	// A read returns only when the standby goes away.
	gone := make(chan struct{})
	go func() {
		var one [1]byte
		c.Read(one[:])
		close(gone)
	}()
	t := time.NewTicker(configEvery)
	defer t.Stop()
	var last []byte
	for {
		changed := b.st.Changed() // before the read, so no change is missed
		s, err := b.snapshot()
		if err != nil {
			return err
		}
		s.Conns = b.clientConns()
		if s.WriteGen, s.Epoch, err = b.servingWriteGen(); err != nil {
			return err
		}
		cur, err := json.Marshal(s)
		if err != nil {
			return err
		}
		if !bytes.Equal(cur, last) {
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := configsync.Write(c, s); err != nil {
				return err
			}
			last = cur
		}
		select {
		case <-ctx.Done():
			return nil
		case <-gone:
			return errors.New("config sync: standby closed the connection")
		case <-changed:
		case <-t.C:
		}
	}
}

// followConfig dials the master and applies every snapshot it sends,
// reconnecting with back-off, until ctx ends.
func followConfig(ctx context.Context, addr string, tlsCfg *tls.Config, b *backend, log *slog.Logger) error {
	wait := 100 * time.Millisecond
	for {
		err := receiveConfig(ctx, addr, tlsCfg, b, log)
		if ctx.Err() != nil {
			return nil
		}
		log.Debug("config sync: reconnecting", "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func receiveConfig(ctx context.Context, addr string, tlsCfg *tls.Config, b *backend, log *slog.Logger) error {
	d := tls.Dialer{Config: tlsCfg, NetDialer: &net.Dialer{Timeout: 2 * time.Second}}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("config sync: dial %s: %w", addr, err)
	}
	c := raw.(*tls.Conn)
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	for {
		s, err := configsync.Read(c)
		if err != nil {
			return err
		}
		b.peerConns.Store(&s.Conns)
		if err := b.applySnapshot(ctx, s, log); err != nil {
			// Keep following: the next snapshot may apply.
			log.Error("config sync: apply the master's configuration", "err", err)
		}
		if s.Epoch != 0 {
			b.followWriteGen(s.WriteGen, s.Epoch, log)
		}
	}
}

// clientConns are the clients' connections to this node's file services
// on the VIP (none when stand-alone or on error).
func (b *backend) clientConns() []tickle.Conn {
	rt := b.serving.Load()
	if rt == nil {
		return nil
	}
	conns, err := tickle.Connections(rt.cfg.VIP.Addr(), []uint16{uint16(b.cfg.NFSPort), uint16(b.cfg.SMBPort)})
	if err != nil {
		rt.log.Debug("config sync: list client connections", "err", err)
		return nil
	}
	if len(conns) > configsync.MaxConns {
		conns = conns[:configsync.MaxConns]
	}
	return conns
}

// tickleClients resets the connections the old master had (as its last
// snapshot listed them), so clients reconnect to this node at once.
func (b *backend) tickleClients(log *slog.Logger) {
	p := b.peerConns.Load()
	if p == nil || len(*p) == 0 {
		return
	}
	conns := *p
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		rep, err := tickle.Tickle(ctx, conns, 20)
		log.Info("tickled the old master's client connections", "conns", len(conns), "reset", len(rep.Reset), "unanswered", len(rep.Unanswered), "err", err)
	}()
}

// applySnapshot makes this node's shares and users the master's: the
// store, the system accounts, Samba's passdb, the NFS exports and
// smb.conf.
func (b *backend) applySnapshot(ctx context.Context, want configsync.Snapshot, log *slog.Logger) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	have, err := b.snapshot()
	if err != nil {
		return err
	}
	p := configsync.PlanFor(have, want)
	if p.Empty() {
		return nil
	}
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range p.RemoveUsers {
		if b.smb != nil {
			note(b.smb.passdb.DeleteUser(ctx, name))
		}
		note(removeAccount(ctx, name))
		note(b.st.RemoveUser(name))
		log.Info("config sync: user removed", "user", name)
	}
	for _, name := range p.RemoveShares {
		note(b.st.RemoveShare(name))
		log.Info("config sync: share removed", "share", name)
	}
	for _, sh := range p.AddShares {
		_, err := b.st.AddShare(sh)
		note(err)
		log.Info("config sync: share added", "share", sh.Name, "fsid", sh.FSID, "err", err)
	}
	for _, sh := range p.UpdateShares {
		_, err := b.st.UpdateShare(sh)
		note(err)
		log.Info("config sync: share changed", "share", sh.Name, "err", err)
	}
	for _, u := range p.AddUsers {
		_, err := b.st.AddUser(u)
		if err == nil {
			err = ensureAccount(ctx, u.Name, u.UID, u.GID)
		}
		if err == nil && b.smb != nil {
			err = b.smb.passdb.SetUser(ctx, u.Name, u.NTHash)
		}
		note(err)
		log.Info("config sync: user added", "user", u.Name, "uid", u.UID, "err", err)
	}
	for _, u := range p.UpdateUsers {
		_, err := b.st.UpdateUser(u)
		if err == nil && b.smb != nil {
			err = b.smb.passdb.SetUser(ctx, u.Name, u.NTHash)
		}
		note(err)
		log.Info("config sync: password changed", "user", u.Name, "err", err)
	}
	note(b.applyShares(ctx))
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}
