package appliance

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/fileid"
	"ftnas/appliance/store"
	"ftnas/heartbeat"

	"golang.org/x/sys/unix"
)

// The cluster's API: status, init, join, actions, leave.

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
