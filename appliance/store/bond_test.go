package store

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func TestBondDefaultsWhenUnset(t *testing.T) {
	s, _ := openTemp(t)
	b, err := s.Bond()
	if err != nil {
		t.Fatal(err)
	}
	if b.Mode != BondLoadBalance || b.Members == nil || len(b.Members) != 0 || b.Addrs == nil || b.ProbeTarget != "" || b.Datapath != "" {
		t.Errorf("unset bond = %+v", b)
	}
}

func TestSetBondPersists(t *testing.T) {
	s, path := openTemp(t)
	in := Bond{
		Members: []string{"eth1", "eth0"}, Interval: 50 * time.Millisecond, UpDelay: time.Second,
		ProbeTarget: "192.0.2.1", Datapath: BondDatapathUserland, Addrs: []string{"192.0.2.7/24"},
		Routes: []string{"0.0.0.0/0 via 192.0.2.1", "198.51.100.7/24  via 192.0.2.9", "203.0.113.0/24"},
	}
	got, err := s.SetBond(in)
	if err != nil {
		t.Fatal(err)
	}
	if got.Mode != BondLoadBalance || got.Updated.IsZero() {
		t.Errorf("SetBond = %+v", got)
	}
	in.Members[0] = "mutated"
	s.Close()
	s2, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	b, err := s2.Bond()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(b.Members, ",") != "eth1,eth0" || b.Interval != 50*time.Millisecond || b.UpDelay != time.Second ||
		b.ProbeTarget != "192.0.2.1" || b.Datapath != BondDatapathUserland || strings.Join(b.Addrs, ",") != "192.0.2.7/24" ||
		strings.Join(b.Routes, ",") != "default via 192.0.2.1,198.51.100.0/24 via 192.0.2.9,203.0.113.0/24" || !b.Updated.Equal(got.Updated) {
		t.Errorf("after reopen = %+v", b)
	}
	// Replace: the member order is kept as given.
	b.Mode, b.Members = BondFailover, []string{"eth0"}
	if _, err := s2.SetBond(b); err != nil {
		t.Fatal(err)
	}
	if b2, _ := s2.Bond(); b2.Mode != BondFailover || strings.Join(b2.Members, ",") != "eth0" {
		t.Errorf("replaced = %+v", b2)
	}
}

func TestSetBondRefusesBadInput(t *testing.T) {
	s, _ := openTemp(t)
	if _, err := s.SetBond(Bond{Members: []string{"eth0"}}); err != nil {
		t.Fatal(err)
	}
	many := make([]string, MaxBondMembers+1)
	for i := range many {
		many[i] = "e" + strings.Repeat("x", i%10) + string(rune('a'+i))
	}
	for _, c := range []struct {
		b    Bond
		want string
	}{
		{Bond{Mode: "round-robin"}, `bond mode "round-robin"`},
		{Bond{Members: []string{""}}, "interface name: it is empty"},
		{Bond{Members: []string{"averyveryverylongname"}}, "at most 15 allowed"},
		{Bond{Members: []string{"eth0", "eth0"}}, `member "eth0" is listed twice`},
		{Bond{Members: []string{"eth 0"}}, "is not allowed"},
		{Bond{Members: []string{"../x"}}, "is not allowed"},
		{Bond{Members: []string{"eth0:1"}}, "is not allowed"},
		{Bond{Members: []string{".."}}, `interface name ".."`},
		{Bond{Members: many}, "at most 16 allowed"},
		{Bond{Interval: time.Millisecond}, "detection interval 1ms"},
		{Bond{Interval: time.Hour}, "detection interval 1h0m0s"},
		{Bond{UpDelay: -time.Second}, "up delay -1s"},
		{Bond{ProbeTarget: "gateway"}, `probe target "gateway": not an IP address`},
		{Bond{ProbeTarget: "2001:db8::1"}, "must be an IPv4 address"},
		{Bond{ProbeTarget: "0.0.0.0"}, "must be a unicast address"},
		{Bond{ProbeTarget: "255.255.255.255"}, "must be a unicast address"},
		{Bond{ProbeTarget: "224.0.0.1"}, "must be a unicast address"},
		{Bond{Datapath: "dpdk"}, `bond datapath "dpdk"`},
		{Bond{Addrs: []string{"192.0.2.7"}}, `bond address "192.0.2.7"`},
		{Bond{Addrs: []string{"2001:db8::1/64"}}, `bond address "2001:db8::1/64"`},
		{Bond{Routes: []string{""}}, `route "": empty`},
		{Bond{Routes: []string{"default 192.0.2.1"}}, "not of the form DST [via GW]"},
		{Bond{Routes: []string{"10.0.0.0 via 192.0.2.1"}}, "destination is not an IPv4 prefix"},
		{Bond{Routes: []string{"2001:db8::/32"}}, "destination is not an IPv4 prefix"},
		{Bond{Routes: []string{"default via gw"}}, "gateway is not a unicast IPv4 address"},
		{Bond{Routes: []string{"default via 0.0.0.0"}}, "gateway is not a unicast IPv4 address"},
	} {
		_, err := s.SetBond(c.b)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SetBond(%+v) = %v, want ErrInvalid mentioning %q", c.b, err, c.want)
		}
	}
	if b, _ := s.Bond(); strings.Join(b.Members, ",") != "eth0" {
		t.Errorf("a refused configuration replaced the stored one: %+v", b)
	}
}

func TestBondInOlderStateFile(t *testing.T) {
	// A state file made before bonding has no bond bucket: it opens, reads
	// as no bond, and takes a bond configuration.
	s, path := openTemp(t)
	s.Close()
	boltFile(t, path, func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte(bucketBond)) })
	s2, err := Open(path, nil)
	if err != nil {
		t.Fatalf("a state file without the bond bucket was refused: %v", err)
	}
	defer s2.Close()
	if b, err := s2.Bond(); err != nil || len(b.Members) != 0 {
		t.Fatalf("Bond() = %+v, %v", b, err)
	}
	if _, err := s2.SetBond(Bond{Members: []string{"eth0"}}); err != nil {
		t.Fatal(err)
	}
	if b, _ := s2.Bond(); strings.Join(b.Members, ",") != "eth0" {
		t.Errorf("Bond() = %+v", b)
	}
}

func TestBondCorruptRecord(t *testing.T) {
	s, path := openTemp(t)
	s.Close()
	for _, raw := range []string{"{not json", `{"mode":"mesh"}`} {
		boltFile(t, path, func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte(bucketBond)).Put([]byte(keyBondConfig), []byte(raw))
		})
		s2, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s2.Bond(); err == nil || !strings.Contains(err.Error(), "store: read bond") && !strings.Contains(err.Error(), "stored bond configuration is invalid") {
			t.Errorf("corrupt record %q: Bond() = %v", raw, err)
		}
		s2.Close()
	}
}

func FuzzValidateBond(f *testing.F) {
	f.Add("eth0", "192.0.2.1", "192.0.2.7/24", "failover")
	f.Add("", "", "", "")
	f.Add("eth0:1", "::1", "1.2.3.4/33", "x")
	f.Fuzz(func(t *testing.T, nic, target, addr, mode string) {
		b, err := ValidateBond(Bond{Mode: mode, Members: []string{nic}, ProbeTarget: target, Addrs: []string{addr}, Routes: []string{addr + " via " + target}})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		// What passes is valid again, and names a usable interface.
		again, err := ValidateBond(b)
		if err != nil {
			t.Fatalf("normalised bond refused: %v", err)
		}
		if !slices.Equal(again.Routes, b.Routes) {
			t.Fatalf("routes %q normalise again to %q", b.Routes, again.Routes)
		}
		if len(nic) == 0 || len(nic) > MaxNICNameLen || strings.ContainsAny(nic, "/: \t\n") {
			t.Fatalf("accepted interface name %q", nic)
		}
	})
}
