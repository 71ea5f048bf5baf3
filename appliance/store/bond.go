package store

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// keyBondConfig holds the one Bond record in bucketBond.
const keyBondConfig = "config"

// Bond modes and datapaths as the store (and the API) spell them.
const (
	BondLoadBalance = "load-balance"
	BondFailover    = "failover"

	BondDatapathUserland = "userland" // TAP device + AF_PACKET sockets
	BondDatapathKernel   = "kernel"   // the Linux bonding driver
)

// Limits of a bond's configuration.
const (
	MaxBondMembers  = 16
	MaxBondAddrs    = 16
	MinBondInterval = 10 * time.Millisecond
	MaxBondInterval = 10 * time.Second
	MaxBondUpDelay  = 10 * time.Minute
	MaxNICNameLen   = 15 // IFNAMSIZ - 1
)

// Bond is the network bond's configuration: what nasd rebuilds the bond
// from at boot. The zero value is "no bond".
type Bond struct {
	// Mode is BondLoadBalance or BondFailover; "" means BondLoadBalance.
	Mode string `json:"mode"`
	// Members are the NICs in the order they were added; the first is the
	// primary, whose addresses the bond carries.
	Members []string `json:"members"`
	// Interval is the fault detector's interval; 0 means the default.
	Interval time.Duration `json:"interval"`
	// UpDelay is how long a failed member must stay healthy before it
	// rejoins; 0 means the default.
	UpDelay time.Duration `json:"up_delay"`
	// ProbeTarget is the IPv4 address ARP probes ask for through every
	// member (the gateway or a neighbour); "" means carrier only.
	ProbeTarget string `json:"probe_target"`
	// Datapath is the datapath the bond was formed with:
	// BondDatapathUserland, BondDatapathKernel, or "" (not chosen yet).
	Datapath string `json:"datapath"`
	// Addrs are the bond's IPv4 addresses with their prefix lengths, as
	// taken from the primary, so they can be put back if the primary lost
	// them (after a crash the userland bond's addresses are gone).
	Addrs []string `json:"addrs"`
	// Routes are the routes through the bond other than those the kernel
	// makes for its addresses (the default route, say), as "DST via GW"
	// or "DST" (on-link), DST a prefix or "default", recorded with Addrs
	// and put back with them.
	Routes []string `json:"routes,omitempty"`
	// Updated is when the record was last written.
	Updated time.Time `json:"updated"`
}

// ValidateNICName checks a network interface name as Linux takes it: 1–15
// bytes, not "." or "..", no '/', ':', white space or control characters.
func ValidateNICName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w interface name: it is empty", ErrInvalid)
	case len(name) > MaxNICNameLen:
		return fmt.Errorf("%w interface name %q: %d bytes, at most %d allowed", ErrInvalid, name, len(name), MaxNICNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("%w interface name %q", ErrInvalid, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c == 0x7f || c == '/' || c == ':' || c >= 0x80 {
			return fmt.Errorf("%w interface name %q: byte %q at position %d is not allowed", ErrInvalid, name, c, i+1)
		}
	}
	return nil
}

// ParseProbeTarget checks an ARP probe target: an IPv4 unicast address;
// "" means none (the zero Addr).
func ParseProbeTarget(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Errorf("%w probe target %q: not an IP address", ErrInvalid, s)
	case !a.Is4():
		return netip.Addr{}, fmt.Errorf("%w probe target %q: must be an IPv4 address (ARP probes are IPv4)", ErrInvalid, s)
	case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return netip.Addr{}, fmt.Errorf("%w probe target %q: must be a unicast address of a neighbour (the gateway, say)", ErrInvalid, s)
	}
	return a, nil
}

// ValidateBond checks a bond configuration and returns it normalised: the
// default mode spelled out, copies of the lists, addresses in canonical
// form.
func ValidateBond(b Bond) (Bond, error) {
	switch b.Mode {
	case "":
		b.Mode = BondLoadBalance
	case BondLoadBalance, BondFailover:
	default:
		return b, fmt.Errorf("%w bond mode %q: use %s or %s", ErrInvalid, b.Mode, BondLoadBalance, BondFailover)
	}
	if len(b.Members) > MaxBondMembers {
		return b, fmt.Errorf("%w bond: %d members, at most %d allowed", ErrInvalid, len(b.Members), MaxBondMembers)
	}
	for i, m := range b.Members {
		if err := ValidateNICName(m); err != nil {
			return b, fmt.Errorf("bond member: %w", err)
		}
		if slices.Index(b.Members, m) != i {
			return b, fmt.Errorf("%w bond: member %q is listed twice", ErrInvalid, m)
		}
	}
	b.Members = append([]string{}, b.Members...)
	switch {
	case b.Interval != 0 && (b.Interval < MinBondInterval || b.Interval > MaxBondInterval):
		return b, fmt.Errorf("%w bond detection interval %v: must be between %v and %v", ErrInvalid, b.Interval, MinBondInterval, MaxBondInterval)
	case b.UpDelay < 0 || b.UpDelay > MaxBondUpDelay:
		return b, fmt.Errorf("%w bond up delay %v: must be between 0 and %v", ErrInvalid, b.UpDelay, MaxBondUpDelay)
	}
	if _, err := ParseProbeTarget(b.ProbeTarget); err != nil {
		return b, fmt.Errorf("bond: %w", err)
	}
	switch b.Datapath {
	case "", BondDatapathUserland, BondDatapathKernel:
	default:
		return b, fmt.Errorf("%w bond datapath %q: use %s or %s", ErrInvalid, b.Datapath, BondDatapathUserland, BondDatapathKernel)
	}
	if len(b.Addrs) > MaxBondAddrs {
		return b, fmt.Errorf("%w bond: %d addresses, at most %d allowed", ErrInvalid, len(b.Addrs), MaxBondAddrs)
	}
	addrs := make([]string, 0, len(b.Addrs))
	for _, s := range b.Addrs {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return b, fmt.Errorf("%w bond address %q: not an IPv4 address with a prefix length such as 192.0.2.7/24", ErrInvalid, s)
		}
		addrs = append(addrs, p.String())
	}
	b.Addrs = addrs
	if len(b.Routes) > MaxBondAddrs {
		return b, fmt.Errorf("%w bond: %d routes, at most %d allowed", ErrInvalid, len(b.Routes), MaxBondAddrs)
	}
	routes := make([]string, 0, len(b.Routes))
	for _, s := range b.Routes {
		dst, gw, err := ParseBondRoute(s)
		if err != nil {
			return b, fmt.Errorf("bond: %w", err)
		}
		routes = append(routes, FormatBondRoute(dst, gw))
	}
	b.Routes = routes
	return b, nil
}

// ParseBondRoute reads a route as Bond.Routes holds it: "DST via GW" or
// "DST", DST an IPv4 prefix or "default", GW an IPv4 address (invalid
// for an on-link route).
func ParseBondRoute(s string) (dst netip.Prefix, gw netip.Addr, err error) {
	bad := func(why string) error {
		return fmt.Errorf("%w route %q: %s (want DST [via GW], DST an IPv4 prefix or default)", ErrInvalid, s, why)
	}
	f := strings.Fields(s)
	switch {
	case len(f) == 0:
		return dst, gw, bad("empty")
	case len(f) != 1 && (len(f) != 3 || f[1] != "via"):
		return dst, gw, bad("not of the form DST [via GW]")
	}
	if f[0] == "default" {
		dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	} else if dst, err = netip.ParsePrefix(f[0]); err != nil || !dst.Addr().Is4() {
		return netip.Prefix{}, gw, bad("destination is not an IPv4 prefix")
	}
	dst = dst.Masked()
	if len(f) == 3 {
		if gw, err = netip.ParseAddr(f[2]); err != nil || !gw.Is4() || gw.IsUnspecified() || gw.IsMulticast() {
			return netip.Prefix{}, netip.Addr{}, bad("gateway is not a unicast IPv4 address")
		}
	}
	return dst, gw, nil
}

// FormatBondRoute is ParseBondRoute's inverse.
func FormatBondRoute(dst netip.Prefix, gw netip.Addr) string {
	d := dst.String()
	if dst.Bits() == 0 {
		d = "default"
	}
	if !gw.IsValid() {
		return d
	}
	return d + " via " + gw.String()
}

// Bond returns the bond's configuration; with none stored, the zero Bond
// (no members) with the default mode.
func (s *Store) Bond() (Bond, error) {
	var b Bond
	err := s.db.View(func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte(bucketBond))
		if bk == nil {
			return nil // a state file from before bonding: no bond
		}
		raw := bk.Get([]byte(keyBondConfig))
		if raw == nil {
			return nil
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			return fmt.Errorf("decode bond configuration: %w", err)
		}
		return nil
	})
	if err != nil {
		return Bond{}, fmt.Errorf("store: read bond: %w", err)
	}
	updated := b.Updated
	if b, err = ValidateBond(b); err != nil {
		return Bond{}, fmt.Errorf("store: the stored bond configuration is invalid (%w); set it again with nasctl bond", err)
	}
	b.Updated = updated
	return b, nil
}

// SetBond validates and stores the bond's configuration, replacing the
// previous one, and returns it as stored.
func (s *Store) SetBond(b Bond) (Bond, error) {
	b, err := ValidateBond(b)
	if err != nil {
		return Bond{}, err
	}
	b.Updated = s.now().UTC()
	raw, err := json.Marshal(b)
	if err != nil {
		return Bond{}, fmt.Errorf("store: encode bond: %w", err)
	}
	err = s.update(func(tx *bbolt.Tx) error {
		// Made here, not only in create: older state files lack it.
		bk, err := tx.CreateBucketIfNotExists([]byte(bucketBond))
		if err != nil {
			return err
		}
		return bk.Put([]byte(keyBondConfig), raw)
	})
	if err != nil {
		return Bond{}, fmt.Errorf("store: write bond: %w", err)
	}
	s.log.Info("bond configuration stored", "mode", b.Mode, "members", strings.Join(b.Members, ","),
		"probe_target", b.ProbeTarget, "datapath", b.Datapath)
	return b, nil
}
