package store

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
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
	if err := s.PutCluster(c); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.GetCluster()
	if err != nil || !ok {
		t.Fatalf("GetCluster: ok=%v err=%v", ok, err)
	}
	if got.VIP != c.VIP || got.Self != c.Self || got.Peer != c.Peer || !bytes.Equal(got.Key, c.Key) || got.Paths() != 2 {
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
