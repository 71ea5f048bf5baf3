package api

import (
	"context"
	"net/http"
	"time"
)

// ClusterInitRequest makes this node the primary of a new pair. Addresses
// are IPs; VIP has a prefix length. Empty optional fields take defaults:
// node ids 1 and 2, the interface that holds Public, manual failback, the
// default ports, no dedicated link, heartbeat's default timing.
type ClusterInitRequest struct {
	NodeID        uint32 `json:"node_id,omitempty"`
	PeerID        uint32 `json:"peer_id,omitempty"`
	VIP           string `json:"vip"`
	Interface     string `json:"interface,omitempty"`
	Public        string `json:"public"`
	PeerPublic    string `json:"peer_public"`
	Dedicated     string `json:"dedicated,omitempty"`
	PeerDedicated string `json:"peer_dedicated,omitempty"`
	Witness       string `json:"witness"`
	Failback      string `json:"failback,omitempty"`
	HeartbeatPort uint16 `json:"heartbeat_port,omitempty"`
	JournalPort   uint16 `json:"journal_port,omitempty"`
	// The pair's heartbeat timing in milliseconds, 0 for the default;
	// the standby takes the primary's with the join token. "Longest
	// spacing" below is the interval plus a third of it, the most one
	// gap between heartbeats may be.
	//   - HeartbeatIntervalMS: the mean gap between heartbeats, 20..2000
	//     (default 150, so gaps of 100–200 ms).
	//   - DeadIntervalMS: how long the peer may be silent on every path
	//     before it counts as dead: at least 2 heartbeats at the longest
	//     spacing plus 100 ms, at most 30 s (default 4 of them plus
	//     100 ms: 900 at the default interval).
	//   - LeaseMS: how long a master serves past its newest acknowledged
	//     heartbeat: at least 1 heartbeat at the longest spacing plus
	//     100 ms, at most the dead interval (default 2 of them plus
	//     100 ms: 500 at the default interval).
	HeartbeatIntervalMS int64 `json:"heartbeat_interval_ms,omitempty"`
	DeadIntervalMS      int64 `json:"dead_interval_ms,omitempty"`
	LeaseMS             int64 `json:"lease_ms,omitempty"`
}

// ClusterInitResponse carries the join token for the standby. The token
// holds the pair's secrets: hand it over like a password.
type ClusterInitResponse struct {
	Token  string        `json:"token"`
	Status ClusterStatus `json:"status"`
}

// ClusterJoinRequest makes this node the standby of the pair a token
// describes. Interface defaults to the one holding the standby's public
// address.
type ClusterJoinRequest struct {
	Token     string `json:"token"`
	Interface string `json:"interface,omitempty"`
}

// String hides the token.
func (ClusterJoinRequest) String() string { return "{Token:<redacted>}" }

// ClusterPath is one heartbeat path as this node sees it.
type ClusterPath struct {
	Name  string `json:"name"` // "public" or "dedicated"
	Local string `json:"local"`
	Peer  string `json:"peer"`
	Alive bool   `json:"alive"`
	// LastHeardMS is the age of the peer's newest heartbeat on this
	// path; -1 when none arrived.
	LastHeardMS int64 `json:"last_heard_ms"`
}

// ClusterTiming is the heartbeat timing in effect, in milliseconds:
// heartbeats leave every IntervalMS ± JitterMS; the peer is dead after
// DeadMS of silence; a master serves LeaseMS past its newest acknowledged
// heartbeat.
type ClusterTiming struct {
	IntervalMS int64 `json:"heartbeat_interval_ms"`
	JitterMS   int64 `json:"jitter_ms"`
	DeadMS     int64 `json:"dead_interval_ms"`
	LeaseMS    int64 `json:"lease_ms"`
}

// ClusterWitness is the witness as this node last probed it.
type ClusterWitness struct {
	Addr      string `json:"addr"`
	Known     bool   `json:"known"`
	Reachable bool   `json:"reachable"`
	AgeMS     int64  `json:"age_ms"` // -1 when never probed
}

// Protection levels of ClusterStatus.
const (
	ProtectionStandalone = "standalone" // no cluster configured
	ProtectionProtected  = "protected"  // a node serves, the peer stands by on every path with a copy of the data
	ProtectionDegraded   = "degraded"   // a node serves, but a path or the peer is down, or the peer is resyncing
	ProtectionAtRisk     = "at-risk"    // nothing serves here and the peer is not seen serving
)

// ClusterStatus is this node's view of the pair.
type ClusterStatus struct {
	Configured bool   `json:"configured"`
	Protection string `json:"protection"`
	ClusterID  uint64 `json:"cluster_id,omitempty"`
	NodeID     uint32 `json:"node_id,omitempty"`
	PeerID     uint32 `json:"peer_id,omitempty"`
	Role       string `json:"role,omitempty"` // configured: primary or standby
	State      string `json:"state,omitempty"`
	Serving    bool   `json:"serving"`
	Healthy    bool   `json:"healthy"`
	Epoch      uint64 `json:"epoch"`
	VIP        string `json:"vip,omitempty"`
	Interface  string `json:"interface,omitempty"`
	Failback   string `json:"failback,omitempty"`
	// Timing is the heartbeat timing in effect (both nodes run the
	// same); absent on a stand-alone node.
	Timing ClusterTiming `json:"timing,omitzero"`

	PeerSeen  bool           `json:"peer_seen"`
	PeerAlive bool           `json:"peer_alive"`
	PeerState string         `json:"peer_state,omitempty"`
	PeerEpoch uint64         `json:"peer_epoch"`
	Paths     []ClusterPath  `json:"paths"`
	Witness   ClusterWitness `json:"witness"`
	Alarms    []string       `json:"alarms"`
	// Journal is this node's journal position as the heartbeat carries
	// it; PeerJournal the peer's.
	Journal     uint64 `json:"journal"`
	PeerJournal uint64 `json:"peer_journal"`
	// Synced: this node, not serving, is a copy of the master's data (it
	// may take over when the master dies). Outdating: this node serves
	// and goes on without its standby's journal, having told the standby
	// it is no copy; PeerOutdated: the standby has acknowledged that.
	Synced       bool `json:"synced"`
	Outdating    bool `json:"outdating,omitempty"`
	PeerOutdated bool `json:"peer_outdated,omitempty"`
	// WriteGenEpoch is the epoch of the master whose NFS write generation
	// this node holds (config sync carries it; 0: none, or its own). A
	// handover keeps the write verifier only when it is the old master's
	// epoch; else the new master's clients resend their uncommitted writes.
	WriteGenEpoch uint64 `json:"write_gen_epoch,omitempty"`
	// Replication is this node's side of the journal.
	Replication ClusterReplication `json:"replication"`
	// Heartbeats counts the datagrams this node received, by what became
	// of them.
	Heartbeats ClusterHeartbeats `json:"heartbeats"`
	// PeerClients is how many client connections of the serving peer
	// this node knows, to tickle when it takes over.
	PeerClients int `json:"peer_clients"`
}

// ClusterHeartbeats counts received heartbeat datagrams: accepted, and
// dropped by reason (a forged or replayed heartbeat changes nothing but
// these counters).
type ClusterHeartbeats struct {
	Accepted     uint64 `json:"accepted"`
	Foreign      uint64 `json:"foreign"` // from an address that is not the peer's on that path
	Malformed    uint64 `json:"malformed"`
	BadMAC       uint64 `json:"bad_mac"`
	WrongCluster uint64 `json:"wrong_cluster"`
	UnknownNode  uint64 `json:"unknown_node"`
	WrongPath    uint64 `json:"wrong_path"`
	Replayed     uint64 `json:"replayed"`
}

// ClusterReplication is the journal as this node runs it: as master (it
// captures and ships) or standby (it applies).
type ClusterReplication struct {
	Role      string `json:"role"`               // "master", "standby" or "" (not running)
	Disabled  string `json:"disabled,omitempty"` // why replication cannot run on this node
	Connected bool   `json:"connected"`
	LastSeq   uint64 `json:"last_seq"`  // master: last record logged
	AckedSeq  uint64 `json:"acked_seq"` // master: acknowledged by the standby; standby: applied
	Depth     int    `json:"depth"`     // master: records not yet acknowledged
	// LagMS is the master–slave phase difference: on the master the age of
	// the oldest unacknowledged change, on the standby how long after its
	// capture the last change was applied.
	LagMS      int64  `json:"lag_ms"`
	NeedResync bool   `json:"need_resync,omitempty"`
	LastError  string `json:"last_error,omitempty"`
	// Continued (master): its log continues the one the standby had
	// whole when it handed the service over, so the standby follows it
	// as a copy, without a resync. Resyncs: how often this node, as
	// standby, has followed a new master log from its description since
	// nasd started.
	Continued bool   `json:"continued,omitempty"`
	Resyncs   uint64 `json:"resyncs,omitempty"`
}

// ClusterBackend is the optional cluster part of a Backend; the routes
// under /v1/cluster exist only when the Backend implements it.
type ClusterBackend interface {
	ClusterStatus(ctx context.Context) (ClusterStatus, error)
	InitCluster(ctx context.Context, r ClusterInitRequest) (ClusterInitResponse, error)
	JoinCluster(ctx context.Context, r ClusterJoinRequest) (ClusterStatus, error)
	// ClusterAction runs "promote", "demote", "failback" or "takeover".
	ClusterAction(ctx context.Context, action string) error
	LeaveCluster(ctx context.Context) error
}

func clusterRoutes(h *handler, cb ClusterBackend) map[string]map[string]http.HandlerFunc {
	c := clusterHandler{h, cb}
	return map[string]map[string]http.HandlerFunc{
		"/v1/cluster":          {"GET": c.status, "DELETE": c.leave},
		"/v1/cluster/init":     {"POST": c.init},
		"/v1/cluster/join":     {"POST": c.join},
		"/v1/cluster/promote":  {"POST": c.action("promote")},
		"/v1/cluster/demote":   {"POST": c.action("demote")},
		"/v1/cluster/failback": {"POST": c.action("failback")},
		"/v1/cluster/takeover": {"POST": c.action("takeover")},
	}
}

type clusterHandler struct {
	*handler
	cb ClusterBackend
}

// normCluster gives the wire form fixed shapes: never null lists.
func normCluster(s ClusterStatus) ClusterStatus {
	if s.Paths == nil {
		s.Paths = []ClusterPath{}
	}
	if s.Alarms == nil {
		s.Alarms = []string{}
	}
	return s
}

func (c clusterHandler) status(w http.ResponseWriter, r *http.Request) {
	s, err := c.cb.ClusterStatus(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, normCluster(s))
}

func (c clusterHandler) init(w http.ResponseWriter, r *http.Request) {
	var req ClusterInitRequest
	if !c.decode(w, r, &req) {
		return
	}
	out, err := c.cb.InitCluster(r.Context(), req)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.log.Info("cluster initialised", "cluster", out.Status.ClusterID, "node", out.Status.NodeID, "vip", out.Status.VIP)
	out.Status = normCluster(out.Status)
	writeJSON(w, http.StatusCreated, out)
}

func (c clusterHandler) join(w http.ResponseWriter, r *http.Request) {
	var req ClusterJoinRequest
	if !c.decode(w, r, &req) {
		return
	}
	s, err := c.cb.JoinCluster(r.Context(), req)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.log.Info("cluster joined", "cluster", s.ClusterID, "node", s.NodeID, "vip", s.VIP)
	writeJSON(w, http.StatusOK, normCluster(s))
}

func (c clusterHandler) action(a string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := c.cb.ClusterAction(r.Context(), a); err != nil {
			c.fail(w, r, err)
			return
		}
		c.log.Info("cluster action", "action", a)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (c clusterHandler) leave(w http.ResponseWriter, r *http.Request) {
	if err := c.cb.LeaveCluster(r.Context()); err != nil {
		c.fail(w, r, err)
		return
	}
	c.log.Info("cluster left")
	w.WriteHeader(http.StatusNoContent)
}

// ClusterStatus returns this node's view of the pair.
func (c *Client) ClusterStatus(ctx context.Context) (ClusterStatus, error) {
	var out ClusterStatus
	err := c.do(ctx, http.MethodGet, "/v1/cluster", nil, &out)
	return out, err
}

// InitCluster makes this node the primary of a new pair.
func (c *Client) InitCluster(ctx context.Context, r ClusterInitRequest) (ClusterInitResponse, error) {
	var out ClusterInitResponse
	err := c.do(ctx, http.MethodPost, "/v1/cluster/init", r, &out)
	return out, err
}

// JoinCluster makes this node the standby of the pair the token names.
func (c *Client) JoinCluster(ctx context.Context, r ClusterJoinRequest) (ClusterStatus, error) {
	var out ClusterStatus
	err := c.do(ctx, http.MethodPost, "/v1/cluster/join", r, &out)
	return out, err
}

// ClusterAction runs "promote", "demote", "failback" or "takeover".
func (c *Client) ClusterAction(ctx context.Context, action string) error {
	return c.do(ctx, http.MethodPost, "/v1/cluster/"+action, nil, nil)
}

// LeaveCluster makes this node stand-alone.
func (c *Client) LeaveCluster(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "/v1/cluster", nil, nil)
}

// Age converts a time to the API's age in milliseconds: -1 for the zero
// time.
func Age(now, t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return now.Sub(t).Milliseconds()
}
