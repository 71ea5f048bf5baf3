package bonding

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) Tick { return Tick{Now: t0.Add(time.Duration(ms) * time.Millisecond)} }

func mac(last byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, last} }

func link(name string, last byte, addrs ...string) LinkInfo {
	l := LinkInfo{Name: name, Exists: true, Up: true, Carrier: true, MAC: mac(last), MTU: 1500}
	for _, a := range addrs {
		l.Addrs = append(l.Addrs, netip.MustParsePrefix(a))
	}
	return l
}

// show renders an action as one comparable line.
func show(a Action) string {
	switch a := a.(type) {
	case Prepare:
		return fmt.Sprintf("prepare %s %v %d", a.NIC, a.MAC, a.MTU)
	case Release:
		return fmt.Sprintf("release %s %v %d", a.NIC, a.MAC, a.MTU)
	case CreateBond:
		return fmt.Sprintf("create %v from %s %v %d %v", a.Mode, a.Identity.From, a.Identity.MAC, a.Identity.MTU, a.Identity.Addrs)
	case DestroyBond:
		return fmt.Sprintf("destroy to %s %v", a.To, a.Identity.Addrs)
	case Enslave:
		return "enslave " + a.NIC
	case Unenslave:
		return "unenslave " + a.NIC
	case SetActive:
		if a.Mode == Failover {
			return "active [" + strings.Join(a.NICs, " ") + "] failover"
		}
		return "active [" + strings.Join(a.NICs, " ") + "]"
	case SendProbe:
		return fmt.Sprintf("probe %s %v from %v %v", a.NIC, a.Target, a.SrcIP, a.SrcMAC)
	case Announce:
		return fmt.Sprintf("announce %s %v", a.NIC, a.Identity.Addrs)
	case Done:
		if a.Err != nil {
			return fmt.Sprintf("done %s %s: %v", a.Op, a.NIC, a.Err)
		}
		return fmt.Sprintf("done %s %s ok", a.Op, a.NIC)
	case Changed:
		return fmt.Sprintf("%s %s->%s (%s)", a.NIC, a.From, a.To, a.Reason)
	}
	return fmt.Sprintf("%#v", a)
}

type step struct {
	ev   Event
	want []string // exact actions; nil means "don't care"
	// wantSub, when set, must each be a substring of some action.
	wantSub []string
}

func run(t *testing.T, c *Controller, steps []step) {
	t.Helper()
	for i, s := range steps {
		got := c.Step(s.ev)
		var lines []string
		for _, a := range got {
			lines = append(lines, show(a))
		}
		if s.want != nil {
			if strings.Join(lines, "\n") != strings.Join(s.want, "\n") {
				t.Fatalf("step %d %#v:\ngot:\n  %s\nwant:\n  %s", i, s.ev, strings.Join(lines, "\n  "), strings.Join(s.want, "\n  "))
			}
		}
		for _, sub := range s.wantSub {
			if !strings.Contains(strings.Join(lines, "\n"), sub) {
				t.Fatalf("step %d %#v: no action contains %q; got:\n  %s", i, s.ev, sub, strings.Join(lines, "\n  "))
			}
		}
	}
}

func newC(t *testing.T, cfg Config) *Controller {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Step(at(0))
	return c
}

var target = netip.MustParseAddr("10.0.0.254")

const (
	m1 = "02:00:00:00:00:01"
	m2 = "02:00:00:00:00:02"
	m3 = "02:00:00:00:00:03"
)

func TestAddChecks(t *testing.T) {
	c := newC(t, Config{ProbeTarget: target})
	bad := func(mut func(*LinkInfo)) LinkInfo {
		l := link("eth0", 1, "10.0.0.1/24")
		mut(&l)
		return l
	}
	run(t, c, []step{
		{ev: AddNIC{Link: LinkInfo{}}, want: []string{"done add : bonding: add: no NIC name given"}},
		{ev: AddNIC{Link: bad(func(l *LinkInfo) { l.Exists = false })}, want: []string{"done add eth0: bonding: add eth0: no such interface"}},
		{ev: AddNIC{Link: bad(func(l *LinkInfo) { l.Up = false })}, want: []string{"done add eth0: bonding: add eth0: interface is down (set it up first)"}},
		{ev: AddNIC{Link: bad(func(l *LinkInfo) { l.Carrier = false })}, want: []string{"done add eth0: bonding: add eth0: no carrier (cable unplugged or switch port down?)"}},
		{ev: AddNIC{Link: bad(func(l *LinkInfo) { l.MTU = 0 })}, want: []string{"done add eth0: bonding: add eth0: bad MTU 0"}},
		{ev: AddNIC{Link: bad(func(l *LinkInfo) { l.MAC = nil })}, want: []string{"done add eth0: bonding: add eth0: not an Ethernet interface (hardware address )"}},
		{ev: AddNIC{Link: bad(func(l *LinkInfo) { l.Addrs = []netip.Prefix{netip.MustParsePrefix("fd00::1/64")} })},
			want: []string{"done add eth0: bonding: add eth0: no IPv4 address for the bond to take (the first NIC lends the bond its address)"}},
		// A good primary is checked with an ARP probe from its own address.
		{ev: AddNIC{Link: link("eth0", 1, "10.0.0.1/24")}, want: []string{
			"eth0 gone->checking (added)",
			"prepare eth0 " + m1 + " 1500",
			"probe eth0 10.0.0.254 from 10.0.0.1 " + m1,
		}},
		{ev: AddNIC{Link: link("eth0", 1, "10.0.0.1/24")}, want: []string{"done add eth0: bonding: add eth0: already being checked"}},
		{ev: AddNIC{Link: link("eth1", 2)}, want: []string{"done add eth1: bonding: add eth1: the primary eth0 is still being checked; add more NICs after it joins"}},
		// Other frames through it (a neighbour's IPv6 chatter) prove
		// nothing; the target's ARP reply admits it: the bond takes its
		// identity.
		{ev: Received{NIC: "eth0"}, want: []string{}},
		{ev: ProbeAnswered{NIC: "eth0"}, want: []string{
			"create load-balance from eth0 " + m1 + " 1500 [10.0.0.1/24]",
			"enslave eth0",
			"eth0 checking->up (reaches 10.0.0.254)",
			"active [eth0]",
			"done add eth0 ok",
		}},
		{ev: AddNIC{Link: link("eth0", 1)}, want: []string{"done add eth0: bonding: add eth0: already in the bond"}},
		{ev: AddNIC{Link: link("eth1", 2, "10.0.1.1/24")}, want: []string{"done add eth1: bonding: add eth1: carries addresses [10.0.1.1/24]; only the first NIC's addresses go to the bond, remove them first"}},
		// A later NIC is made to match the bond (MAC and MTU) and probes from the bond.
		{ev: AddNIC{Link: func() LinkInfo { l := link("eth1", 2); l.MTU = 9000; return l }()}, want: []string{
			"eth1 gone->checking (added)",
			"prepare eth1 " + m1 + " 1500",
			"probe eth1 10.0.0.254 from 10.0.0.1 " + m1,
		}},
		// No reply within AddTimeout: refused, and its own MAC and MTU come back.
		{ev: at(999), wantSub: []string{"probe eth1"}},
		{ev: at(1000), want: []string{
			"eth1 checking->gone (bonding: add eth1: no ARP reply from 10.0.0.254 through it within 1s (does it reach the switch?))",
			"done add eth1: bonding: add eth1: no ARP reply from 10.0.0.254 through it within 1s (does it reach the switch?)",
			"release eth1 " + m2 + " 9000",
		}},
		// Carrier lost while being checked: refused at once.
		{ev: AddNIC{Link: link("eth2", 3)}, wantSub: []string{"prepare eth2"}},
		{ev: Carrier{NIC: "eth2", Up: false}, want: []string{
			"eth2 checking->gone (bonding: add eth2: lost carrier while being checked)",
			"done add eth2: bonding: add eth2: lost carrier while being checked",
			"release eth2 " + m3 + " 1500",
		}},
		// Removed while being checked: the add is cancelled.
		{ev: AddNIC{Link: link("eth2", 3)}, wantSub: []string{"prepare eth2"}},
		{ev: RemoveNIC{NIC: "eth2"}, want: []string{
			"eth2 checking->gone (bonding: add eth2: cancelled: removed while being checked)",
			"done add eth2: bonding: add eth2: cancelled: removed while being checked",
			"release eth2 " + m3 + " 1500",
			"done remove eth2 ok",
		}},
		{ev: RemoveNIC{NIC: "eth9"}, want: []string{"done remove eth9: bonding: remove eth9: not in the bond"}},
	})
}

func TestAddWithoutProbeTargetIsImmediate(t *testing.T) {
	c := newC(t, Config{})
	run(t, c, []step{
		{ev: AddNIC{Link: link("eth0", 1, "10.0.0.1/24", "fd00::1/64")}, want: []string{
			"eth0 gone->checking (added)",
			"prepare eth0 " + m1 + " 1500",
			"create load-balance from eth0 " + m1 + " 1500 [10.0.0.1/24]",
			"enslave eth0",
			"eth0 checking->up (added (no probe target: carrier only))",
			"active [eth0]",
			"done add eth0 ok",
		}},
		{ev: AddNIC{Link: link("eth1", 2)}, want: []string{
			"eth1 gone->checking (added)",
			"prepare eth1 " + m1 + " 1500",
			"enslave eth1",
			"eth1 checking->up (added (no probe target: carrier only))",
			"active [eth0 eth1]",
			"done add eth1 ok",
		}},
		// Without a probe target nothing is ever silent and nothing is probed.
		{ev: at(10_000), want: nil},
	})
	if got := c.Step(at(20_000)); len(got) != 0 {
		t.Fatalf("tick without probe target: %v", got)
	}
}

// bonded returns a controller with eth0 (primary), eth1, eth2 all up.
func bonded(t *testing.T, cfg Config) *Controller {
	t.Helper()
	c := newC(t, cfg)
	for i, name := range []string{"eth0", "eth1", "eth2"} {
		l := link(name, byte(i+1))
		if i == 0 {
			l.Addrs = []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}
		}
		c.Step(AddNIC{Link: l})
		if cfg.ProbeTarget.IsValid() {
			c.Step(ProbeAnswered{NIC: name})
		}
	}
	if s := c.Status(); len(s.Active) == 0 || !s.Bonded {
		t.Fatalf("setup: %+v", s)
	}
	return c
}

func TestCarrierDetectorAndHysteresis(t *testing.T) {
	c := bonded(t, Config{UpDelay: 300 * time.Millisecond})
	run(t, c, []step{
		{ev: Carrier{NIC: "eth1", Up: false}, want: []string{
			"eth1 up->down (carrier lost)",
			"active [eth0 eth2]",
		}},
		{ev: Carrier{NIC: "eth1", Up: false}, want: []string{}}, // repeated: nothing
		{ev: at(100), want: []string{}},
		{ev: Carrier{NIC: "eth1", Up: true}, want: []string{"eth1 down->recovering (carrier back)"}},
		{ev: at(399), want: []string{}},
		// A flap during the hold-down restarts it.
		{ev: Carrier{NIC: "eth1", Up: false}, want: []string{"eth1 recovering->down (carrier lost)"}},
		{ev: Carrier{NIC: "eth1", Up: true}, want: []string{"eth1 down->recovering (carrier back)"}},
		{ev: at(600), want: []string{}},
		{ev: at(698), want: []string{}},
		{ev: at(699), want: []string{ // 300ms after the carrier came back at the 399 tick
			"eth1 recovering->up (healthy for 300ms)",
			"active [eth0 eth1 eth2]",
		}},
		{ev: Carrier{NIC: "nope", Up: false}, want: []string{}},
		// All members down: nothing carries traffic.
		{ev: Carrier{NIC: "eth0", Up: false}, wantSub: []string{"active [eth1 eth2]"}},
		{ev: Carrier{NIC: "eth1", Up: false}, wantSub: []string{"active [eth2]"}},
		{ev: Carrier{NIC: "eth2", Up: false}, wantSub: []string{"active []"}},
	})
}

func TestProbeDetector(t *testing.T) {
	c := bonded(t, Config{ProbeTarget: target, Interval: 100 * time.Millisecond, Misses: 3, UpDelay: 200 * time.Millisecond})
	probes := []string{
		"probe eth0 10.0.0.254 from 10.0.0.1 " + m1,
		"probe eth1 10.0.0.254 from 10.0.0.1 " + m1,
		"probe eth2 10.0.0.254 from 10.0.0.1 " + m1,
	}
	recv := func(names ...string) {
		for _, n := range names {
			c.Step(Received{NIC: n})
		}
	}
	run(t, c, []step{{ev: at(100), want: probes}})
	recv("eth0", "eth1", "eth2")
	// Probes go out once per interval, not on every tick.
	run(t, c, []step{{ev: at(150), want: []string{}}, {ev: at(200), want: probes}})
	recv("eth0", "eth2") // eth1 last heard at 100
	run(t, c, []step{{ev: at(300), want: probes}})
	recv("eth0", "eth2")
	run(t, c, []step{{ev: at(400), want: probes}}) // silent for exactly 300ms: not yet
	recv("eth0", "eth2")
	run(t, c, []step{{ev: at(401), want: []string{
		"eth1 up->down (nothing received for 300ms (ARP probes to 10.0.0.254 unanswered))",
		"active [eth0 eth2]",
	}}})
	// Still probed while down (carrier is up); frames again start recovery.
	run(t, c, []step{{ev: at(500), want: probes}})
	run(t, c, []step{{ev: Received{NIC: "eth1"}, want: []string{"eth1 down->recovering (frames arriving again)"}}})
	recv("eth0", "eth2")
	run(t, c, []step{{ev: at(600), want: probes}})
	recv("eth0", "eth1", "eth2")
	run(t, c, []step{{ev: at(700), want: []string{
		"eth1 recovering->up (healthy for 200ms)",
		"active [eth0 eth1 eth2]",
		probes[0], probes[1], probes[2],
	}}})
	// Silent while recovering: back down, and the hold-down restarts.
	c.Step(Carrier{NIC: "eth2", Up: false})
	run(t, c, []step{{ev: Carrier{NIC: "eth2", Up: true}, want: []string{}}}) // needs frames, not just carrier
	run(t, c, []step{{ev: Received{NIC: "eth2"}, want: []string{"eth2 down->recovering (frames arriving again)"}}})
	recv("eth0", "eth1")
	run(t, c, []step{{ev: at(1001), wantSub: []string{"eth2 recovering->down (silent again for 300ms)"}}})
	// A NIC without carrier is not probed; frames reported for it are ignored.
	c.Step(Carrier{NIC: "eth2", Up: false})
	run(t, c, []step{{ev: Received{NIC: "eth2"}, want: []string{}}})
	run(t, c, []step{{ev: at(1101), want: []string{probes[0], probes[1]}}})
}

func TestFailoverMode(t *testing.T) {
	c := bonded(t, Config{Mode: Failover, UpDelay: 100 * time.Millisecond})
	if s := c.Status(); strings.Join(s.Active, ",") != "eth0" {
		t.Fatalf("failover starts on the primary, got %v", s.Active)
	}
	run(t, c, []step{
		{ev: Carrier{NIC: "eth1", Up: false}, want: []string{"eth1 up->down (carrier lost)"}}, // a backup: no move
		{ev: Carrier{NIC: "eth0", Up: false}, want: []string{
			"eth0 up->down (carrier lost)",
			"active [eth2] failover",
			"announce eth2 [10.0.0.1/24]",
		}},
		{ev: Carrier{NIC: "eth0", Up: true}, want: []string{"eth0 down->recovering (carrier back)"}},
		{ev: Carrier{NIC: "eth1", Up: true}, want: []string{"eth1 down->recovering (carrier back)"}},
		// The primary takes over again once it has settled.
		{ev: at(100), want: []string{
			"eth0 recovering->up (healthy for 100ms)",
			"eth1 recovering->up (healthy for 100ms)",
			"active [eth0] failover",
			"announce eth0 [10.0.0.1/24]",
		}},
		{ev: SetMode{Mode: LoadBalance}, want: []string{"active [eth0 eth1 eth2]", "done mode  ok"}},
		{ev: SetMode{Mode: LoadBalance}, want: []string{"done mode  ok"}},
		{ev: SetMode{Mode: Failover}, want: []string{"active [eth0] failover", "announce eth0 [10.0.0.1/24]", "done mode  ok"}},
		{ev: SetMode{Mode: 9}, want: []string{"done mode : bonding: mode: unknown mode 9"}},
		// Removing the primary: the next NIC becomes primary and takes over.
		{ev: RemoveNIC{NIC: "eth0"}, want: []string{
			"eth0 up->gone (removed)",
			"active [eth1] failover",
			"announce eth1 [10.0.0.1/24]",
			"unenslave eth0",
			"release eth0 " + m1 + " 1500",
			"done remove eth0 ok",
		}},
	})
	s := c.Status()
	if !s.NICs[0].Primary || s.NICs[0].Name != "eth1" || !s.NICs[0].Active || s.NICs[1].Primary {
		t.Fatalf("status after removing the primary: %+v", s.NICs)
	}
}

func TestRemoveLastReturnsAddress(t *testing.T) {
	c := bonded(t, Config{})
	run(t, c, []step{
		{ev: RemoveNIC{NIC: "eth1"}, want: []string{
			"eth1 up->gone (removed)",
			"active [eth0 eth2]",
			"unenslave eth1",
			"release eth1 " + m2 + " 1500",
			"done remove eth1 ok",
		}},
		{ev: RemoveNIC{NIC: "eth0"}, wantSub: []string{"release eth0 " + m1}},
		// The last NIC (not the original primary) gets the address back and its own MAC.
		{ev: RemoveNIC{NIC: "eth2"}, want: []string{
			"eth2 up->gone (removed)",
			"active []",
			"unenslave eth2",
			"destroy to eth2 [10.0.0.1/24]",
			"release eth2 " + m3 + " 1500",
			"done remove eth2 ok",
		}},
	})
	if s := c.Status(); s.Bonded || len(s.NICs) != 0 || len(s.Active) != 0 {
		t.Fatalf("after removing all: %+v", s)
	}
	// A new first NIC starts a new bond with its own identity.
	run(t, c, []step{{ev: AddNIC{Link: link("eth1", 2, "10.0.9.9/16")}, wantSub: []string{"create load-balance from eth1 " + m2 + " 1500 [10.0.9.9/16]"}}})
}

func TestRemoveLastCancelsChecking(t *testing.T) {
	c := newC(t, Config{ProbeTarget: target})
	c.Step(AddNIC{Link: link("eth0", 1, "10.0.0.1/24")})
	c.Step(ProbeAnswered{NIC: "eth0"})
	c.Step(AddNIC{Link: link("eth1", 2)})
	run(t, c, []step{{ev: RemoveNIC{NIC: "eth0"}, want: []string{
		"eth0 up->gone (removed)",
		"active []",
		"unenslave eth0",
		"eth1 checking->gone (bonding: add eth1: cancelled: the bond was dissolved)",
		"done add eth1: bonding: add eth1: cancelled: the bond was dissolved",
		"release eth1 " + m2 + " 1500",
		"destroy to eth0 [10.0.0.1/24]",
		"release eth0 " + m1 + " 1500",
		"done remove eth0 ok",
	}}})
}

func TestFailedActions(t *testing.T) {
	boom := errors.New("boom")
	c := newC(t, Config{})
	// The datapath could not create the bond: the add is refused.
	acts := c.Step(AddNIC{Link: link("eth0", 1, "10.0.0.1/24")})
	var create CreateBond
	for _, a := range acts {
		if a, ok := a.(CreateBond); ok {
			create = a
		}
	}
	run(t, c, []step{
		{ev: Failed{Action: create, Err: boom}, want: []string{
			"eth0 up->gone (bonding: add eth0: create bond: boom)",
			"active []",
			"done add eth0: bonding: add eth0: create bond: boom",
			"release eth0 " + m1 + " 1500",
		}},
	})
	if c.Status().Bonded {
		t.Fatal("bonded after CreateBond failed")
	}
	// Enslaving the only member fails: the bond is dissolved again.
	c.Step(AddNIC{Link: link("eth0", 1, "10.0.0.1/24")})
	run(t, c, []step{
		{ev: Failed{Action: Enslave{NIC: "eth0"}, Err: boom}, want: []string{
			"eth0 up->gone (bonding: add eth0: enslave: boom)",
			"active []",
			"done add eth0: bonding: add eth0: enslave: boom",
			"destroy to eth0 [10.0.0.1/24]",
			"release eth0 " + m1 + " 1500",
		}},
	})
	// Enslaving a second member fails: it leaves the rotation, the bond stays.
	c.Step(AddNIC{Link: link("eth0", 1, "10.0.0.1/24")})
	c.Step(AddNIC{Link: link("eth1", 2)})
	run(t, c, []step{
		{ev: Failed{Action: Enslave{NIC: "eth1"}, Err: boom}, want: []string{
			"eth1 up->gone (bonding: add eth1: enslave: boom)",
			"active [eth0]",
			"done add eth1: bonding: add eth1: enslave: boom",
			"release eth1 " + m2 + " 1500",
		}},
		{ev: Failed{Action: Enslave{NIC: "eth9"}, Err: boom}, want: []string{}},
		{ev: AddNIC{Link: link("eth1", 2)}, wantSub: []string{"prepare eth1"}},
		{ev: Failed{Action: Prepare{NIC: "eth1"}, Err: boom}, wantSub: []string{"done add eth1: bonding: add eth1: prepare: boom"}},
		{ev: Failed{Action: Unenslave{NIC: "eth1"}, Err: boom}, want: []string{"done remove eth1: bonding: remove eth1: unenslave: boom"}},
		{ev: Failed{Action: Release{NIC: "eth1"}, Err: boom}, want: []string{"done remove eth1: bonding: remove eth1: release: boom"}},
		{ev: Failed{Action: DestroyBond{To: "eth1"}, Err: boom}, want: []string{"done remove eth1: bonding: remove eth1: dissolve bond: boom"}},
		{ev: Failed{Action: SendProbe{NIC: "eth0"}, Err: boom}, want: []string{}},
	})
	if s := c.Status(); !s.Bonded || strings.Join(s.Active, ",") != "eth0" {
		t.Fatalf("status: %+v", s)
	}
}

func TestTimeNeverGoesBack(t *testing.T) {
	c := bonded(t, Config{ProbeTarget: target})
	c.Step(at(500)) // all silent for 500ms: down
	c.Step(Received{NIC: "eth0"})
	c.Step(at(100)) // an old tick must not rewind the clock
	if s := c.Status(); s.NICs[0].Since != t0.Add(500*time.Millisecond) {
		t.Fatalf("since = %v, want the 500ms tick", s.NICs[0].Since)
	}
}

func TestTimeouts(t *testing.T) {
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	for _, tc := range []struct {
		last, now int
		misses    int
		want      bool
	}{
		{0, 0, 3, false}, {0, 300, 3, false}, {0, 301, 3, true}, {0, 101, 1, true}, {100, 200, 1, false},
	} {
		if got := Silent(ms(tc.last), ms(tc.now), 100*time.Millisecond, tc.misses); got != tc.want {
			t.Errorf("Silent(%d, %d, 100ms, %d) = %v, want %v", tc.last, tc.now, tc.misses, got, tc.want)
		}
	}
	for _, tc := range []struct {
		since time.Time
		now   int
		want  bool
	}{
		{time.Time{}, 10_000, false}, {ms(0), 499, false}, {ms(0), 500, true}, {ms(100), 500, false},
	} {
		if got := Settled(tc.since, ms(tc.now), 500*time.Millisecond); got != tc.want {
			t.Errorf("Settled(%v, %d, 500ms) = %v, want %v", tc.since, tc.now, got, tc.want)
		}
	}
	if !Expired(ms(10), ms(10)) || Expired(ms(10), ms(9)) {
		t.Error("Expired: a deadline passes at its instant, not before")
	}
}

func TestConfig(t *testing.T) {
	d := Config{}.WithDefaults()
	if d.Mode != LoadBalance || d.Interval != 100*time.Millisecond || d.Misses != 3 || d.UpDelay != DefaultUpDelay || d.AddTimeout != time.Second {
		t.Fatalf("defaults: %+v", d)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Mode: 7}, "bad mode 7"},
		{Config{Interval: -1}, "interval -1ns must be positive"},
		{Config{Misses: -1}, "misses -1 must be at least 1"},
		{Config{UpDelay: -1}, "up delay -1ns must not be negative"},
		{Config{AddTimeout: -1}, "add timeout -1ns must be positive"},
		{Config{ProbeTarget: netip.MustParseAddr("fd00::1")}, "probe target fd00::1 is not an IPv4 address"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	for _, s := range []string{"load-balance", "failover"} {
		m, err := ParseMode(s)
		if err != nil || m.String() != s {
			t.Errorf("ParseMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseMode("rr"); err == nil || !strings.Contains(err.Error(), `unknown mode "rr"`) {
		t.Errorf("ParseMode(rr) = %v", err)
	}
}

// TestAdmissionNeedsProbeAnswer: a NIC being checked is admitted by the
// target's ARP reply only; any frame keeps a member alive, and the reply
// counts as a frame.
func TestAdmissionNeedsProbeAnswer(t *testing.T) {
	cfg := Config{ProbeTarget: target, Interval: 100 * time.Millisecond, Misses: 3, UpDelay: 200 * time.Millisecond}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"chatter until the deadline is refused", []step{
			{ev: at(300), wantSub: []string{"probe eth1"}},
			{ev: Received{NIC: "eth1"}, want: []string{}},
			{ev: at(900), wantSub: []string{"probe eth1"}},
			{ev: Received{NIC: "eth1"}, want: []string{}},
			{ev: at(1000), wantSub: []string{"eth1 checking->gone (bonding: add eth1: no ARP reply from 10.0.0.254", "release eth1"}},
			{ev: ProbeAnswered{NIC: "eth1"}, want: []string{}}, // too late: gone
		}},
		{"chatter then the answer", []step{
			{ev: Received{NIC: "eth1"}, want: []string{}},
			{ev: at(200), wantSub: []string{"probe eth1"}},
			{ev: ProbeAnswered{NIC: "eth1"}, want: []string{
				"enslave eth1",
				"eth1 checking->up (reaches 10.0.0.254)",
				"active [eth0 eth1]",
				"done add eth1 ok",
			}},
		}},
		{"an answer without carrier is ignored", []step{
			{ev: Carrier{NIC: "eth1", Up: false}, wantSub: []string{"lost carrier while being checked"}},
			{ev: ProbeAnswered{NIC: "eth1"}, want: []string{}},
		}},
		{"unknown NIC", []step{
			{ev: ProbeAnswered{NIC: "eth7"}, want: []string{}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newC(t, cfg)
			c.Step(AddNIC{Link: link("eth0", 1, "10.0.0.1/24")})
			run(t, c, []step{{ev: ProbeAnswered{NIC: "eth0"}, wantSub: []string{"eth0 checking->up"}}})
			run(t, c, []step{{ev: AddNIC{Link: link("eth1", 2)}, wantSub: []string{"eth1 gone->checking (added)"}}})
			run(t, c, tc.steps)
		})
	}
	// For a member the answer is a frame like any other: it keeps it up and
	// starts its recovery.
	c := bonded(t, cfg)
	for _, ms := range []int{100, 200, 300} {
		run(t, c, []step{{ev: at(ms), want: nil}})
		c.Step(ProbeAnswered{NIC: "eth0"})
		c.Step(Received{NIC: "eth1"})
	}
	run(t, c, []step{{ev: at(301), want: []string{
		"eth2 up->down (nothing received for 300ms (ARP probes to 10.0.0.254 unanswered))",
		"active [eth0 eth1]",
	}}})
	run(t, c, []step{{ev: ProbeAnswered{NIC: "eth2"}, want: []string{"eth2 down->recovering (frames arriving again)"}}})
}
