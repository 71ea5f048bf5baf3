package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"go.etcd.io/bbolt"

	"ftnas/heartbeat"
)

// Keys of the cluster configuration in the settings bucket.
const (
	keyCluster      = "cluster"
	keyClusterEpoch = "cluster_epoch"
)

// MinClusterKeyLen is the shortest heartbeat HMAC key a cluster accepts.
const MinClusterKeyLen = 32

// Bounds of the configurable heartbeat timing (Cluster.HeartbeatInterval,
// DeadInterval, Lease). The lower bounds that depend on the interval
// (Cluster.Validate) come on top.
const (
	MinHeartbeatInterval = 20 * time.Millisecond
	MaxHeartbeatInterval = 2 * time.Second
	MaxDeadInterval      = 30 * time.Second
)

// Cluster roles.
const (
	RolePrimary = "primary"
	RoleStandby = "standby"
)

// Failback policies.
const (
	FailbackManual = "manual"
	FailbackAuto   = "auto"
)

// ClusterNode is one node of a pair as the cluster configuration names it.
type ClusterNode struct {
	ID        uint32     `json:"id"`
	Public    netip.Addr `json:"public"`             // address on the public network (heartbeat path 0)
	Dedicated netip.Addr `json:"dedicated,omitzero"` // address on the dedicated link (path 1), if any
	CertPEM   string     `json:"cert_pem"`           // the node's journal TLS certificate
}

// Cluster is this node's membership of a hot-standby pair. Secrets (the
// HMAC key and the TLS private key) live here, in the 0600 state file.
type Cluster struct {
	ID        uint64       `json:"id"`
	Key       []byte       `json:"key"`       // heartbeat HMAC key, shared by the pair
	Role      string       `json:"role"`      // RolePrimary or RoleStandby: this node's configured role
	VIP       netip.Prefix `json:"vip"`       // the service address and its prefix length
	Interface string       `json:"interface"` // where the VIP goes on this node
	Witness   netip.Addr   `json:"witness"`   // gateway or other address both nodes must reach to promote
	Failback  string       `json:"failback"`  // FailbackManual or FailbackAuto
	// HeartbeatPort is the UDP port of the heartbeats on both paths;
	// JournalPort the TCP port of the journal stream on the master.
	HeartbeatPort uint16      `json:"heartbeat_port"`
	JournalPort   uint16      `json:"journal_port"`
	Self          ClusterNode `json:"self"`
	Peer          ClusterNode `json:"peer"`
	KeyPEM        string      `json:"key_pem"` // this node's journal TLS private key
	// RootStamp is the primary's volume root identity (fileid.Stamp,
	// binary): both volumes' roots carry it, so file handles agree.
	RootStamp []byte `json:"root_stamp"`
	// HeartbeatInterval, DeadInterval and Lease are the pair's heartbeat
	// timing (see heartbeat.Timing); 0 takes heartbeat's default. Both
	// nodes must run the same: the join token carries the primary's.
	HeartbeatInterval time.Duration `json:"heartbeat_interval,omitempty"`
	DeadInterval      time.Duration `json:"dead_interval,omitempty"`
	Lease             time.Duration `json:"lease,omitempty"`
}

// Timing is the heartbeat timing c configures, every field filled in: a
// set HeartbeatInterval brings a jitter of a third of it (the default
// 150 ms ± 50 ms keeps that ratio); the stall tolerance stays the default,
// and the other intervals derive from these as heartbeat.Timing does.
func (c Cluster) Timing() heartbeat.Timing {
	t := heartbeat.Timing{Interval: c.HeartbeatInterval, Dead: c.DeadInterval, Lease: c.Lease}
	if t.Interval != 0 {
		t.Jitter = t.Interval / 3
	}
	return t.WithDefaults()
}

// validateTiming checks the heartbeat timing and names the field at fault.
func (c Cluster) validateTiming() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("cluster: %w: "+format, append([]any{ErrInvalid}, a...)...)
	}
	if c.HeartbeatInterval != 0 && (c.HeartbeatInterval < MinHeartbeatInterval || c.HeartbeatInterval > MaxHeartbeatInterval) {
		return bad("heartbeat_interval %v is outside %v..%v", c.HeartbeatInterval, MinHeartbeatInterval, MaxHeartbeatInterval)
	}
	if c.DeadInterval < 0 {
		return bad("dead_interval %v is negative", c.DeadInterval)
	}
	if c.Lease < 0 {
		return bad("lease %v is negative", c.Lease)
	}
	t := c.Timing()
	longest := t.Interval + t.Jitter // the longest gap between two heartbeats
	if minDead := heartbeat.MinDead(t.Interval, t.Jitter, t.Stall); t.Dead < minDead {
		return bad("dead_interval %v is below %v: two heartbeats at the longest spacing (%v with heartbeat interval %v) plus the stall tolerance %v",
			t.Dead, minDead, longest, t.Interval, t.Stall)
	}
	if t.Dead > MaxDeadInterval {
		return bad("dead_interval %v is above %v", t.Dead, MaxDeadInterval)
	}
	// A master renews its lease with every acknowledged heartbeat; a
	// shorter lease would lapse between two of them on a healthy pair.
	if minLease := longest + t.Stall; t.Lease < minLease {
		return bad("lease %v is below %v: a heartbeat at the longest spacing (%v with heartbeat interval %v) plus the stall tolerance %v",
			t.Lease, minLease, longest, t.Interval, t.Stall)
	}
	// A lease that outlasts the dead interval delays every takeover.
	if t.Lease > t.Dead {
		return bad("lease %v is longer than the dead interval %v", t.Lease, t.Dead)
	}
	if err := t.Validate(); err != nil {
		return bad("heartbeat_interval %v, dead_interval %v, lease %v: %v", t.Interval, t.Dead, t.Lease, err)
	}
	return nil
}

// IDOffset is where this node's file IDs start: every node allocates from
// its own range, so IDs made on either node of a pair never collide.
func (c Cluster) IDOffset() uint64 { return uint64(c.Self.ID-1) << 48 }

// Paths returns how many heartbeat paths the pair has: 2 with a dedicated
// link on both nodes, else 1.
func (c Cluster) Paths() int {
	if c.Self.Dedicated.IsValid() && c.Peer.Dedicated.IsValid() {
		return 2
	}
	return 1
}

// Validate checks the configuration and names the first problem.
func (c Cluster) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("cluster: %w: "+format, append([]any{ErrInvalid}, a...)...)
	}
	switch {
	case c.ID == 0:
		return bad("cluster id is 0")
	case len(c.Key) < MinClusterKeyLen:
		return bad("heartbeat key has %d bytes, need at least %d", len(c.Key), MinClusterKeyLen)
	case c.Role != RolePrimary && c.Role != RoleStandby:
		return bad("role %q is neither %q nor %q", c.Role, RolePrimary, RoleStandby)
	case !c.VIP.IsValid() || !c.VIP.Addr().Is4():
		return bad("virtual IP %v is not an IPv4 address with a prefix length (e.g. 10.0.0.100/24)", c.VIP)
	case c.Interface == "":
		return bad("no interface for the virtual IP")
	case len(c.Interface) > 15:
		return bad("interface name %q is longer than 15 bytes", c.Interface)
	case !c.Witness.IsValid():
		return bad("no witness address")
	case c.Failback != FailbackManual && c.Failback != FailbackAuto:
		return bad("failback policy %q is neither %q nor %q", c.Failback, FailbackManual, FailbackAuto)
	case c.HeartbeatPort == 0 || c.JournalPort == 0:
		return bad("heartbeat and journal ports must be set")
	case c.Self.ID == 0 || c.Peer.ID == 0 || c.Self.ID == c.Peer.ID:
		return bad("node ids %d and %d must be different and not 0", c.Self.ID, c.Peer.ID)
	case !c.Self.Public.IsValid() || !c.Peer.Public.IsValid():
		return bad("both nodes need a public address")
	case c.Self.Public == c.Peer.Public:
		return bad("both nodes have the public address %v", c.Self.Public)
	case c.Self.Public == c.VIP.Addr() || c.Peer.Public == c.VIP.Addr():
		return bad("the virtual IP %v is a node's own address", c.VIP.Addr())
	case c.Self.Dedicated.IsValid() != c.Peer.Dedicated.IsValid():
		return bad("a dedicated link needs an address on both nodes")
	case c.Self.Dedicated.IsValid() && c.Self.Dedicated == c.Peer.Dedicated:
		return bad("both nodes have the dedicated address %v", c.Self.Dedicated)
	case c.Self.CertPEM == "" || c.Peer.CertPEM == "" || c.KeyPEM == "":
		return bad("journal certificates are missing")
	case len(c.RootStamp) == 0:
		return bad("no volume root identity")
	}
	return c.validateTiming()
}

// Redacted returns c without its secrets, for logs and the API.
func (c Cluster) Redacted() Cluster {
	c.Key = nil
	c.KeyPEM = ""
	return c
}

// GetCluster returns the cluster configuration; ok is false on a
// stand-alone node.
func (s *Store) GetCluster() (c Cluster, ok bool, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket([]byte(bucketSettings)).Get([]byte(keyCluster))
		if raw == nil {
			return nil
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("store: decode cluster configuration: %w", err)
		}
		ok = true
		return nil
	})
	return c, ok, err
}

// PutCluster validates and stores the cluster configuration. A node's
// cluster id and node id cannot change while it is configured: leave the
// cluster (DeleteCluster) first.
func (s *Store) PutCluster(c Cluster) error {
	if err := c.Validate(); err != nil {
		return err
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("store: encode cluster configuration: %w", err)
	}
	return s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketSettings))
		if old := b.Get([]byte(keyCluster)); old != nil {
			var prev Cluster
			if err := json.Unmarshal(old, &prev); err == nil && (prev.ID != c.ID || prev.Self.ID != c.Self.ID) {
				return fmt.Errorf("cluster: %w: this node is already node %d of cluster %d; leave it first", ErrExists, prev.Self.ID, prev.ID)
			}
		}
		if err := b.Put([]byte(keyCluster), raw); err != nil {
			return fmt.Errorf("store: put cluster configuration: %w", err)
		}
		return nil
	})
}

// DeleteCluster makes the node stand-alone again. The epoch stays: a
// node never reuses a fencing token it may have served in.
func (s *Store) DeleteCluster() error {
	return s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketSettings)).Delete([]byte(keyCluster))
	})
}

// ClusterEpoch returns the highest fencing epoch this node has stored (0
// if none).
func (s *Store) ClusterEpoch() (uint64, error) {
	var e uint64
	err := s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket([]byte(bucketSettings)).Get([]byte(keyClusterEpoch))
		switch len(raw) {
		case 0:
		case 8:
			e = binary.BigEndian.Uint64(raw)
		default:
			return fmt.Errorf("store: cluster epoch has %d bytes, want 8", len(raw))
		}
		return nil
	})
	return e, err
}

// SetClusterEpoch stores epoch durably (bbolt syncs on commit). It refuses
// to go backwards: an epoch never decreases.
func (s *Store) SetClusterEpoch(epoch uint64) error {
	return s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketSettings))
		if raw := b.Get([]byte(keyClusterEpoch)); len(raw) == 8 && binary.BigEndian.Uint64(raw) > epoch {
			return fmt.Errorf("store: cluster epoch %d is below the stored %d", epoch, binary.BigEndian.Uint64(raw))
		}
		return b.Put([]byte(keyClusterEpoch), u64(epoch))
	})
}
