package appliance

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"ftnas/appliance/smb"
	"ftnas/appliance/store"
)

// probeUser is the service account the SMB health probe logs in with.
const probeUser = "ftnas-probe"

// probeInterval is how often smbd's health is checked.
const probeInterval = 10 * time.Second

// smbService runs smbd for the SMB shares and keeps its passdb in step with
// the store.
type smbService struct {
	cfg      *Config
	log      *slog.Logger
	paths    smb.Paths
	confPath string
	passdb   *smb.Passdb
	sup      *smb.Supervisor
	probePw  string
	cancel   context.CancelFunc
	done     chan struct{}

	mu     sync.Mutex
	health health
}

// health is the result of the last probe.
type health struct {
	ok     bool
	detail string
	since  time.Time
}

func startSMB(ctx context.Context, cfg *Config, shares []store.Share, users []store.User) (*smbService, error) {
	log := cfg.Log.With("service", "smb")
	s := &smbService{cfg: cfg, log: log, paths: smb.PathsFor(cfg.StateDir), done: make(chan struct{})}
	s.confPath = filepath.Join(s.paths.Root, "smb.conf")
	var pw [16]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, fmt.Errorf("smb: probe password: %w", err)
	}
	s.probePw = hex.EncodeToString(pw[:])
	if err := ensureServiceAccount(ctx, probeUser); err != nil {
		return nil, fmt.Errorf("smb: probe account: %w", err)
	}
	if err := s.writeConfig(shares); err != nil {
		return nil, err
	}
	s.passdb = smb.NewPassdb(s.confPath, log)
	if err := s.syncUsers(ctx, users); err != nil {
		return nil, err
	}
	// On a cluster member smbd binds only the VIP: it is held back while
	// the VIP is elsewhere and kicked when the VIP comes up.
	listen := cfg.Listen
	ready := func() bool {
		addrs, err := net.InterfaceAddrs()
		return err != nil || smb.ListenUp(listen, addrs)
	}
	s.sup = smb.NewSupervisor(smb.SupervisorConfig{ConfPath: s.confPath, Log: log, SmbdPath: cfg.SmbdPath, Ready: ready})
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		if err := s.sup.Run(runCtx); err != nil {
			log.Error("smbd supervisor stopped", "err", err)
		}
	}()
	go s.probeLoop(runCtx)
	log.Info("serving SMB", "addr", cfg.hostPort(cfg.SMBPort), "config", s.confPath)
	return s, nil
}

// probeDir is the empty folder behind the probe share. It is not in the
// state dir: the probe account must be able to reach it, and the state dir's
// parents (a home folder, a test's temp dir) may not let it.
func probeDir(stateDir string) string {
	sum := sha256.Sum256([]byte(stateDir))
	name := "smb-probe-" + hex.EncodeToString(sum[:6])
	if err := os.MkdirAll("/run/ftnas", 0o755); err == nil {
		return filepath.Join("/run/ftnas", name)
	}
	return filepath.Join(os.TempDir(), "ftnas-"+name)
}

// smbConfig renders the store's shares for smbd.
func (s *smbService) smbConfig(shares []store.Share) smb.Config {
	c := smb.Config{
		StateDir: s.cfg.StateDir, Listen: s.cfg.Listen, Port: s.cfg.SMBPort,
		ProbeUser: probeUser, ProbeDir: probeDir(s.cfg.StateDir),
	}
	for _, sh := range shares {
		if sh.SMB {
			c.Shares = append(c.Shares, smb.Share{Name: sh.Name, Path: filepath.Join(s.cfg.Volume, sh.Path), ReadOnly: sh.ReadOnly})
		}
	}
	return c
}

func (s *smbService) writeConfig(shares []store.Share) error {
	c := s.smbConfig(shares)
	if err := smb.MakeDirs(c); err != nil {
		return err
	}
	data, err := smb.Render(c)
	if err != nil {
		return err
	}
	return smb.WriteConfig(s.confPath, data)
}

// apply rewrites smb.conf for a changed share list and has smbd reload it.
func (s *smbService) apply(ctx context.Context, shares []store.Share) error {
	if err := s.writeConfig(shares); err != nil {
		return err
	}
	if st := s.sup.State(); st.Phase == smb.PhaseWaiting || st.Phase == smb.PhaseBackoff {
		// smbd is down and reads the new file when it starts (a
		// standby's smbd waits for the VIP).
		s.log.Debug("smbd not running; config written for its next start", "phase", st.Phase)
		return nil
	}
	if err := s.sup.Reload(ctx); err != nil {
		// smbd re-reads its config at its next start; not fatal.
		s.log.Warn("smbd reload", "err", err)
	}
	return nil
}

func (s *smbService) syncUsers(ctx context.Context, users []store.User) error {
	want := map[string]string{probeUser: smb.NTHash(s.probePw)}
	for _, u := range users {
		want[u.Name] = u.NTHash
	}
	if err := s.passdb.Sync(ctx, want); err != nil {
		return fmt.Errorf("smb: sync users into passdb: %w", err)
	}
	return nil
}

func (s *smbService) probeAddr() string {
	host := s.cfg.Listen
	if host == "" || net.ParseIP(host).IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(s.cfg.SMBPort))
}

// probe logs in with go-smb2 and lists the probe share.
func (s *smbService) probe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := smb.Probe(ctx, s.probeAddr(), probeUser, s.probePw, smb.ProbeShareName)
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := err == nil
	detail := "login and listing ok"
	if err != nil {
		detail = err.Error()
	}
	if ok != s.health.ok || s.health.since.IsZero() {
		s.health.since = time.Now()
		if ok {
			s.log.Info("smb healthy")
		} else {
			s.log.Warn("smb unhealthy", "err", err)
		}
	}
	s.health.ok, s.health.detail = ok, detail
}

func (s *smbService) probeLoop(ctx context.Context) {
	// First probe soon after start (smbd is ready in ~0.2 s), then at the
	// interval.
	t := time.NewTimer(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.probe(ctx)
			// While unhealthy, look again soon: smbd may be starting.
			s.mu.Lock()
			next := probeInterval
			if !s.health.ok {
				next = time.Second
			}
			s.mu.Unlock()
			t.Reset(next)
		}
	}
}

// counters reads smbd's profile counters for the metrics.
func (s *smbService) counters() (smb.Counters, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := smb.Profile(ctx, s.confPath)
	if err != nil {
		s.log.Debug("smb counters", "err", err)
		return nil, false
	}
	return c, true
}

func (s *smbService) status() (health, smb.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health, s.sup.State()
}

// stop stops smbd and waits until it is gone.
func (s *smbService) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
}
