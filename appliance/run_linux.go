package appliance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/fileid"
	"ftnas/appliance/smb"
	"ftnas/appliance/store"
)

// StateFile is the bbolt file holding configuration and state.
const StateFile = "ftnas.db"

// Ready reports the addresses nasd serves on, once everything is up.
type Ready struct {
	API     string
	Metrics string
}

// Run runs the appliance until ctx ends, then stops every service it started
// and returns. ready, if not nil, is called once all services are up.
//
// A change of cluster membership (init, join, leave) restarts the
// services in process with the new configuration: they then listen on
// the VIP and the heartbeat decides whether this node serves.
func Run(ctx context.Context, cfg Config, ready func(Ready)) (err error) {
	cfg.setDefaults()
	if err := cfg.check(); err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(cfg.StateDir, StateFile), cfg.Log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	// The bond outlives the restarts: the node's network must not blink
	// when it joins or leaves a pair.
	bond, err := newBondService(&cfg, st)
	if err != nil {
		return err
	}
	defer bond.start()()
	for {
		restart, err := runOnce(ctx, cfg, st, bond, ready)
		if err != nil || !restart || ctx.Err() != nil {
			return err
		}
		ready = nil
		cfg.Log.Info("nasd restarting its services")
	}
}

// runOnce runs the appliance until ctx ends or the configuration asks for
// a restart (restart is then true).
func runOnce(ctx context.Context, cfg Config, st *store.Store, bond *bondService, ready func(Ready)) (restart bool, err error) {
	log := cfg.Log
	started := time.Now()

	clu, clustered, err := st.GetCluster()
	if err != nil {
		return false, err
	}
	if clustered {
		// The file services follow the VIP: NFS binds it with IP_FREEBIND
		// before it is up, smbd is kicked when it comes.
		if cfg.Listen != "" && cfg.Listen != clu.VIP.Addr().String() {
			log.Info("cluster member: serving on the virtual IP, not --listen", "vip", clu.VIP.Addr(), "listen", cfg.Listen)
		}
		cfg.Listen = clu.VIP.Addr().String()
		if err := adoptRoot(cfg.Volume, clu.RootStamp); err != nil {
			return false, err
		}
	}
	reserve := st.AllocIDs
	if clustered {
		// Each node allocates file IDs from its own range.
		off := clu.IDOffset()
		reserve = func(n uint64) (uint64, error) {
			first, err := st.AllocIDs(n)
			return first + off, err
		}
	}

	idx, err := fileid.OpenIndex(st.DB(), log)
	if err != nil {
		return false, err
	}
	defer func() { err = errors.Join(err, idx.Close()) }()
	tree, err := fileid.OpenTree(cfg.Volume, idx, fileid.NewAllocator(reserve), log)
	if err != nil {
		return false, err
	}
	defer tree.Close()
	rs, err := tree.Reconcile(ctx)
	if err != nil {
		return false, err
	}
	log.Info("volume reconciled", "volume", cfg.Volume, "files", rs.Files, "stamped", rs.Stamped,
		"reissued", rs.Reissued, "dropped", rs.Dropped, "took", time.Since(started).Round(time.Millisecond))

	shares, err := st.ListShares()
	if err != nil {
		return false, err
	}
	users, err := st.ListUsers()
	if err != nil {
		return false, err
	}
	for _, u := range users {
		// A reflashed box or a replica: the accounts must match the store.
		if err := ensureAccount(ctx, u.Name, u.UID, u.GID); err != nil {
			return false, fmt.Errorf("user %s: %w", u.Name, err)
		}
	}
	ex := &exports{}
	if err := ex.Set(shares); err != nil {
		return false, err
	}

	b := &backend{cfg: &cfg, st: st, ex: ex, tree: tree, started: started, restart: make(chan struct{}, 1)}
	m := newMetrics(func() float64 {
		if b.smb == nil {
			return 0
		}
		_, ss := b.smb.status()
		return float64(ss.Restarts)
	}, func() (smb.Counters, bool) {
		if b.smb == nil {
			return nil, false
		}
		return b.smb.counters()
	})

	b.bond = bond
	m.reg.MustRegister(newBondCollector(bond))

	// A stand-alone node serves from now on; a pair member only once
	// heartbeat says so (clusterServices.Start sets the verifier then).
	verf, err := b.openWriteGen(!clustered, log)
	if err != nil {
		return false, err
	}
	// Runs after NFS (and, registered later, the pair) stopped: a clean
	// stop keeps the write verifier.
	defer b.cleanStop(log)
	nfs, err := startNFS(ctx, &cfg, tree, ex, m, b.durable, verf, clustered)
	if err != nil {
		return false, err
	}
	defer nfs.stop()
	b.nfs = nfs

	if !cfg.NoSMB {
		smbSvc, err := startSMB(ctx, &cfg, shares, users)
		if err != nil {
			return false, err
		}
		defer smbSvc.stop()
		b.smb = smbSvc
	}

	if clustered {
		rt, err := startCluster(ctx, clu, b, tree, log)
		if err != nil {
			return false, err
		}
		defer rt.stop()
		b.cluster = rt
		b.serving.Store(rt)
	}
	m.reg.MustRegister(newClusterCollector(func() (api.ClusterStatus, bool) {
		if b.cluster == nil {
			return api.ClusterStatus{}, false
		}
		return b.cluster.status(time.Now()), true
	}))
	m.reg.MustRegister(newRaidCollector(b.raidManager()))
	hotplugCtx, stopHotplug := context.WithCancel(ctx)
	defer stopHotplug()
	startHotplug(hotplugCtx, log, cfg.RaidAutoAdopt, b.raidManager())
	scrubsDone := make(chan struct{})
	go func() {
		defer close(scrubsDone)
		b.raidManager().runScrubs(hotplugCtx, st, cfg.scrubEvery())
	}()
	defer func() { stopHotplug(); <-scrubsDone }()

	sock := cfg.API
	if sock == "" {
		sock = api.SocketPath(cfg.StateDir)
	}
	apiLn, err := api.Listen(sock)
	if err != nil {
		return false, err
	}
	apiSrv := &http.Server{Handler: api.NewHandler(b, log), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 4)
	go func() { errc <- serveHTTP(apiSrv, apiLn, "api") }()
	defer shutdownHTTP(apiSrv)

	rdy := Ready{API: sock}
	if cfg.Metrics != "" {
		mln, err := net.Listen("tcp", cfg.Metrics)
		if err != nil {
			return false, fmt.Errorf("metrics: listen on %s: %w", cfg.Metrics, err)
		}
		rdy.Metrics = mln.Addr().String()
		mux := http.NewServeMux()
		mux.Handle("/metrics", m.handler())
		// Profiling, on the same (by default loopback-only) address.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- serveHTTP(msrv, mln, "metrics") }()
		defer shutdownHTTP(msrv)
	}
	go healthGauges(ctx, b, m)

	log.Info("nasd ready", "api", rdy.API, "metrics", rdy.Metrics, "volume", cfg.Volume, "state", cfg.StateDir)
	if ready != nil {
		ready(rdy)
	}
	select {
	case <-ctx.Done():
		log.Info("nasd stopping")
		return false, nil
	case <-b.restart:
		return true, nil
	case err := <-errc:
		return false, err
	case err := <-nfs.errc:
		return false, fmt.Errorf("nfs: %w", err)
	}
}

func serveHTTP(s *http.Server, ln net.Listener, what string) error {
	if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func shutdownHTTP(s *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Shutdown(ctx)
}

// healthGauges keeps ftnas_service_healthy current.
func healthGauges(ctx context.Context, b *backend, m *metrics) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		if s, err := b.Status(ctx); err == nil {
			for _, svc := range s.Services {
				v := 0.0
				if svc.Healthy {
					v = 1
				}
				m.serviceUp.WithLabelValues(svc.Name).Set(v)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
