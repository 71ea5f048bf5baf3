package appliance

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/store"
	"ftnas/heartbeat"
	"ftnas/journal"
)

// Default ports of the pair's own traffic.
const (
	DefaultHeartbeatPort = 7470 // UDP, both paths
	DefaultJournalPort   = 7471 // TCP, TLS, on the master
)

// tokenPrefix marks a join token and its version. A token that carries a
// heartbeat timing other than the default is version 2 (tokenPrefixTiming),
// so a standby too old to read the timing refuses it rather than run a
// timing of its own; this version reads both.
const (
	tokenPrefix       = "ftnas-join-1:"
	tokenPrefixTiming = "ftnas-join-2:"
)

// joinToken is what `cluster init` hands to the standby: the pair's shared
// configuration, and the standby's own TLS key (made at init so both
// certificates can be pinned from the start).
type joinToken struct {
	ClusterID     uint64            `json:"cluster_id"`
	Key           []byte            `json:"key"`
	VIP           netip.Prefix      `json:"vip"`
	Witness       netip.Addr        `json:"witness"`
	Failback      string            `json:"failback"`
	HeartbeatPort uint16            `json:"heartbeat_port"`
	JournalPort   uint16            `json:"journal_port"`
	Primary       store.ClusterNode `json:"primary"`
	Standby       store.ClusterNode `json:"standby"`
	StandbyKeyPEM string            `json:"standby_key_pem"`
	RootStamp     []byte            `json:"root_stamp"`
	// The pair's heartbeat timing (store.Cluster's); absent (0, the
	// defaults) in a token of an older primary.
	HeartbeatInterval time.Duration `json:"heartbeat_interval,omitempty"`
	DeadInterval      time.Duration `json:"dead_interval,omitempty"`
	Lease             time.Duration `json:"lease,omitempty"`
}

func encodeToken(t joinToken) (string, error) {
	raw, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("cluster: encode join token: %w", err)
	}
	prefix := tokenPrefix
	if t.HeartbeatInterval != 0 || t.DeadInterval != 0 || t.Lease != 0 {
		prefix = tokenPrefixTiming
	}
	return prefix + base64.RawURLEncoding.EncodeToString(raw), nil
}

func decodeToken(s string) (joinToken, error) {
	var t joinToken
	s = strings.TrimSpace(s)
	body, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		body, ok = strings.CutPrefix(s, tokenPrefixTiming)
	}
	if !ok {
		return t, fmt.Errorf("cluster: join token: %w: it does not start with %q; copy the whole line `nasctl cluster init` printed", store.ErrInvalid, tokenPrefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return t, fmt.Errorf("cluster: join token: %w: not base64url (%v); was it cut or wrapped?", store.ErrInvalid, err)
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return t, fmt.Errorf("cluster: join token: %w: %v", store.ErrInvalid, err)
	}
	return t, nil
}

// parseAddr parses an optional or required IP address field.
func parseAddr(field, s string, required bool) (netip.Addr, error) {
	if s == "" {
		if required {
			return netip.Addr{}, fmt.Errorf("cluster: %w: %s is required", store.ErrInvalid, field)
		}
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("cluster: %w: %s %q is not an IPv4 address", store.ErrInvalid, field, s)
	}
	return a, nil
}

// planInit turns an init request into this node's (primary) configuration
// and the standby's join token. ifaceFor finds the interface holding an
// address when the request names none.
func planInit(r api.ClusterInitRequest, root []byte, ifaceFor func(netip.Addr) (string, error)) (store.Cluster, string, error) {
	c := store.Cluster{RootStamp: root}
	fail := func(err error) (store.Cluster, string, error) { return store.Cluster{}, "", err }
	vip, err := netip.ParsePrefix(r.VIP)
	if err != nil {
		return fail(fmt.Errorf("cluster: %w: vip %q is not an address with a prefix length such as 10.0.0.100/24", store.ErrInvalid, r.VIP))
	}
	c.VIP = vip
	var addrs [5]netip.Addr
	for i, f := range []struct {
		name, v string
		req     bool
	}{{"public", r.Public, true}, {"peer_public", r.PeerPublic, true}, {"dedicated", r.Dedicated, false}, {"peer_dedicated", r.PeerDedicated, false}, {"witness", r.Witness, true}} {
		if addrs[i], err = parseAddr(f.name, f.v, f.req); err != nil {
			return fail(err)
		}
	}
	c.Witness = addrs[4]
	c.Self = store.ClusterNode{ID: r.NodeID, Public: addrs[0], Dedicated: addrs[2]}
	c.Peer = store.ClusterNode{ID: r.PeerID, Public: addrs[1], Dedicated: addrs[3]}
	if c.Self.ID == 0 {
		c.Self.ID = 1
	}
	if c.Peer.ID == 0 {
		c.Peer.ID = c.Self.ID + 1
	}
	c.Role, c.Failback = store.RolePrimary, r.Failback
	if c.Failback == "" {
		c.Failback = store.FailbackManual
	}
	c.HeartbeatPort, c.JournalPort = orDefault(r.HeartbeatPort, DefaultHeartbeatPort), orDefault(r.JournalPort, DefaultJournalPort)
	for _, f := range []struct {
		name string
		ms   int64
		d    *time.Duration
	}{{"heartbeat_interval_ms", r.HeartbeatIntervalMS, &c.HeartbeatInterval}, {"dead_interval_ms", r.DeadIntervalMS, &c.DeadInterval}, {"lease_ms", r.LeaseMS, &c.Lease}} {
		if *f.d, err = msDuration(f.name, f.ms); err != nil {
			return fail(err)
		}
	}
	c.Interface = r.Interface
	if c.Interface == "" {
		if c.Interface, err = ifaceFor(c.Self.Public); err != nil {
			return fail(fmt.Errorf("cluster: %w: no interface given and none holds %v: %v", store.ErrInvalid, c.Self.Public, err))
		}
	}
	var rnd [8 + store.MinClusterKeyLen]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fail(fmt.Errorf("cluster: init: random: %w", err))
	}
	c.ID = binary.BigEndian.Uint64(rnd[:8]) | 1 // never 0
	c.Key = rnd[8:]
	selfCert, selfKey, err := journal.GenerateCert(nodeName(c.Self.ID))
	if err != nil {
		return fail(err)
	}
	peerCert, peerKey, err := journal.GenerateCert(nodeName(c.Peer.ID))
	if err != nil {
		return fail(err)
	}
	c.Self.CertPEM, c.KeyPEM, c.Peer.CertPEM = string(selfCert), string(selfKey), string(peerCert)
	if err := c.Validate(); err != nil {
		return fail(err)
	}
	tok, err := encodeToken(joinToken{
		ClusterID: c.ID, Key: c.Key, VIP: c.VIP, Witness: c.Witness, Failback: c.Failback,
		HeartbeatPort: c.HeartbeatPort, JournalPort: c.JournalPort,
		Primary: c.Self, Standby: c.Peer, StandbyKeyPEM: string(peerKey), RootStamp: c.RootStamp,
		HeartbeatInterval: c.HeartbeatInterval, DeadInterval: c.DeadInterval, Lease: c.Lease,
	})
	if err != nil {
		return fail(err)
	}
	return c, tok, nil
}

// planJoin turns a join request into this node's (standby) configuration.
func planJoin(r api.ClusterJoinRequest, ifaceFor func(netip.Addr) (string, error)) (store.Cluster, error) {
	t, err := decodeToken(r.Token)
	if err != nil {
		return store.Cluster{}, err
	}
	c := store.Cluster{
		ID: t.ClusterID, Key: t.Key, Role: store.RoleStandby, VIP: t.VIP, Interface: r.Interface,
		Witness: t.Witness, Failback: t.Failback, HeartbeatPort: t.HeartbeatPort, JournalPort: t.JournalPort,
		Self: t.Standby, Peer: t.Primary, KeyPEM: t.StandbyKeyPEM, RootStamp: t.RootStamp,
		HeartbeatInterval: t.HeartbeatInterval, DeadInterval: t.DeadInterval, Lease: t.Lease,
	}
	if c.Interface == "" {
		if c.Interface, err = ifaceFor(c.Self.Public); err != nil {
			return store.Cluster{}, fmt.Errorf("cluster: %w: no interface given and none on this node holds the standby address %v from the token: %v", store.ErrInvalid, c.Self.Public, err)
		}
	}
	if err := c.Validate(); err != nil {
		return store.Cluster{}, fmt.Errorf("join token: %w", err)
	}
	return c, nil
}

// maxTimingMS bounds the timing fields of an init request before they are
// converted (far above what store.Cluster.Validate accepts, far below
// overflow).
const maxTimingMS = 3_600_000

// msDuration converts a request's millisecond field; 0 stays 0 (default).
func msDuration(field string, ms int64) (time.Duration, error) {
	if ms < 0 || ms > maxTimingMS {
		return 0, fmt.Errorf("cluster: %w: %s %d is out of range (milliseconds, 0 for the default)", store.ErrInvalid, field, ms)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func orDefault(v, def uint16) uint16 {
	if v == 0 {
		return def
	}
	return v
}

func nodeName(id uint32) string { return "node-" + strconv.FormatUint(uint64(id), 10) }

// machineConfig is the heartbeat machine's configuration for c.
func machineConfig(c store.Cluster, epoch uint64, seed uint64) heartbeat.Config {
	role := heartbeat.RolePrimary
	if c.Role == store.RoleStandby {
		role = heartbeat.RoleStandby
	}
	fb := heartbeat.FailbackManual
	if c.Failback == store.FailbackAuto {
		fb = heartbeat.FailbackAuto
	}
	return heartbeat.Config{
		ClusterID: c.ID, NodeID: c.Self.ID, PeerID: c.Peer.ID, Role: role,
		Paths: c.Paths(), Failback: fb, Epoch: epoch, Seed: seed, Timing: c.Timing(),
	}
}

// apiTiming is a timing as the API shows it.
func apiTiming(t heartbeat.Timing) api.ClusterTiming {
	return api.ClusterTiming{
		IntervalMS: t.Interval.Milliseconds(), JitterMS: t.Jitter.Milliseconds(),
		DeadMS: t.Dead.Milliseconds(), LeaseMS: t.Lease.Milliseconds(),
	}
}

// udpPaths are the heartbeat paths: public first, then the dedicated link.
func udpPaths(c store.Cluster) []heartbeat.UDPPath {
	p := []heartbeat.UDPPath{{
		Local: netip.AddrPortFrom(c.Self.Public, c.HeartbeatPort),
		Peer:  netip.AddrPortFrom(c.Peer.Public, c.HeartbeatPort),
	}}
	if c.Paths() == 2 {
		p = append(p, heartbeat.UDPPath{
			Local: netip.AddrPortFrom(c.Self.Dedicated, c.HeartbeatPort),
			Peer:  netip.AddrPortFrom(c.Peer.Dedicated, c.HeartbeatPort),
		})
	}
	return p
}

// pathName names a heartbeat path by index.
func pathName(i int) string {
	if i == 0 {
		return "public"
	}
	return "dedicated"
}

// apiClusterStatus maps the machine's status to the API's.
func apiClusterStatus(c store.Cluster, hs heartbeat.Status, now time.Time) api.ClusterStatus {
	s := api.ClusterStatus{
		Configured: true, ClusterID: c.ID, NodeID: c.Self.ID, PeerID: c.Peer.ID, Role: c.Role,
		State: hs.State.String(), Serving: hs.Serving, Healthy: hs.Healthy, Epoch: hs.Epoch,
		VIP: c.VIP.String(), Interface: c.Interface, Failback: c.Failback, Timing: apiTiming(c.Timing()),
		PeerSeen: hs.PeerSeen, PeerAlive: hs.PeerAlive, Journal: hs.Journal,
		Synced: hs.Synced, Outdating: hs.Outdating, PeerOutdated: hs.PeerOutdated,
		Witness: api.ClusterWitness{Addr: c.Witness.String(), Known: hs.WitnessKnown, Reachable: hs.WitnessReachable, AgeMS: api.Age(now, hs.WitnessAt)},
	}
	if hs.PeerSeen {
		s.PeerState, s.PeerEpoch, s.PeerJournal = hs.Peer.State.String(), hs.Peer.Epoch, hs.Peer.Journal
	}
	peers := []netip.Addr{c.Peer.Public, c.Peer.Dedicated}
	locals := []netip.Addr{c.Self.Public, c.Self.Dedicated}
	allPaths := true
	for i, alive := range hs.PathAlive {
		p := api.ClusterPath{Name: pathName(i), Local: locals[min(i, 1)].String(), Peer: peers[min(i, 1)].String(), Alive: alive, LastHeardMS: -1}
		if i < len(hs.PathHeard) {
			p.LastHeardMS = api.Age(now, hs.PathHeard[i])
		}
		allPaths = allPaths && alive
		s.Paths = append(s.Paths, p)
	}
	for _, a := range hs.Alarms {
		s.Alarms = append(s.Alarms, a.String())
	}
	peerServing := hs.PeerAlive && hs.Peer.State.Serving()
	// The standby is a copy of the master's data once it caught up after
	// (re)joining; a version 1 peer does not say.
	peerSynced := hs.Peer.Legacy || hs.Peer.Flags&heartbeat.FlagSynced != 0
	switch {
	case hs.Serving && hs.PeerAlive && allPaths && !peerServing && hs.Healthy && peerSynced:
		s.Protection = api.ProtectionProtected
	case !hs.Serving && peerServing && allPaths && hs.Healthy && hs.Synced:
		s.Protection = api.ProtectionProtected
	case hs.Serving || peerServing:
		s.Protection = api.ProtectionDegraded
	default:
		s.Protection = api.ProtectionAtRisk
	}
	return s
}
