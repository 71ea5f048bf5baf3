package appliance

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/fileid"
	"ftnas/appliance/store"
	"ftnas/heartbeat"
	"ftnas/kernel/fence"
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
// hand-off, so this node has everything the peer logged and the write
// generation the hand-off carries; the write verifier is kept or changed
// (writegen.go); the node becomes the journal's master (after a hand-off,
// its log continues the old master's, which stays a copy without a
// resync); and NFS answers.
func (s clusterServices) Start(context.Context) error {
	rt := s.rt
	why := servingStart{Handover: rt.handover.Load(), PeerEpoch: rt.node.Status().Peer.Epoch}
	if why.Handover {
		var note []byte
		why.HandedOff, note = rt.repl.drain(drainMax)
		if why.HandedOff {
			if epoch := s.b.takeHandOffGen(note, rt.log); epoch != 0 {
				why.PeerEpoch = epoch
			}
		}
	}
	if err := s.b.startServingGen(why, rt.log); err != nil {
		rt.log.Error("cluster: write generation", "err", err)
	}
	rt.repl.serve(rt.servingEpoch())
	// A log that continues the old master's needs the volume as the
	// hand-off left it until the capture's view of it is fixed.
	rt.repl.ready()
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
	epoch := rt.servingEpoch() // the one it served at
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

// servingEpoch is the epoch this node serves (or last served) at: the
// newest the machine took and its heartbeat node's.
func (rt *clusterRuntime) servingEpoch() uint64 {
	return max(rt.epoch.Load(), rt.node.Status().Epoch)
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
