package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"ftnas/appliance/fileid"
	"ftnas/appliance/nfs/mount"
	"ftnas/appliance/nfs/nfs3"
	"ftnas/appliance/nfs/portmap"
	"ftnas/appliance/nfs/rpc"
	"ftnas/appliance/nfs/xdr"
	"ftnas/journal/capture"

	"golang.org/x/sys/unix"
)

// nfsService is the NFSv3, MOUNT and portmapper programs on their ports.
type nfsService struct {
	log  *slog.Logger
	srv  *nfs3.Server
	rpc  *rpc.Server
	gate *gate // holds NFS calls while a pair member does not serve; nil when stand-alone
	lns  []net.Listener
	pcs  []net.PacketConn
	errc chan error
	// hints is told of every NFS write: the master's capture (while this
	// node serves a pair) ships them with their data.
	hints *capture.WriteHints
}

// mountExports adapts the NFS server to the MOUNT program.
type mountExports struct{ s *nfs3.Server }

func (m mountExports) Mount(_ context.Context, dirpath string, c *rpc.Call) ([]byte, []uint32, mount.Status) {
	fh, st := m.s.MountRoot(dirpath, c.Remote)
	if st != nfs3.MountOK {
		return nil, nil, mount.Status(st)
	}
	return fh, []uint32{rpc.FlavorSys}, mount.Status(0)
}

func (m mountExports) List(context.Context) []mount.Export {
	var out []mount.Export
	for _, sh := range m.s.Exports().List() {
		groups := make([]string, 0, len(sh.Clients))
		for _, p := range sh.Clients {
			groups = append(groups, p.String())
		}
		if len(groups) == 0 {
			groups = append(groups, "*")
		}
		out = append(out, mount.Export{Dir: sh.Export(), Groups: groups})
	}
	return out
}

// gateWait bounds how long an NFS call waits for the gate: longer than a
// takeover's drain and start. A call still held then is answered anyway
// (logged), as it was before there was a gate.
const gateWait = 10 * time.Second

// gate holds the NFS calls of a pair member that does not serve. The VIP
// comes up before the services take over (heartbeat adds the address,
// then starts the services), so without it the first calls after a
// takeover would be answered before the last changes received from the
// old master were applied and before the write verifier was set. A node
// that stops serving closes it and, before it hands off to its standby,
// waits for the calls in flight (idle), so that the hand-off covers their
// changes.
type gate struct {
	mu     sync.Mutex
	opened chan struct{} // closed while the gate is open
	active int           // calls let through and not yet finished
	none   chan struct{} // closed when active drops to 0 (idle waits on it)
}

func newGate(open bool) *gate {
	g := &gate{opened: make(chan struct{})}
	if open {
		close(g.opened)
	}
	return g
}

// enter waits until the gate is open, ctx ends (false) or max has passed
// (true, logged); a call that enters must leave.
func (g *gate) enter(ctx context.Context, max time.Duration, log *slog.Logger) bool {
	var t *time.Timer
	for {
		g.mu.Lock()
		ch := g.opened
		select {
		case <-ch:
			g.active++
			g.mu.Unlock()
			return true
		default:
		}
		g.mu.Unlock()
		if t == nil {
			t = time.NewTimer(max)
			defer t.Stop()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		case <-t.C:
			log.Warn("nfs: a call waited for this node to serve and is answered anyway", "waited", max)
			g.mu.Lock()
			g.active++
			g.mu.Unlock()
			return true
		}
	}
}

func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.active--
	if g.active == 0 && g.none != nil {
		close(g.none)
		g.none = nil
	}
}

// open lets calls through.
func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.opened:
	default:
		close(g.opened)
	}
}

// close holds new calls.
func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.opened:
		g.opened = make(chan struct{})
	default:
	}
}

// idle waits up to wait for the calls in flight to finish and reports
// whether they did.
func (g *gate) idle(wait time.Duration) bool {
	g.mu.Lock()
	if g.active == 0 {
		g.mu.Unlock()
		return true
	}
	if g.none == nil {
		g.none = make(chan struct{})
	}
	none := g.none
	g.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-none:
		return true
	case <-t.C:
		return false
	}
}

// gatedHandler is h behind g.
func gatedHandler(h rpc.Handler, g *gate, log *slog.Logger) rpc.Handler {
	return gated{h: h, g: g, log: log}
}

// gated is a program behind a gate.
type gated struct {
	h   rpc.Handler
	g   *gate
	log *slog.Logger
}

func (x gated) ServeRPC(ctx context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
	if !x.g.enter(ctx, gateWait, x.log) {
		return rpc.SystemErr // the connection is going away
	}
	defer x.g.leave()
	return x.h.ServeRPC(ctx, c, w)
}

// listenConfig binds with IP_FREEBIND, so nasd can bind to an address (a
// virtual IP) that is not up yet.
var listenConfig = net.ListenConfig{
	Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
		})
		if err != nil {
			return err
		}
		return serr
	},
}

// startNFS serves NFS with the write verifier verf. A pair member's
// (gated) NFS calls wait until it serves (nfsService.gate).
func startNFS(ctx context.Context, cfg *Config, tree *fileid.Tree, ex nfs3.Exports, m *metrics, durable func(fsid uint64) error, verf [8]byte, gated bool) (*nfsService, error) {
	log := cfg.Log.With("service", "nfs")
	s := &nfsService{log: log, errc: make(chan error, 8), hints: capture.NewWriteHints()}
	s.srv = nfs3.New(tree, nfs3.Options{Log: log, Exports: ex, Verifier: verf, Observe: m.observeNFS, Durable: durable, Content: s.hints})
	s.rpc = rpc.NewServer(rpc.Options{Log: log, Observe: m.observeRPC})
	pm := portmap.New(log)
	mnt := mount.New(mountExports{s.srv}, log)
	if gated {
		s.gate = newGate(false)
		s.rpc.Register(nfs3.Program, nfs3.Version, gatedHandler(s.srv, s.gate, log))
	} else {
		s.rpc.Register(nfs3.Program, nfs3.Version, s.srv)
	}
	s.rpc.Register(mount.Prog, mount.Vers, mnt.Handler())
	s.rpc.Register(mount.Prog, mount.Vers1, mnt.Handler())
	s.rpc.Register(portmap.Prog, portmap.Vers, pm.Handler())
	nfsPort, pmPort := uint32(cfg.NFSPort), uint32(cfg.PortmapPort)
	for _, prot := range []uint32{portmap.TCP, portmap.UDP} {
		pm.Set(portmap.Mapping{Prog: portmap.Prog, Vers: portmap.Vers, Prot: prot, Port: pmPort})
		pm.Set(portmap.Mapping{Prog: nfs3.Program, Vers: nfs3.Version, Prot: prot, Port: nfsPort})
		pm.Set(portmap.Mapping{Prog: mount.Prog, Vers: mount.Vers, Prot: prot, Port: nfsPort})
		pm.Set(portmap.Mapping{Prog: mount.Prog, Vers: mount.Vers1, Prot: prot, Port: nfsPort})
	}
	for _, port := range []int{cfg.NFSPort, cfg.PortmapPort} {
		addr := cfg.hostPort(port)
		ln, err := listenConfig.Listen(ctx, "tcp", addr)
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("nfs: listen on tcp %s: %w", addr, err)
		}
		s.lns = append(s.lns, ln)
		pc, err := listenConfig.ListenPacket(ctx, "udp", addr)
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("nfs: listen on udp %s: %w", addr, err)
		}
		s.pcs = append(s.pcs, pc)
	}
	for _, ln := range s.lns {
		go func() { s.errc <- s.rpc.Serve(ln) }()
	}
	for _, pc := range s.pcs {
		go func() { s.errc <- s.rpc.ServeUDP(pc) }()
	}
	log.Info("serving NFSv3", "nfs", cfg.hostPort(cfg.NFSPort), "portmap", cfg.hostPort(cfg.PortmapPort))
	return s, nil
}

func (s *nfsService) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.rpc != nil {
		if err := s.rpc.Shutdown(ctx); err != nil {
			s.log.Warn("nfs shutdown", "err", err)
		}
	}
	for _, ln := range s.lns {
		ln.Close()
	}
	for _, pc := range s.pcs {
		pc.Close()
	}
	if s.srv != nil {
		s.srv.Close()
	}
}
