package store

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"ftnas/heartbeat"
)

func testCluster() Cluster {
	return Cluster{
		ID: 42, Key: bytes.Repeat([]byte{7}, MinClusterKeyLen), Role: RolePrimary,
		VIP: netip.MustParsePrefix("10.0.0.100/24"), Interface: "pub",
		Witness: netip.MustParseAddr("10.0.0.254"), Failback: FailbackManual,
		HeartbeatPort: 7470, JournalPort: 7471,
		Self:   ClusterNode{ID: 1, Public: netip.MustParseAddr("10.0.0.11"), Dedicated: netip.MustParseAddr("10.1.0.1"), CertPEM: "c1"},
		Peer:   ClusterNode{ID: 2, Public: netip.MustParseAddr("10.0.0.12"), Dedicated: netip.MustParseAddr("10.1.0.2"), CertPEM: "c2"},
		KeyPEM: "k1", RootStamp: []byte{1},
	}
}

func TestClusterRoundTrip(t *testing.T) {
	s, _ := openTemp(t)
	if _, ok, err := s.GetCluster(); ok || err != nil {
		t.Fatalf("new store: cluster ok=%v err=%v", ok, err)
	}
	c := testCluster()
	c.HeartbeatInterval, c.DeadInterval, c.Lease = 120*time.Millisecond, 800*time.Millisecond, 450*time.Millisecond
	if err := s.PutCluster(c); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.GetCluster()
	if err != nil || !ok {
		t.Fatalf("GetCluster: ok=%v err=%v", ok, err)
	}
	if got.VIP != c.VIP || got.Self != c.Self || got.Peer != c.Peer || !bytes.Equal(got.Key, c.Key) || got.Paths() != 2 ||
		got.Timing() != c.Timing() {
		t.Fatalf("got %+v, want %+v", got, c)
	}
	// Another cluster's configuration is refused until this one is left.
	other := c
	other.ID = 43
	if err := s.PutCluster(other); !errors.Is(err, ErrExists) {
		t.Fatalf("PutCluster of another cluster: %v, want ErrExists", err)
	}
	if err := s.DeleteCluster(); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCluster(other); err != nil {
		t.Fatalf("PutCluster after leaving: %v", err)
	}
}

func TestClusterValidate(t *testing.T) {
	for name, mod := range map[string]func(*Cluster){
		"id 0":            func(c *Cluster) { c.ID = 0 },
		"short key":       func(c *Cluster) { c.Key = c.Key[:8] },
		"role":            func(c *Cluster) { c.Role = "boss" },
		"vip v6":          func(c *Cluster) { c.VIP = netip.MustParsePrefix("fd00::1/64") },
		"no interface":    func(c *Cluster) { c.Interface = "" },
		"long interface":  func(c *Cluster) { c.Interface = "a-very-long-interface" },
		"no witness":      func(c *Cluster) { c.Witness = netip.Addr{} },
		"failback":        func(c *Cluster) { c.Failback = "sometimes" },
		"no port":         func(c *Cluster) { c.JournalPort = 0 },
		"same ids":        func(c *Cluster) { c.Peer.ID = 1 },
		"same public":     func(c *Cluster) { c.Peer.Public = c.Self.Public },
		"vip is a node":   func(c *Cluster) { c.VIP = netip.MustParsePrefix("10.0.0.11/24") },
		"half dedicated":  func(c *Cluster) { c.Peer.Dedicated = netip.Addr{} },
		"same dedicated":  func(c *Cluster) { c.Peer.Dedicated = c.Self.Dedicated },
		"no certificates": func(c *Cluster) { c.KeyPEM = "" },
	} {
		c := testCluster()
		mod(&c)
		err := c.Validate()
		if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "cluster: invalid: ") {
			t.Errorf("%s: %v, want a cluster ErrInvalid", name, err)
		}
	}
	c := testCluster()
	c.Self.Dedicated, c.Peer.Dedicated = netip.Addr{}, netip.Addr{}
	if err := c.Validate(); err != nil || c.Paths() != 1 {
		t.Fatalf("public path only: %v, paths %d", err, c.Paths())
	}
	if r := c.Redacted(); r.Key != nil || r.KeyPEM != "" {
		t.Fatal("Redacted keeps secrets")
	}
}

func TestClusterTiming(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	// Unset: heartbeat's defaults exactly.
	if got := testCluster().Timing(); got != heartbeat.DefaultTiming() {
		t.Fatalf("unset timing %+v, want the defaults %+v", got, heartbeat.DefaultTiming())
	}
	for _, tc := range []struct {
		name                  string
		interval, dead, lease time.Duration
		want                  string // "" when valid, else what the error names
	}{
		{"defaults", 0, 0, 0, ""},
		{"issue example", ms(150), ms(900), ms(500), ""},
		{"fast", ms(20), ms(300), ms(200), ""},
		{"slow interval only", 2 * time.Second, 0, 0, ""},
		{"dead only", 0, 5 * time.Second, 0, ""},
		{"lease only", 0, 0, ms(800), ""},
		{"interval too short", ms(10), 0, 0, "heartbeat_interval 10ms is outside 20ms..2s"},
		{"interval too long", 3 * time.Second, 0, 0, "heartbeat_interval 3s is outside 20ms..2s"},
		{"negative interval", -ms(150), 0, 0, "heartbeat_interval -150ms"},
		{"negative dead", 0, -time.Second, 0, "dead_interval -1s is negative"},
		{"negative lease", 0, 0, -time.Second, "lease -1s is negative"},
		{"dead below two beats", ms(150), ms(400), 0, "dead_interval 400ms is below 500ms"},
		{"dead below two slow beats", ms(500), ms(900), 0, "dead_interval 900ms is below 1.433333332s"},
		{"dead too long", 0, time.Minute, 0, "dead_interval 1m0s is above 30s"},
		{"lease below a beat", ms(150), 0, ms(250), "lease 250ms is below 300ms"},
		{"lease beyond dead", ms(150), ms(900), ms(1000), "lease 1s is longer than the dead interval 900ms"},
		{"lease beyond default dead", 0, 0, 2 * time.Second, "lease 2s is longer than the dead interval 900ms"},
	} {
		c := testCluster()
		c.HeartbeatInterval, c.DeadInterval, c.Lease = tc.interval, tc.dead, tc.lease
		err := c.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			tm := c.Timing()
			if tc.interval != 0 && (tm.Interval != tc.interval || tm.Jitter != tc.interval/3) {
				t.Errorf("%s: interval %v jitter %v, want %v and a third of it", tc.name, tm.Interval, tm.Jitter, tc.interval)
			}
			if (tc.dead != 0 && tm.Dead != tc.dead) || (tc.lease != 0 && tm.Lease != tc.lease) || tm.Stall != heartbeat.DefaultStall {
				t.Errorf("%s: timing %+v", tc.name, tm)
			}
			if err := tm.Validate(); err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrInvalid naming %q", tc.name, err, tc.want)
		}
	}
}

func TestClusterEpochNeverDecreases(t *testing.T) {
	s, _ := openTemp(t)
	if e, err := s.ClusterEpoch(); e != 0 || err != nil {
		t.Fatalf("new store epoch %d, %v", e, err)
	}
	for _, e := range []uint64{2, 2, 5} {
		if err := s.SetClusterEpoch(e); err != nil {
			t.Fatalf("SetClusterEpoch(%d): %v", e, err)
		}
	}
	if err := s.SetClusterEpoch(4); err == nil {
		t.Fatal("epoch went from 5 to 4")
	}
	if e, _ := s.ClusterEpoch(); e != 5 {
		t.Fatalf("epoch %d, want 5", e)
	}
}
