package appliance

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"ftnas/appliance/fileid"
	"ftnas/appliance/nfs/mount"
	"ftnas/appliance/nfs/nfs3"
	"ftnas/appliance/nfs/portmap"
	"ftnas/appliance/nfs/rpc"

	"golang.org/x/sys/unix"
)

// nfsService is the NFSv3, MOUNT and portmapper programs on their ports.
type nfsService struct {
	log  *slog.Logger
	srv  *nfs3.Server
	rpc  *rpc.Server
	lns  []net.Listener
	pcs  []net.PacketConn
	errc chan error
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

// newVerifier returns a fresh write verifier: it changes at every start of
// the serving instance, because uncommitted writes may have been lost.
func newVerifier() ([8]byte, error) {
	var v [8]byte
	_, err := rand.Read(v[:])
	return v, err
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

func startNFS(ctx context.Context, cfg *Config, tree *fileid.Tree, ex nfs3.Exports, m *metrics, durable func(fsid uint64) error) (*nfsService, error) {
	verf, err := newVerifier()
	if err != nil {
		return nil, fmt.Errorf("nfs: make write verifier: %w", err)
	}
	log := cfg.Log.With("service", "nfs")
	s := &nfsService{log: log, errc: make(chan error, 8)}
	s.srv = nfs3.New(tree, nfs3.Options{Log: log, Exports: ex, Verifier: verf, Observe: m.observeNFS, Durable: durable})
	s.rpc = rpc.NewServer(rpc.Options{Log: log, Observe: m.observeRPC})
	pm := portmap.New(log)
	mnt := mount.New(mountExports{s.srv}, log)
	s.rpc.Register(nfs3.Program, nfs3.Version, s.srv)
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
