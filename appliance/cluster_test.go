package appliance

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/store"
	"ftnas/heartbeat"
)

func fixedIface(name string) func(netip.Addr) (string, error) {
	return func(netip.Addr) (string, error) { return name, nil }
}

func initReq() api.ClusterInitRequest {
	return api.ClusterInitRequest{
		VIP: "10.0.0.100/24", Public: "10.0.0.11", PeerPublic: "10.0.0.12",
		Dedicated: "10.1.0.1", PeerDedicated: "10.1.0.2", Witness: "10.0.0.254",
	}
}

func TestPlanInitAndJoin(t *testing.T) {
	prim, tok, err := planInit(initReq(), []byte{1, 2}, fixedIface("pub"))
	if err != nil {
		t.Fatal(err)
	}
	if prim.Role != store.RolePrimary || prim.Self.ID != 1 || prim.Peer.ID != 2 || prim.Interface != "pub" ||
		prim.HeartbeatPort != DefaultHeartbeatPort || prim.Failback != store.FailbackManual || prim.Paths() != 2 {
		t.Fatalf("primary config %+v", prim.Redacted())
	}
	stby, err := planJoin(api.ClusterJoinRequest{Token: tok, Interface: "eth9"}, fixedIface("unused"))
	if err != nil {
		t.Fatal(err)
	}
	if stby.Role != store.RoleStandby || stby.ID != prim.ID || string(stby.Key) != string(prim.Key) ||
		stby.Self != prim.Peer || stby.Peer != prim.Self || stby.Interface != "eth9" || stby.KeyPEM == prim.KeyPEM {
		t.Fatalf("standby config does not mirror the primary's:\n%+v\n%+v", stby.Redacted(), prim.Redacted())
	}
	// The heartbeat paths mirror each other.
	pp, sp := udpPaths(prim), udpPaths(stby)
	for i := range pp {
		if pp[i].Local != sp[i].Peer || pp[i].Peer != sp[i].Local {
			t.Fatalf("path %d: %v vs %v", i, pp[i], sp[i])
		}
	}
	mc := machineConfig(stby, 6, 1)
	if mc.Role != heartbeat.RoleStandby || mc.Epoch != 6 || mc.Paths != 2 || mc.NodeID != 2 || mc.PeerID != 1 {
		t.Fatalf("machine config %+v", mc)
	}
	if err := mc.WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
	// Two inits make different clusters and keys.
	other, _, err := planInit(initReq(), []byte{1, 2}, fixedIface("pub"))
	if err != nil || other.ID == prim.ID || string(other.Key) == string(prim.Key) {
		t.Fatalf("second init: id %d vs %d, err %v", other.ID, prim.ID, err)
	}
}

func TestPlanInitCarriesTiming(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	r := initReq()
	r.HeartbeatIntervalMS, r.DeadIntervalMS, r.LeaseMS = 120, 700, 400
	prim, tok, err := planInit(r, []byte{1, 2}, fixedIface("pub"))
	if err != nil {
		t.Fatal(err)
	}
	if prim.HeartbeatInterval != ms(120) || prim.DeadInterval != ms(700) || prim.Lease != ms(400) {
		t.Fatalf("primary timing %v %v %v", prim.HeartbeatInterval, prim.DeadInterval, prim.Lease)
	}
	if !strings.HasPrefix(tok, tokenPrefixTiming) {
		t.Fatalf("a token with a timing is not version 2: %.20s", tok)
	}
	stby, err := planJoin(api.ClusterJoinRequest{Token: tok}, fixedIface("pub"))
	if err != nil {
		t.Fatal(err)
	}
	if stby.Timing() != prim.Timing() {
		t.Fatalf("standby timing %+v, primary %+v", stby.Timing(), prim.Timing())
	}
	// The configured timing reaches the heartbeat machine on both nodes.
	for _, c := range []store.Cluster{prim, stby} {
		mc := machineConfig(c, 1, 1)
		want := heartbeat.Timing{Interval: ms(120), Jitter: ms(40), Stall: heartbeat.DefaultStall, Dead: ms(700), Lease: ms(400)}
		got := mc.Timing
		if got.Interval != want.Interval || got.Jitter != want.Jitter || got.Stall != want.Stall || got.Dead != want.Dead || got.Lease != want.Lease {
			t.Fatalf("%s: machine timing %+v, want %+v", c.Role, got, want)
		}
		full := mc.WithDefaults()
		if full.Timing != got || full.Validate() != nil {
			t.Fatalf("%s: machine config %+v: %v", c.Role, full.Timing, full.Validate())
		}
		if s := apiClusterStatus(c, heartbeat.Status{}, time.Unix(1, 0)); s.Timing != (api.ClusterTiming{IntervalMS: 120, JitterMS: 40, DeadMS: 700, LeaseMS: 400}) {
			t.Fatalf("%s: status timing %+v", c.Role, s.Timing)
		}
	}

	// Without a timing the token stays version 1, readable by older
	// standbys, and both nodes run the defaults.
	prim, tok, err = planInit(initReq(), []byte{1, 2}, fixedIface("pub"))
	if err != nil || !strings.HasPrefix(tok, tokenPrefix) {
		t.Fatalf("default timing: token %.20s, %v", tok, err)
	}
	if mc := machineConfig(prim, 1, 1); mc.Timing != heartbeat.DefaultTiming() {
		t.Fatalf("default machine timing %+v", mc.Timing)
	}
	if s := apiClusterStatus(prim, heartbeat.Status{}, time.Unix(1, 0)); s.Timing != (api.ClusterTiming{IntervalMS: 150, JitterMS: 50, DeadMS: 900, LeaseMS: 500}) {
		t.Fatalf("default status timing %+v", s.Timing)
	}
	// A token of an older primary has no timing fields: defaults.
	jt, err := decodeToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]any{}
	raw, _ := json.Marshal(jt)
	if err := json.Unmarshal(raw, &old); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"heartbeat_interval", "dead_interval", "lease"} {
		if _, ok := old[k]; ok {
			t.Fatalf("default token carries %s", k)
		}
	}
	raw, _ = json.Marshal(old)
	stby, err = planJoin(api.ClusterJoinRequest{Token: tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)}, fixedIface("pub"))
	if err != nil || stby.Timing() != heartbeat.DefaultTiming() {
		t.Fatalf("old token: timing %+v, %v", stby.Timing(), err)
	}

	// Bad timings are refused, naming the field.
	for _, tc := range []struct {
		mod  func(*api.ClusterInitRequest)
		want string
	}{
		{func(r *api.ClusterInitRequest) { r.HeartbeatIntervalMS = 5 }, "heartbeat_interval 5ms is outside"},
		{func(r *api.ClusterInitRequest) { r.HeartbeatIntervalMS = -150 }, "heartbeat_interval_ms -150 is out of range"},
		{func(r *api.ClusterInitRequest) { r.DeadIntervalMS = 1 << 62 }, "dead_interval_ms 4611686018427387904 is out of range"},
		{func(r *api.ClusterInitRequest) { r.DeadIntervalMS = 300 }, "dead_interval 300ms is below 500ms"},
		{func(r *api.ClusterInitRequest) { r.LeaseMS = 1000 }, "lease 1s is longer than the dead interval 900ms"},
	} {
		r := initReq()
		tc.mod(&r)
		if _, _, err := planInit(r, []byte{1, 2}, fixedIface("pub")); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want ErrInvalid naming %q", r, err, tc.want)
		}
	}
	// A token whose timing is bad is refused at join.
	jt.HeartbeatInterval, jt.DeadInterval = ms(150), ms(100)
	bad, err := encodeToken(jt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := planJoin(api.ClusterJoinRequest{Token: bad}, fixedIface("pub")); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "dead_interval 100ms") {
		t.Fatalf("bad token timing: %v", err)
	}
}

func TestPlanInitRefusesBadInput(t *testing.T) {
	for name, mod := range map[string]func(*api.ClusterInitRequest){
		"vip without length": func(r *api.ClusterInitRequest) { r.VIP = "10.0.0.100" },
		"no public":          func(r *api.ClusterInitRequest) { r.Public = "" },
		"bad peer":           func(r *api.ClusterInitRequest) { r.PeerPublic = "host.example" },
		"v6 witness":         func(r *api.ClusterInitRequest) { r.Witness = "fd00::1" },
		"half dedicated":     func(r *api.ClusterInitRequest) { r.PeerDedicated = "" },
		"vip is a node":      func(r *api.ClusterInitRequest) { r.VIP = "10.0.0.11/24" },
		"failback":           func(r *api.ClusterInitRequest) { r.Failback = "later" },
	} {
		r := initReq()
		mod(&r)
		if _, _, err := planInit(r, []byte{1, 2}, fixedIface("pub")); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	noIface := func(netip.Addr) (string, error) { return "", errors.New("no interface has it") }
	if _, _, err := planInit(initReq(), []byte{1, 2}, noIface); err == nil || !strings.Contains(err.Error(), "10.0.0.11") {
		t.Fatalf("no interface: %v", err)
	}
	for _, tok := range []string{"", "garbage", tokenPrefix + "!!!", tokenPrefix + "e30"} {
		if _, err := planJoin(api.ClusterJoinRequest{Token: tok}, fixedIface("x")); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("token %q: %v, want ErrInvalid", tok, err)
		}
	}
}

func FuzzDecodeToken(f *testing.F) {
	_, tok, err := planInit(initReq(), []byte{1, 2}, fixedIface("pub"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	r := initReq()
	r.HeartbeatIntervalMS, r.DeadIntervalMS, r.LeaseMS = 100, 600, 350
	_, tok2, err := planInit(r, []byte{1, 2}, fixedIface("pub"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok2)
	f.Add(tokenPrefix + "e30")
	f.Add(tokenPrefixTiming + "e30")
	f.Add(tokenPrefixTiming + base64.RawURLEncoding.EncodeToString([]byte(`{"heartbeat_interval":-1,"dead_interval":1e30,"lease":"x"}`)))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := planJoin(api.ClusterJoinRequest{Token: s}, fixedIface("pub"))
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("accepted an invalid configuration: %v", verr)
			}
		}
	})
}

func TestClusterProtection(t *testing.T) {
	c, _, err := planInit(initReq(), []byte{1, 2}, fixedIface("pub"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	heard := now.Add(-120 * time.Millisecond)
	base := heartbeat.Status{
		State: heartbeat.StateMaster, Serving: true, Healthy: true, Epoch: 2, PeerSeen: true, PeerAlive: true,
		PathAlive: []bool{true, true}, PathHeard: []time.Time{heard, heard},
		Peer:         heartbeat.Msg{State: heartbeat.StateSlave, Epoch: 2, Flags: heartbeat.FlagSynced},
		WitnessKnown: true, WitnessReachable: true, WitnessAt: now.Add(-time.Second),
	}
	for _, tc := range []struct {
		name string
		mod  func(*heartbeat.Status)
		want string
	}{
		{"master with slave on both paths", func(*heartbeat.Status) {}, api.ProtectionProtected},
		{"slave of a serving master", func(s *heartbeat.Status) {
			s.State, s.Serving, s.Peer.State, s.Peer.Flags, s.Synced = heartbeat.StateSlave, false, heartbeat.StateMaster, 0, true
		}, api.ProtectionProtected},
		{"master with a slave still resyncing", func(s *heartbeat.Status) { s.Peer.Flags = 0 }, api.ProtectionDegraded},
		{"master with a version 1 slave", func(s *heartbeat.Status) { s.Peer.Flags, s.Peer.Legacy = 0, true }, api.ProtectionProtected},
		{"slave resyncing from a serving master", func(s *heartbeat.Status) {
			s.State, s.Serving, s.Peer.State, s.Peer.Flags = heartbeat.StateSlave, false, heartbeat.StateMaster, 0
		}, api.ProtectionDegraded},
		{"one path down", func(s *heartbeat.Status) { s.PathAlive[1] = false }, api.ProtectionDegraded},
		{"peer dead", func(s *heartbeat.Status) { s.PeerAlive, s.PathAlive = false, []bool{false, false} }, api.ProtectionDegraded},
		{"nobody serves", func(s *heartbeat.Status) {
			s.State, s.Serving, s.PeerAlive = heartbeat.StateSlave, false, false
		}, api.ProtectionAtRisk},
	} {
		hs := base
		hs.PathAlive = append([]bool(nil), base.PathAlive...)
		tc.mod(&hs)
		s := apiClusterStatus(c, hs, now)
		if s.Protection != tc.want {
			t.Errorf("%s: protection %s, want %s", tc.name, s.Protection, tc.want)
		}
	}
	s := apiClusterStatus(c, base, now)
	if len(s.Paths) != 2 || s.Paths[0].Name != "public" || s.Paths[1].LastHeardMS != 120 || s.Witness.AgeMS != 1000 || s.PeerState != "slave" {
		t.Fatalf("status %+v", s)
	}
}
