package kernelbond_test

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"ftnas/images/kernel"
	"ftnas/images/lab"
	"ftnas/images/qemu"
)

// TestQEMUBond runs internal/guesttest in qemu with the Debian cloud
// kernel (which has the bonding driver): kernelbond's datapath under
// bonding.Agent builds a balance-rr and then an active-backup bond of two
// virtio NICs; the host cuts a member with QMP set_link when the guest asks
// and restores it, and asserts on the guest's sysfs readings and frame
// counts. Two more runs, balance-rr and active-backup with the
// controller's ARP probes to the observer NIC (in a namespace of its own),
// kill a member's path while its carrier stays up (tc drops in the guest):
// the probes must find it, the driver must stop sending through it, and it
// must come back.
func TestQEMUBond(t *testing.T) {
	if testing.Short() {
		t.Skip("boots qemu (about 15 s under TCG)")
	}
	if err := qemu.Available(qemu.Options{}); err != nil {
		t.Skip(err)
	}
	k := lab.Kernel(t)
	initrd := lab.Initramfs(t, k, lab.Image{
		// clsact and matchall/gact for the dead path (tc drop filters).
		Modules:    append(kernel.VirtioModules(), "bonding", "sch_ingress", "cls_matchall", "act_gact"),
		GoPrograms: map[string]string{"/bin/bondtest": "ftnas/bonding/kernelbond/internal/guesttest"},
		Run:        "/bin/bondtest",
	})
	// Three NICs, all on qemu hub 0 so every frame one sends reaches the
	// others; internal/guesttest bonds the two lowest MACs and observes on
	// the third. QMP set_link takes the netdev/device id (net0, ...).
	guestNICs := []struct{ mac, id string }{
		{"52:54:00:b0:0d:01", "net0"},
		{"52:54:00:b0:0d:02", "net1"},
		{"52:54:00:b0:0d:03", "net2"},
	}
	var nics []qemu.NIC
	byMAC := map[string]string{}
	for _, n := range guestNICs {
		nics = append(nics, qemu.NIC{Netdev: "hubport,hubid=0", MAC: n.mac})
		byMAC[n.mac] = n.id
	}
	vm := qemu.Boot(t, qemu.Options{Kernel: k.Vmlinuz, Initrd: initrd, NICs: nics, QMP: true, Memory: 384, Timeout: 150 * time.Second})

	// The guest asks for each cut and restore and waits (up to 10 s) for
	// its effect; it ends with the summary.
	step := regexp.MustCompile(`(?m)^bondtest: (?:(cut|restore) (\S+) mac=(\S+)|summary (\{.*\}))\r?$`)
	var cuts []string
	var summary string
	for summary == "" {
		m := vm.MustExpect(step)
		if m[4] != "" {
			summary = m[4]
			break
		}
		id, ok := byMAC[m[3]]
		if !ok {
			t.Fatalf("guest asked to %s %s with unknown MAC %s", m[1], m[2], m[3])
		}
		if _, err := vm.QMP("set_link", map[string]any{"name": id, "up": m[1] == "restore"}); err != nil {
			t.Fatal(err)
		}
		cuts = append(cuts, m[1]+" "+m[2])
	}
	vm.MustPass()

	var s struct {
		Members  []string     `json:"members"`
		Observer string       `json:"observer"`
		Phases   []phase      `json:"phases"`
		Probes   []probePhase `json:"probes"`
	}
	if err := json.Unmarshal([]byte(summary), &s); err != nil {
		t.Fatalf("summary %s: %v", summary, err)
	}
	if len(s.Members) != 2 || len(s.Phases) != 2 {
		t.Fatalf("summary: %d members, %d phases; want 2, 2: %s", len(s.Members), len(s.Phases), summary)
	}
	m0, m1 := s.Members[0], s.Members[1]
	if want := []string{"cut " + m1, "restore " + m1, "cut " + m0, "restore " + m0}; !slices.Equal(cuts, want) {
		t.Errorf("link changes the guest asked for: %q, want %q", cuts, want)
	}
	rr, ab := s.Phases[0], s.Phases[1]
	t.Logf("balance-rr: cut detected in %.2fs, back in %.2fs; active-backup: failover in %.2fs, back in %.2fs",
		rr.CutDetectS, rr.RestoreS, ab.CutDetectS, ab.RestoreS)

	// Both modes: what the controller asked for is what the driver has.
	for _, p := range s.Phases {
		if p.SysMIIMon != "50" {
			t.Errorf("%s: miimon %q, want 50 (Options.MIIMon)", p.Mode, p.SysMIIMon)
		}
		if p.SysSlaves != m0+" "+m1 {
			t.Errorf("%s: slaves %q, want %q", p.Mode, p.SysSlaves, m0+" "+m1)
		}
		if !p.BondAddrMoved || !p.Dissolved || !p.AddrReturned {
			t.Errorf("%s: address on the bond %v, bond gone after removing both %v, address back on %s %v; want all true",
				p.Mode, p.BondAddrMoved, p.Dissolved, m0, p.AddrReturned)
		}
		if p.JoinDowns != 0 {
			t.Errorf("%s: the controller took %d members down while they joined; enslaving is not a fault", p.Mode, p.JoinDowns)
		}
		if p.CutCarrier != "0" || p.RestoredMII != "up" {
			t.Errorf("%s: cut %s: carrier %q, restored mii %q; want 0, up", p.Mode, p.CutNIC, p.CutCarrier, p.RestoredMII)
		}
		// Every frame reaches the wire whatever the member set.
		for name, tr := range map[string]traffic{"healthy": p.Healthy, "cut": p.Cut, "restored": p.Restored} {
			if tr.Observed != tr.Sent {
				t.Errorf("%s, %s: observer got %d of %d frames", p.Mode, name, tr.Observed, tr.Sent)
			}
		}
		// A cut member sends nothing.
		if n := p.Cut.TX[p.CutNIC]; n != 0 {
			t.Errorf("%s: cut member %s sent %d frames", p.Mode, p.CutNIC, n)
		}
	}

	if rr.SysMode != "balance-rr 0" || rr.ControllerMode != "load-balance" {
		t.Errorf("balance-rr phase: sysfs mode %q, controller %q", rr.SysMode, rr.ControllerMode)
	}
	if !slices.Equal(rr.ControllerActive, []string{m0, m1}) || rr.SysActive != "" {
		t.Errorf("balance-rr: controller active %v, active_slave %q; want both, none", rr.ControllerActive, rr.SysActive)
	}
	if rr.CutNIC != m1 || !slices.Equal(rr.CutControllerAct, []string{m0}) {
		t.Errorf("balance-rr: cut %s, controller active %v after; want %s, [%s]", rr.CutNIC, rr.CutControllerAct, m1, m0)
	}
	// The driver's rotation is the controller's: the cut member is
	// released (no longer a slave) until the controller takes it back.
	if rr.CutSlaves != m0 || rr.CutMII != "?" {
		t.Errorf("balance-rr: slaves %q, %s mii %q with %s cut; want %q, not a slave", rr.CutSlaves, m1, rr.CutMII, m1, m0)
	}
	// Round robin: both members carry about half; after the cut only m0.
	for name, tr := range map[string]traffic{"healthy": rr.Healthy, "restored": rr.Restored} {
		for _, m := range s.Members {
			if tr.TX[m] < tr.Sent/4 {
				t.Errorf("balance-rr, %s: %s sent %d of %d frames; want round robin over both", name, m, tr.TX[m], tr.Sent)
			}
		}
	}
	if rr.Cut.TX[m0] < rr.Cut.Sent {
		t.Errorf("balance-rr with %s cut: %s sent %d of %d frames", m1, m0, rr.Cut.TX[m0], rr.Cut.Sent)
	}

	if ab.SysMode != "active-backup 1" || ab.ControllerMode != "failover" {
		t.Errorf("active-backup phase: sysfs mode %q, controller %q", ab.SysMode, ab.ControllerMode)
	}
	if !slices.Equal(ab.ControllerActive, []string{m0}) || ab.SysActive != m0 {
		t.Errorf("active-backup: controller active %v, active_slave %q; want the primary %s", ab.ControllerActive, ab.SysActive, m0)
	}
	if ab.CutNIC != m0 || ab.CutActive != m1 || !slices.Equal(ab.CutControllerAct, []string{m1}) {
		t.Errorf("active-backup: cut %s, active_slave %q, controller active %v after; want %s, %s, [%s]", ab.CutNIC, ab.CutActive, ab.CutControllerAct, m0, m1, m1)
	}
	// Active-backup: the cut member stays a slave, down.
	if ab.CutSlaves != m0+" "+m1 || ab.CutMII != "down" {
		t.Errorf("active-backup: slaves %q, %s mii %q with it cut; want both, down", ab.CutSlaves, m0, ab.CutMII)
	}
	if ab.RestoredActive != m0 {
		t.Errorf("active-backup: active_slave %q after the primary came back, want %s", ab.RestoredActive, m0)
	}
	if len(s.Probes) != 2 {
		t.Fatalf("summary: %d phases with probes, want 2", len(s.Probes))
	}
	checkProbePhase(t, s.Probes[0], "load-balance", m0, m1, guestNICs[1].mac)
	checkProbePhase(t, s.Probes[1], "failover", m0, m1, guestNICs[0].mac)
	// One member carries everything: the primary, then the backup, then
	// the primary again.
	for _, c := range []struct {
		name         string
		tr           traffic
		active, idle string
	}{{"healthy", ab.Healthy, m0, m1}, {"cut", ab.Cut, m1, m0}, {"restored", ab.Restored, m0, m1}} {
		if c.tr.TX[c.active] < c.tr.Sent || c.tr.TX[c.idle] != 0 {
			t.Errorf("active-backup, %s: tx %v; want all %d on %s, none on %s", c.name, c.tr.TX, c.tr.Sent, c.active, c.idle)
		}
	}
}

// checkProbePhase asserts on a run with ARP probes in mode where a
// member's path died with its carrier up: m1 in balance-rr, the active m0
// in active-backup. own is the dead member's own MAC.
func checkProbePhase(t *testing.T, p probePhase, mode, m0, m1, own string) {
	t.Helper()
	dead, other, want := m1, m0, []string{m0, m1}
	if mode == "failover" {
		dead, other, want = m0, m1, []string{m0}
	}
	t.Logf("%s with probes: dead path of %s found in %.2fs (%s), back in %.2fs", mode, p.DeadNIC, p.DeadDetectS, p.DeadReason, p.RestoreS)
	if p.Mode != mode {
		t.Fatalf("probes: phase %q, want %q", p.Mode, mode)
	}
	if !slices.Equal(p.ControllerActive, want) || p.SysSlaves != m0+" "+m1 || p.JoinDowns != 0 {
		t.Errorf("%s probes, settled: controller active %v, slaves %q, %d members down while joining; want %v, both, 0",
			mode, p.ControllerActive, p.SysSlaves, p.JoinDowns, want)
	}
	// Found by the probes, not by the carrier, which stayed up.
	if p.DeadNIC != dead || p.DeadState != "down" || !strings.Contains(p.DeadReason, "ARP probes") ||
		p.DeadCarrier != "1" || p.DeadOperState != "up" || !slices.Equal(p.DeadControllerAc, []string{other}) {
		t.Errorf("%s probes, dead path of %s: state %q (%q), carrier %q, operstate %q, controller active %v; want %s down by ARP probes, carrier 1, up, [%s]",
			mode, p.DeadNIC, p.DeadState, p.DeadReason, p.DeadCarrier, p.DeadOperState, p.DeadControllerAc, dead, other)
	}
	if p.DeadBondMAC != p.BondMAC || p.RestoredBondMAC != p.BondMAC {
		t.Errorf("%s probes: bond mac %s with the path dead, %s after; want %s throughout", mode, p.DeadBondMAC, p.RestoredBondMAC, p.BondMAC)
	}
	if mode == "failover" {
		// The driver's active slave is the controller's choice; the dead
		// member stays a slave with its MII up (its carrier is).
		if p.SysActive != m0 || p.DeadSysActive != m1 || p.RestoredActive != m0 || p.DeadSysSlaves != m0+" "+m1 || p.DeadMII != "up" {
			t.Errorf("failover probes: active_slave %q, %q with %s dead, %q after; slaves %q, %s mii %q; want %s, %s, %s; both; up",
				p.SysActive, p.DeadSysActive, m0, p.RestoredActive, p.DeadSysSlaves, m0, p.DeadMII, m0, m1, m0)
		}
	} else if p.DeadSysSlaves != m0 || p.DeadMAC != own || p.RestoredDeadMAC != p.BondMAC {
		// The driver let it go: not a slave, its own MAC back, the bond's
		// again once enslaved.
		t.Errorf("load-balance probes: slaves %q, %s mac %s with it dead, %s after; want %q, its own %s, the bond's %s",
			p.DeadSysSlaves, m1, p.DeadMAC, p.RestoredDeadMAC, m0, own, p.BondMAC)
	}
	// Every other member's probes were answered all along, enslaved (an
	// active-backup backup too: the driver hands its frames to the taps
	// of the device they came in on).
	if p.Downs != 1 {
		t.Errorf("%s probes: the controller took members down %d times, want once (the dead path)", mode, p.Downs)
	}
	if p.RestoredSlaves != m0+" "+m1 {
		t.Errorf("%s probes, path back: slaves %q, want both", mode, p.RestoredSlaves)
	}
	// Every frame arrives: had the driver kept sending through the dead
	// member, tc would have dropped (some of) them.
	for name, tr := range map[string]traffic{"healthy": p.Healthy, "dead": p.Dead, "restored": p.Restored} {
		if tr.Observed != tr.Sent {
			t.Errorf("%s probes, %s: observer got %d of %d frames", mode, name, tr.Observed, tr.Sent)
		}
	}
	if p.Dead.TX[other] < p.Dead.Sent {
		t.Errorf("%s probes, %s dead: %s sent %d of %d frames", mode, dead, other, p.Dead.TX[other], p.Dead.Sent)
	}
	if mode == "load-balance" {
		for name, tr := range map[string]traffic{"healthy": p.Healthy, "restored": p.Restored} {
			for _, m := range []string{m0, m1} {
				if tr.TX[m] < tr.Sent/4 {
					t.Errorf("load-balance probes, %s: %s sent %d of %d frames; want round robin over both", name, m, tr.TX[m], tr.Sent)
				}
			}
		}
	} else if p.Healthy.TX[m0] < p.Healthy.Sent || p.Restored.TX[m0] < p.Restored.Sent {
		t.Errorf("failover probes: the primary sent %d and %d of %d frames before and after", p.Healthy.TX[m0], p.Restored.TX[m0], p.Healthy.Sent)
	}
	if !p.Dissolved || !p.AddrReturned {
		t.Errorf("%s probes: bond gone %v, address back on %s %v; want both", mode, p.Dissolved, m0, p.AddrReturned)
	}
}

// probePhase mirrors internal/guesttest's ProbePhase.
type probePhase struct {
	Mode             string   `json:"mode"`
	ControllerActive []string `json:"controller_active"`
	SysSlaves        string   `json:"sys_slaves"`
	SysActive        string   `json:"sys_active"`
	JoinDowns        int      `json:"join_downs"`
	BondMAC          string   `json:"bond_mac"`
	Healthy          traffic  `json:"healthy"`
	DeadNIC          string   `json:"dead_nic"`
	DeadDetectS      float64  `json:"dead_detect_s"`
	DeadReason       string   `json:"dead_reason"`
	DeadState        string   `json:"dead_state"`
	DeadControllerAc []string `json:"dead_controller_active"`
	DeadSysSlaves    string   `json:"dead_sys_slaves"`
	DeadSysActive    string   `json:"dead_sys_active"`
	DeadMII          string   `json:"dead_mii"`
	DeadCarrier      string   `json:"dead_carrier"`
	DeadOperState    string   `json:"dead_operstate"`
	DeadMAC          string   `json:"dead_mac"`
	DeadBondMAC      string   `json:"dead_bond_mac"`
	Dead             traffic  `json:"dead"`
	RestoreS         float64  `json:"restore_s"`
	RestoredSlaves   string   `json:"restored_sys_slaves"`
	RestoredActive   string   `json:"restored_sys_active"`
	RestoredBondMAC  string   `json:"restored_bond_mac"`
	RestoredDeadMAC  string   `json:"restored_dead_mac"`
	Restored         traffic  `json:"restored"`
	Downs            int      `json:"downs"`
	Dissolved        bool     `json:"dissolved"`
	AddrReturned     bool     `json:"addr_returned"`
}

// phase and traffic mirror internal/guesttest's summary.
type phase struct {
	Mode             string   `json:"mode"`
	SysMode          string   `json:"sys_mode"`
	SysMIIMon        string   `json:"sys_miimon"`
	SysSlaves        string   `json:"sys_slaves"`
	SysActive        string   `json:"sys_active"`
	ControllerMode   string   `json:"controller_mode"`
	ControllerActive []string `json:"controller_active"`
	BondAddrMoved    bool     `json:"bond_addr_moved"`
	JoinDowns        int      `json:"join_downs"`
	Healthy          traffic  `json:"healthy"`
	Cut              traffic  `json:"cut"`
	Restored         traffic  `json:"restored"`
	CutNIC           string   `json:"cut_nic"`
	CutMII           string   `json:"cut_mii"`
	CutCarrier       string   `json:"cut_carrier"`
	CutSlaves        string   `json:"cut_slaves"`
	CutActive        string   `json:"cut_active"`
	CutControllerAct []string `json:"cut_controller_active"`
	CutDetectS       float64  `json:"cut_detect_s"`
	RestoredMII      string   `json:"restored_mii"`
	RestoredActive   string   `json:"restored_active"`
	RestoreS         float64  `json:"restore_s"`
	Dissolved        bool     `json:"dissolved"`
	AddrReturned     bool     `json:"addr_returned"`
}

type traffic struct {
	Sent     int            `json:"sent"`
	TX       map[string]int `json:"tx"`
	Observed int            `json:"observed"`
}
