package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/api/apitest"
)

func newBondCLI(t *testing.T) (*cli, *apitest.BondFake) {
	now := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	f := apitest.NewBondFake("nas1", now.Add(-90*time.Second), "192.0.2.7/24")
	return &cli{t: t, fake: f.Fake, sock: apitest.Serve(t, f, nil), now: now}, f
}

func TestBondCommands(t *testing.T) {
	c, f := newBondCLI(t)
	f.SetNIC("eth0", true)
	f.SetNIC("eth1", true)
	f.SetNIC("eth2", false)

	if out := c.ok("", "bond", "status"); out != "No bond (mode load-balance). Add a NIC with: nasctl bond add NIC [--probe-target IP]\n" {
		t.Errorf("empty status = %q", out)
	}
	out := c.ok("", "bond", "add", "eth0", "--probe-target", "192.0.2.1")
	for _, w := range []string{
		"Added eth0 to bond0.\n\n",
		"Bond:       bond0, load-balance, userland datapath, formed\n",
		"Addresses:  192.0.2.7/24  (MAC 02:00:00:00:00:01, MTU 1500)\n",
		"Detection:  carrier and ARP probes to 192.0.2.1 every 100ms; rejoin after 500ms healthy\n",
		"eth0  up     primary,active  yes      0         1m30s ago  added\n",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("bond add output lacks %q:\n%s", w, out)
		}
	}
	c.ok("", "bond", "add", "eth1")
	f.Fail("eth1", "carrier lost")

	out = c.ok("", "bond", "status")
	want := "" +
		"Bond:       bond0, load-balance, userland datapath, formed\n" +
		"Addresses:  192.0.2.7/24  (MAC 02:00:00:00:00:01, MTU 1500)\n" +
		"Detection:  carrier and ARP probes to 192.0.2.1 every 100ms; rejoin after 500ms healthy\n" +
		"Failovers:  1\n" +
		"\n" +
		"NIC   STATE  ROLE            CARRIER  FAILURES  SINCE      REASON\n" +
		"eth0  up     primary,active  yes      0         1m30s ago  added\n" +
		"eth1  DOWN   -               no       1         1m30s ago  carrier lost\n"
	if out != want {
		t.Errorf("bond status =\n%s\nwant\n%s", out, want)
	}

	out = c.ok("", "bond", "status", "--json")
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("bond status --json = %q: %v", out, err)
	}
	for _, k := range []string{"bonded", "interface", "datapath", "mode", "probe_target", "interval_ms", "up_delay_ms", "mac", "mtu", "addresses", "active", "members", "failovers"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("bond status JSON lacks %q", k)
		}
	}
	var st api.BondStatus
	json.Unmarshal([]byte(out), &st)
	if len(st.Members) != 2 || st.Members[1].State != "down" || st.Members[1].Failures != 1 || st.Failovers != 1 {
		t.Errorf("bond status --json = %+v", st)
	}

	c.fails("bond add eth9: not found: no such interface", "", "bond", "add", "eth9")
	c.fails("no carrier (cable unplugged or switch port down?)", "", "bond", "add", "eth2")
	c.fails("already a member", "", "bond", "add", "eth0")
	c.fails("remove every member to change the probe target", "", "bond", "add", "eth2", "--probe-target", "192.0.2.99")
	c.fails(`probe target "gw": not an IP address`, "", "bond", "add", "eth2", "--probe-target", "gw")
	c.fails("bond add: missing NIC", "", "bond", "add")
	c.fails(`bond mode "round-robin"`, "", "bond", "mode", "round-robin")
	c.fails("bond mode: missing load-balance|failover", "", "bond", "mode")
	c.fails("bond rm eth7: not found: not a member of the bond", "", "bond", "rm", "eth7")

	if out := c.ok("", "bond", "mode", "failover"); out != "Bond mode is now failover; carrying traffic: eth0.\n" {
		t.Errorf("bond mode = %q", out)
	}
	out = c.ok("", "bond", "mode", "load-balance", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Mode != "load-balance" {
		t.Errorf("bond mode --json = %q, %v", out, err)
	}
	if out := c.ok("", "bond", "rm", "eth1"); out != "Removed eth1 from bond0; 1 member left.\n" {
		t.Errorf("bond rm = %q", out)
	}
	if out := c.ok("", "bond", "rm", "eth0"); out != "Removed eth0; the bond is dissolved and eth0 is a plain interface again, with the bond's addresses.\n" {
		t.Errorf("bond rm last = %q", out)
	}
	if out := c.ok("", "bond", "add", "eth0", "--json"); !strings.Contains(out, `"name": "eth0"`) {
		t.Errorf("bond add --json = %q", out)
	}
	if out := c.ok("", "bond", "rm", "eth0", "--json"); out != "" {
		t.Errorf("bond rm --json printed %q", out)
	}
}

func TestBondOnNasdWithoutBond(t *testing.T) {
	c := newCLI(t) // a backend without the bond
	c.fails("no such endpoint: GET /v1/bond", "", "bond", "status")
}
