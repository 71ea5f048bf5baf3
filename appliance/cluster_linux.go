package appliance

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/fileid"
	"ftnas/appliance/store"
	"ftnas/heartbeat"
	"ftnas/kernel/fence"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// Health feeding: how often the services' health goes to the machine, and
// how long SMB may be unhealthy after this node started serving (smbd
// binds the VIP only once it is up) or at all, before it counts as failed.
const (
	healthEvery = time.Second
	smbSettle   = 15 * time.Second
	smbGrace    = 5 * time.Second
)

// clusterRuntime runs this node's part of a pair: the heartbeat node that
// decides whether it serves, the VIP, and the services' health feed.
type clusterRuntime struct {
	cfg     store.Cluster
	node    *heartbeat.Node
	udp     *heartbeat.UDP
	fence   *fence.Fence // nil when the kernel refused the program
	repl    *replication
	b       *backend
	epoch   atomic.Uint64 // the newest epoch the machine took
	log     *slog.Logger
	cancel  context.CancelFunc
	done    chan error
	serving atomic.Bool
	// handover: the machine's last promotion was the peer handing over
	// (set from its StateChanged, before it starts the services).
	handover atomic.Bool

	mu           sync.Mutex
	servingSince time.Time
}

// Bounds of a role change: how long a master that stops serving waits for
// the NFS calls in flight, and then for its standby to apply everything
// (the hand-off); and how long a node taking over from a peer that handed
// over waits for that hand-off to arrive.
const (
	callsDrain = 2 * time.Second
	handOffMax = 3 * time.Second
	drainMax   = handOffMax + time.Second
)

// clusterServices adapts the file services to heartbeat.Services. NFS
// listens on the VIP with IP_FREEBIND all along, its calls held by a gate
// until Start has taken over; smbd, which cannot bind early, is kicked
// to bind the address that just came up.
type clusterServices struct {
	rt *clusterRuntime
	b  *backend
}

// Start takes over (heartbeat has just added the VIP): if the peer handed
// the service over, the journal it was shipping is let run until its
// hand-off, so this node has everything the peer logged, and the
// generation the hand-off carries is kept; the write verifier is kept or
// changed (writegen.go); the node becomes the
// journal's master; and NFS answers.
func (s clusterServices) Start(context.Context) error {
	rt := s.rt
	why := servingStart{Handover: rt.handover.Load(), PeerEpoch: rt.node.Status().Peer.Epoch}
	if why.Handover {
		var note []byte
		why.HandedOff, note = rt.repl.drain(drainMax)
		if why.HandedOff {
			s.b.takeHandOffGen(note, rt.log)
		}
	}
	if err := s.b.startServingGen(why, rt.log); err != nil {
		rt.log.Error("cluster: write generation", "err", err)
	}
	rt.repl.serve(max(rt.epoch.Load(), rt.node.Status().Epoch))
	rt.serving.Store(true)
	rt.mu.Lock()
	rt.servingSince = time.Now()
	rt.mu.Unlock()
	if nfs := s.b.nfs; nfs != nil {
		// Descriptors opened when this node served before may be of
		// copies the applier has replaced since.
		nfs.srv.ForgetOpenFiles()
		if nfs.gate != nil {
			nfs.gate.open()
		}
	}
	if s.b.smb != nil {
		s.b.smb.sup.Kick()
	}
	s.b.tickleClients(rt.log)
	rt.log.Info("file services serving on the virtual IP", "vip", rt.cfg.VIP, "handover", why.Handover, "handed_off", why.HandedOff)
	return nil
}

// Stop gives the service up (heartbeat has removed the VIP): NFS holds new
// calls; if the service goes to the alive peer, its connected standby, the
// calls in flight finish and the journal hands off to it; this node
// follows the new master; a clean stop is noted.
func (s clusterServices) Stop(context.Context) error {
	rt := s.rt
	epoch := max(rt.epoch.Load(), rt.node.Status().Epoch) // the one it served at
	rt.serving.Store(false)
	nfs := s.b.nfs
	if nfs != nil && nfs.gate != nil {
		nfs.gate.close()
	}
	// Only a handover (the peer alive, not serving: it is about to take
	// over) to a connected standby is handed off to; otherwise (the peer
	// took over, or is gone) this node follows the new master at once:
	// calls in flight may wait for a standby that will never answer.
	st := rt.node.Status()
	if st.PeerAlive && !st.Peer.State.Serving() && rt.repl.standbyConnected() {
		if nfs != nil && nfs.gate != nil && !nfs.gate.idle(callsDrain) {
			rt.log.Warn("cluster: NFS calls still running after the release; handing off without them", "waited", callsDrain)
		}
		rt.repl.handOff(handOffMax, s.b.handOffNote(epoch, rt.log))
	}
	rt.repl.standBy()
	if nfs := s.b.nfs; nfs != nil {
		nfs.srv.ForgetOpenFiles()
	}
	s.b.cleanStop(rt.log)
	rt.log.Info("file services released the virtual IP", "vip", rt.cfg.VIP)
	return nil
}

// startCluster starts the heartbeat node for c.
func startCluster(ctx context.Context, c store.Cluster, b *backend, tree *fileid.Tree, log *slog.Logger) (*clusterRuntime, error) {
	log = log.With("cluster", c.ID, "node", c.Self.ID)
	epoch, err := b.st.ClusterEpoch()
	if err != nil {
		return nil, err
	}
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("cluster: seed: %w", err)
	}
	udp, err := heartbeat.NewUDP(udpPaths(c), log)
	if err != nil {
		return nil, err
	}
	rt := &clusterRuntime{cfg: c, udp: udp, log: log, done: make(chan error, 1), repl: newReplication(c, b, tree, log), b: b}
	mc := machineConfig(c, epoch, binary.LittleEndian.Uint64(seed[:]))
	// The first heartbeat's sequence number must exceed every one this
	// node sent before a restart, or the peer's Receiver drops them as
	// replays until the epoch changes: a restarted standby would stay
	// "dead" to the master. The wall clock in ns outruns ~7 heartbeats a
	// second by far.
	mc.Seq = uint64(time.Now().UnixNano())
	if rt.fence, err = attachFence(b.cfg.BPFDir, c, log); err != nil {
		// Without the fence a frozen master keeps answering for the VIP
		// until its supervisor acts; run, but say so.
		log.Error("cluster: no lease fence on the VIP; a frozen master would keep answering for it", "err", err)
		rt.fence = nil
	}
	node, err := heartbeat.NewNode(heartbeat.NodeConfig{
		Machine:   mc,
		Key:       c.Key,
		Transport: udp,
		VIP:       fencedVIP{VIP: heartbeat.VIP{Interface: c.Interface, Prefix: c.VIP}, fence: rt.fence, lease: mc.WithDefaults().Timing.Lease},
		Services:  clusterServices{rt: rt, b: b},
		Witness:   witnessAndVIP(c, log, rt.vipHeld),
		SaveEpoch: b.st.SetClusterEpoch,
		OnAction:  rt.onAction,
		Log:       log,
	})
	if err != nil {
		rt.closeSockets()
		return nil, err
	}
	rt.node = node
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rt.cancel = cancel
	rt.repl.renew = func() {
		if err := node.Submit(runCtx, heartbeat.Renew{}); err != nil {
			log.Warn("cluster: ask for a new epoch for the new log", "err", err)
		}
	}
	// Until heartbeat says this node serves, it follows the peer's journal.
	rt.repl.standBy()
	go func() { rt.done <- node.Run(runCtx) }()
	go rt.feedHealth(runCtx, b)
	log.Info("cluster member started", "role", c.Role, "peer", c.Peer.ID, "vip", c.VIP, "interface", c.Interface,
		"paths", c.Paths(), "witness", c.Witness, "epoch", epoch,
		"heartbeat_interval", mc.Timing.Interval, "dead_interval", mc.Timing.Dead, "lease", mc.Timing.Lease)
	return rt, nil
}

// vipHeld tells the machine that the peer serves unheard (see
// heartbeat.VIPHeld).
func (rt *clusterRuntime) vipHeld() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := rt.node.Submit(ctx, heartbeat.VIPHeld{}); err != nil {
		rt.log.Warn("cluster: report the VIP held by an unheard peer", "err", err)
	}
}

func (rt *clusterRuntime) onAction(a heartbeat.Action) {
	switch a := a.(type) {
	case heartbeat.StateChanged:
		if a.To.Serving() && !a.From.Serving() {
			rt.handover.Store(a.Reason == heartbeat.ReasonHandedOver)
		}
		rt.log.Info("cluster state", "from", a.From, "to", a.To, "reason", a.Reason)
	case heartbeat.EpochChanged:
		rt.epoch.Store(a.Epoch)
		rt.log.Info("cluster epoch", "epoch", a.Epoch)
		if rt.serving.Load() {
			// A new epoch while serving: the journal's new log (Renew).
			rt.repl.raiseEpoch(a.Epoch)
		}
	case heartbeat.Alarm:
		rt.log.Warn("cluster alarm", "alarm", a.String())
	case heartbeat.ClearAlarm:
		rt.log.Info("cluster alarm cleared", "alarm", a.Alarm.String())
	case heartbeat.RenewLease:
		if rt.fence != nil {
			if err := rt.fence.Renew(a.Until); err != nil {
				rt.log.Error("cluster: renew the lease fence", "err", err)
			}
		}
	}
}

// fencedVIP opens the lease fence just before the VIP is added (the
// machine renews it right after, at every heartbeat) and closes it once
// the VIP is gone.
type fencedVIP struct {
	heartbeat.VIP
	fence *fence.Fence
	lease time.Duration
}

func (v fencedVIP) Add(ctx context.Context) error {
	if v.fence != nil {
		if err := v.fence.Renew(time.Now().Add(v.lease)); err != nil {
			return err
		}
	}
	return v.VIP.Add(ctx)
}

func (v fencedVIP) Remove(ctx context.Context) error {
	err := v.VIP.Remove(ctx)
	if v.fence != nil {
		err = errors.Join(err, v.fence.Expire())
	}
	return err
}

// feedHealth tells the machine whether the file services work. A master
// whose services fail stops its heartbeats and releases the VIP, so the
// peer takes over.
func (rt *clusterRuntime) feedHealth(ctx context.Context, b *backend) {
	t := time.NewTicker(healthEvery)
	defer t.Stop()
	last := true
	for {
		ok, reason := rt.health(b, time.Now())
		if ok != last {
			rt.log.Warn("cluster service health", "ok", ok, "reason", reason)
			last = ok
		}
		if err := rt.node.Submit(ctx, heartbeat.ServiceHealth{OK: ok, Reason: reason}); err != nil {
			return
		}
		if err := rt.node.Submit(ctx, rt.repl.position()); err != nil {
			return
		}
		if err := rt.node.Submit(ctx, heartbeat.Outdate{On: rt.repl.wantOutdate()}); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (rt *clusterRuntime) health(b *backend, now time.Time) (bool, string) {
	if b.nfs == nil {
		return false, "nfs not running"
	}
	if b.smb == nil || !rt.serving.Load() {
		// A standby's smbd cannot bind the VIP; only a serving node's SMB
		// health counts.
		return true, ""
	}
	rt.mu.Lock()
	since := rt.servingSince
	rt.mu.Unlock()
	h, _ := b.smb.status()
	if h.ok || now.Sub(since) < smbSettle || h.since.IsZero() || now.Sub(h.since) < smbGrace {
		return true, ""
	}
	return false, "smb: " + h.detail
}

func (rt *clusterRuntime) status(now time.Time) api.ClusterStatus {
	s := apiClusterStatus(rt.cfg, rt.node.Status(), now)
	s.Replication = rt.repl.status()
	if g, err := rt.b.st.WriteGen(); err == nil {
		s.WriteGenEpoch = g.Epoch
	}
	if p := rt.b.peerConns.Load(); p != nil {
		s.PeerClients = len(*p)
	}
	rs, us := rt.node.ReceiverStats(), rt.udp.Stats()
	s.Heartbeats = api.ClusterHeartbeats{
		Accepted: rs.Accepted, Foreign: us.Foreign, Malformed: rs.Malformed, BadMAC: rs.BadMAC,
		WrongCluster: rs.WrongCluster, UnknownNode: rs.UnknownNode, WrongPath: rs.WrongPath, Replayed: rs.Replayed,
	}
	return s
}

// stop releases the VIP (the node's shutdown removes it) and closes the
// sockets.
func (rt *clusterRuntime) stop() {
	rt.cancel()
	if err := <-rt.done; err != nil {
		rt.log.Error("cluster member stopped", "err", err)
	}
	rt.repl.stop()
	rt.closeSockets()
}

// attachFence puts the lease fence on the VIP's interface, pinned under
// bpfDir so that it outlives a killed nasd (the lease then runs out at
// the wire); where no BPF filesystem can be had there, the process holds
// it and a supervisor must remove the VIP after a kill.
func attachFence(bpfDir string, c store.Cluster, log *slog.Logger) (*fence.Fence, error) {
	if bpfDir != "" {
		err := fence.MountBPFFS(bpfDir)
		if err == nil {
			dir := filepath.Join(bpfDir, fmt.Sprintf("fence-%x-%d", c.ID, c.Self.ID))
			var f *fence.Fence
			if f, err = fence.AttachPinned(c.Interface, c.VIP.Addr(), dir); err == nil {
				return f, nil
			}
		}
		log.Warn("cluster: the lease fence is not pinned; after kill -9 the VIP must be removed by a supervisor", "bpf_dir", bpfDir, "err", err)
	}
	return fence.Attach(c.Interface, c.VIP.Addr())
}

func (rt *clusterRuntime) closeSockets() {
	rt.udp.Close()
	if rt.fence != nil {
		if err := rt.fence.Close(); err != nil {
			rt.log.Warn("cluster: detach the lease fence", "err", err)
		}
	}
}

// vipProbeWait is how long a standby listens for another host answering
// for the VIP (within the witness probe's timeout).
const vipProbeWait = 150 * time.Millisecond

// witnessPingRetry is how often pingWitness resends its echo.
const witnessPingRetry = 60 * time.Millisecond

// witnessAndVIP is the witness as the failover machine asks it when the
// peer has gone silent: the witness must answer, and, on a node that does
// not hold the VIP, no other host may answer for the VIP
// (heartbeat.ProbeVIP). A master whose heartbeats are lost on both paths
// but which still serves (and so still renews its lease) answers for the
// VIP; the standby then stays standby instead of serving beside it. A
// dead, frozen or released master does not answer: its fence drops the
// VIP's ARP once its lease has run out, before the standby asks.
func witnessAndVIP(c store.Cluster, log *slog.Logger, onHeld func()) func(ctx context.Context) bool {
	ping := pingWitness(c.Witness)
	return func(ctx context.Context) bool {
		if held, err := heartbeat.HasAddress(c.Interface, c.VIP); err == nil && held {
			return ping(ctx)
		}
		type answer struct {
			holder net.HardwareAddr
			err    error
		}
		ac := make(chan answer, 1)
		go func() {
			h, err := heartbeat.ProbeVIP(ctx, c.Interface, c.VIP.Addr(), vipProbeWait)
			ac <- answer{h, err}
		}()
		ok := ping(ctx)
		a := <-ac
		switch {
		case a.err != nil:
			// Cannot tell: the witness alone decides, as before.
			log.Warn("cluster: cannot ask who holds the VIP", "err", a.err)
		case a.holder != nil:
			log.Warn("cluster: no heartbeat from the peer, but a host answers for the VIP: not taking over, and no copy of its data from now on (split heartbeat paths?)",
				"vip", c.VIP.Addr(), "holder", a.holder)
			onHeld()
			return false
		}
		return ok
	}
}

// pingWitness probes the witness with ICMP echoes, one every
// witnessPingRetry until one is answered or the context's deadline: a
// single lost echo or reply must not cost a serving node its lease.
func pingWitness(addr netip.Addr) func(ctx context.Context) bool {
	return func(ctx context.Context) bool {
		c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return false
		}
		defer c.Close()
		deadline, ok := ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(heartbeat.DefaultWitnessTimeout)
		}
		var idb [2]byte
		rand.Read(idb[:])
		id := int(binary.BigEndian.Uint16(idb[:]))
		dst := &net.IPAddr{IP: addr.AsSlice()}
		buf := make([]byte, 1500)
		for seq := 1; time.Now().Before(deadline); seq++ {
			msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("ftnas-witness")}}
			wb, err := msg.Marshal(nil)
			if err != nil {
				return false
			}
			if _, err := c.WriteTo(wb, dst); err != nil {
				return false
			}
			rd := time.Now().Add(witnessPingRetry)
			if deadline.Before(rd) {
				rd = deadline
			}
			c.SetReadDeadline(rd)
			for {
				n, from, err := c.ReadFrom(buf)
				if err != nil {
					break // resend, or give up at the deadline
				}
				if ip, ok := from.(*net.IPAddr); !ok || !ip.IP.Equal(dst.IP) {
					continue
				}
				m, err := icmp.ParseMessage(1, buf[:n])
				if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
					continue
				}
				if e, ok := m.Body.(*icmp.Echo); ok && e.ID == id {
					return true
				}
			}
		}
		return false
	}
}

// interfaceFor returns the interface that holds addr.
func interfaceFor(addr netip.Addr) (string, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return "", fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr {
			l, err := netlink.LinkByIndex(a.LinkIndex)
			if err != nil {
				return "", fmt.Errorf("link %d: %w", a.LinkIndex, err)
			}
			return l.Attrs().Name, nil
		}
	}
	return "", errors.New("no interface has it")
}

// durable is the NFS server's Durable hook (called for sync-replicated
// shares only): the commit waits until the standby has the data.
func (b *backend) durable(fsid uint64) error {
	rt := b.serving.Load()
	if rt == nil {
		return nil
	}
	if err := rt.repl.commitSync(rt.node); err != nil {
		return fmt.Errorf("share fsid %d: %w", fsid, err)
	}
	return nil
}

// --- API ---

var _ api.ClusterBackend = (*backend)(nil)

func (b *backend) ClusterStatus(context.Context) (api.ClusterStatus, error) {
	if b.cluster == nil {
		return api.ClusterStatus{Protection: api.ProtectionStandalone}, nil
	}
	return b.cluster.status(time.Now()), nil
}

func (b *backend) InitCluster(ctx context.Context, r api.ClusterInitRequest) (api.ClusterInitResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.refuseIfClustered(); err != nil {
		return api.ClusterInitResponse{}, err
	}
	c, tok, err := planInit(r, b.tree.Root().MarshalBinary(), interfaceFor)
	if err != nil {
		return api.ClusterInitResponse{}, err
	}
	if err := b.st.PutCluster(c); err != nil {
		return api.ClusterInitResponse{}, err
	}
	b.requestRestart("cluster init")
	return api.ClusterInitResponse{Token: tok, Status: pendingStatus(c)}, nil
}

func (b *backend) JoinCluster(ctx context.Context, r api.ClusterJoinRequest) (api.ClusterStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.refuseIfClustered(); err != nil {
		return api.ClusterStatus{}, err
	}
	c, err := planJoin(r, interfaceFor)
	if err != nil {
		return api.ClusterStatus{}, err
	}
	if err := emptyVolume(b.cfg.Volume); err != nil {
		return api.ClusterStatus{}, err
	}
	if err := b.st.PutCluster(c); err != nil {
		return api.ClusterStatus{}, err
	}
	b.requestRestart("cluster join")
	return pendingStatus(c), nil
}

func (b *backend) refuseIfClustered() error {
	if c, ok, err := b.st.GetCluster(); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("cluster: %w: this node is already node %d of cluster %d; `nasctl cluster leave` first", store.ErrExists, c.Self.ID, c.ID)
	}
	return nil
}

// emptyVolume refuses a standby volume that holds files: the standby
// becomes a copy of the primary's volume, and files of its own would
// neither be kept in step nor be safe from the copy.
func emptyVolume(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cluster join: read volume %s: %w", dir, err)
	}
	for _, e := range ents {
		if n := e.Name(); n != "lost+found" && !strings.HasPrefix(n, ".ftnas-") {
			return fmt.Errorf("cluster join: %w: the volume %s holds %q: a standby's volume becomes a copy of the primary's, so it must start empty (move its files away or use another volume)", store.ErrInvalid, dir, n)
		}
	}
	return nil
}

// adoptRoot gives the volume root the cluster's root identity (the
// primary's), so both volumes' handles agree.
func adoptRoot(volume string, root []byte) error {
	cur := make([]byte, 64)
	n, err := unix.Getxattr(volume, fileid.XattrName, cur)
	if err == nil && string(cur[:n]) == string(root) {
		return nil
	}
	if err := unix.Setxattr(volume, fileid.XattrName, root, 0); err != nil {
		return fmt.Errorf("cluster: give volume %s the pair's root identity: %w", volume, err)
	}
	return nil
}

// pendingStatus is the answer to init and join: configured, starting.
func pendingStatus(c store.Cluster) api.ClusterStatus {
	return api.ClusterStatus{
		Configured: true, Protection: api.ProtectionAtRisk, ClusterID: c.ID, NodeID: c.Self.ID, PeerID: c.Peer.ID,
		Role: c.Role, State: "starting", VIP: c.VIP.String(), Interface: c.Interface, Failback: c.Failback,
		Timing: apiTiming(c.Timing()),
	}
}

func (b *backend) ClusterAction(ctx context.Context, action string) error {
	if b.cluster == nil {
		return fmt.Errorf("cluster %s: %w: this node is not in a cluster", action, store.ErrInvalid)
	}
	var ev heartbeat.Event
	switch action {
	case "promote":
		ev = heartbeat.Promote{}
	case "demote":
		ev = heartbeat.Demote{}
	case "failback":
		ev = heartbeat.Failback{}
	case "takeover":
		// The operator vouches that the peer is gone: serve even without
		// the witness, and even if this node is not a copy of the peer's
		// latest data (what the peer had not shipped is lost).
		ev = heartbeat.Promote{Force: true}
	default:
		return fmt.Errorf("cluster: %w: unknown action %q", store.ErrInvalid, action)
	}
	return b.cluster.node.Submit(ctx, ev)
}

func (b *backend) LeaveCluster(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok, err := b.st.GetCluster(); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("cluster leave: %w: this node is not in a cluster", store.ErrNotFound)
	}
	if err := b.st.DeleteCluster(); err != nil {
		return err
	}
	b.requestRestart("cluster leave")
	return nil
}

// requestRestart has Run restart the services with the new configuration
// once the API request that asked for it has been answered.
func (b *backend) requestRestart(why string) {
	b.cfg.Log.Info("restarting services for a new configuration", "why", why)
	select {
	case b.restart <- struct{}{}:
	default:
	}
}

// --- metrics ---

// clusterCollector exports the pair's state at scrape time.
type clusterCollector struct {
	status                                                                      func() (api.ClusterStatus, bool)
	state, serving, epoch, peerAlive, pathAlive, pathHeard, witnessUp, received *prometheus.Desc
	jDepth, jLag, jSeq, jConnected                                              *prometheus.Desc
}

func newClusterCollector(status func() (api.ClusterStatus, bool)) *clusterCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("ftnas_cluster_"+name, help, labels, nil)
	}
	return &clusterCollector{
		status:    status,
		state:     d("state", "1 for this node's failover state.", "state"),
		serving:   d("serving", "1 when this node holds the VIP and serves."),
		epoch:     d("epoch", "The fencing epoch this node is in."),
		peerAlive: d("peer_alive", "1 while any heartbeat path hears the peer."),
		pathAlive: d("path_alive", "1 while the path hears the peer.", "path"),
		pathHeard: d("path_last_heartbeat_seconds", "Age of the peer's newest heartbeat on the path.", "path"),
		witnessUp: d("witness_reachable", "1 when the last witness probe got an answer."),
		received:  d("heartbeats_received_total", "Heartbeat datagrams received, by result (accepted or why dropped).", "result"),
		jDepth:    prometheus.NewDesc("ftnas_journal_depth", "Journal records the standby has not acknowledged (master).", nil, nil),
		jLag: prometheus.NewDesc("ftnas_journal_lag_seconds",
			"Master-slave phase difference: on the master the age of the oldest unacknowledged change, on the standby how long after its capture the last change was applied.", []string{"role"}, nil),
		jSeq:       prometheus.NewDesc("ftnas_journal_seq", "Journal sequence numbers: last logged (master) and acknowledged/applied.", []string{"which"}, nil),
		jConnected: prometheus.NewDesc("ftnas_journal_connected", "1 while the journal stream between the nodes is up.", []string{"role"}, nil),
	}
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.serving, c.epoch, c.peerAlive, c.pathAlive, c.pathHeard, c.witnessUp, c.received, c.jDepth, c.jLag, c.jSeq, c.jConnected} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	s, ok := c.status()
	if !ok {
		return
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	g := prometheus.GaugeValue
	for _, st := range []string{"alone", "master", "slave", "primaryslave"} {
		ch <- prometheus.MustNewConstMetric(c.state, g, b(s.State == st), st)
	}
	ch <- prometheus.MustNewConstMetric(c.serving, g, b(s.Serving))
	ch <- prometheus.MustNewConstMetric(c.epoch, g, float64(s.Epoch))
	ch <- prometheus.MustNewConstMetric(c.peerAlive, g, b(s.PeerAlive))
	for _, p := range s.Paths {
		ch <- prometheus.MustNewConstMetric(c.pathAlive, g, b(p.Alive), p.Name)
		if p.LastHeardMS >= 0 {
			ch <- prometheus.MustNewConstMetric(c.pathHeard, g, float64(p.LastHeardMS)/1000, p.Name)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.witnessUp, g, b(s.Witness.Reachable))
	h := s.Heartbeats
	for result, v := range map[string]uint64{
		"accepted": h.Accepted, "foreign": h.Foreign, "malformed": h.Malformed, "bad_mac": h.BadMAC,
		"wrong_cluster": h.WrongCluster, "unknown_node": h.UnknownNode, "wrong_path": h.WrongPath, "replayed": h.Replayed,
	} {
		ch <- prometheus.MustNewConstMetric(c.received, prometheus.CounterValue, float64(v), result)
	}
	if r := s.Replication; r.Role != "" {
		ch <- prometheus.MustNewConstMetric(c.jLag, g, float64(r.LagMS)/1000, r.Role)
		ch <- prometheus.MustNewConstMetric(c.jConnected, g, b(r.Connected), r.Role)
		ch <- prometheus.MustNewConstMetric(c.jSeq, g, float64(r.AckedSeq), "acked")
		if r.Role == "master" {
			ch <- prometheus.MustNewConstMetric(c.jDepth, g, float64(r.Depth))
			ch <- prometheus.MustNewConstMetric(c.jSeq, g, float64(r.LastSeq), "last")
		}
	}
}
