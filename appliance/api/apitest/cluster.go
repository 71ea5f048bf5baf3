package apitest

import (
	"context"
	"fmt"
	"strings"

	"ftnas/appliance/api"
	"ftnas/appliance/store"
)

// ClusterFake is a Fake that also serves the cluster routes
// (api.ClusterBackend): init and join configure it, actions are recorded,
// Status is what the test sets.
type ClusterFake struct {
	*Fake
	Cluster api.ClusterStatus // what ClusterStatus answers
	Actions []string          // promote, demote, failback, leave, in order
	// InitRequest is the last init request that configured the fake.
	InitRequest api.ClusterInitRequest
}

var _ api.ClusterBackend = (*ClusterFake)(nil)

// NewClusterFake returns a stand-alone backend.
func NewClusterFake(host string) *ClusterFake {
	return &ClusterFake{Fake: NewFake(host), Cluster: api.ClusterStatus{Protection: api.ProtectionStandalone}}
}

func (f *ClusterFake) ClusterStatus(context.Context) (api.ClusterStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Cluster, nil
}

func (f *ClusterFake) InitCluster(_ context.Context, r api.ClusterInitRequest) (api.ClusterInitResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Cluster.Configured {
		return api.ClusterInitResponse{}, fmt.Errorf("cluster: %w: already in a cluster", store.ErrExists)
	}
	if !strings.Contains(r.VIP, "/") || r.Public == "" || r.PeerPublic == "" || r.Witness == "" {
		return api.ClusterInitResponse{}, fmt.Errorf("cluster: %w: vip with prefix length, public, peer_public and witness are required", store.ErrInvalid)
	}
	f.InitRequest = r
	f.Cluster = api.ClusterStatus{Configured: true, Protection: api.ProtectionAtRisk, ClusterID: 77, NodeID: 1, PeerID: 2,
		Role: store.RolePrimary, State: "starting", VIP: r.VIP, Interface: "eth0", Failback: store.FailbackManual}
	return api.ClusterInitResponse{Token: "ftnas-join-1:fake", Status: f.Cluster}, nil
}

func (f *ClusterFake) JoinCluster(_ context.Context, r api.ClusterJoinRequest) (api.ClusterStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Token != "ftnas-join-1:fake" {
		return api.ClusterStatus{}, fmt.Errorf("cluster: join token: %w: not a token", store.ErrInvalid)
	}
	f.Cluster = api.ClusterStatus{Configured: true, Protection: api.ProtectionAtRisk, ClusterID: 77, NodeID: 2, PeerID: 1,
		Role: store.RoleStandby, State: "starting", VIP: "10.0.0.100/24", Interface: "eth0", Failback: store.FailbackManual}
	return f.Cluster, nil
}

func (f *ClusterFake) ClusterAction(_ context.Context, action string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.Cluster.Configured {
		return fmt.Errorf("cluster %s: %w: this node is not in a cluster", action, store.ErrInvalid)
	}
	f.Actions = append(f.Actions, action)
	return nil
}

func (f *ClusterFake) LeaveCluster(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.Cluster.Configured {
		return fmt.Errorf("cluster leave: %w: this node is not in a cluster", store.ErrNotFound)
	}
	f.Actions = append(f.Actions, "leave")
	f.Cluster = api.ClusterStatus{Protection: api.ProtectionStandalone}
	return nil
}
