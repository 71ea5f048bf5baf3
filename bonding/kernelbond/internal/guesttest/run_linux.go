package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"ftnas/bonding"
	"ftnas/bonding/internal/nsexec"
	"ftnas/bonding/kernelbond"
)

const (
	bondName  = "bond0"
	miimon    = 50 * time.Millisecond
	addr      = "10.99.0.1/24"
	etherType = 0x88b5 // IEEE local experimental
	frames    = 40
	waitLimit = 10 * time.Second
)

// Phase is one mode's run, what the host test asserts on.
type Phase struct {
	Mode string `json:"mode"`
	// Sysfs as read after the bond settled.
	SysMode        string `json:"sys_mode"`
	SysMIIMon      string `json:"sys_miimon"`
	SysSlaves      string `json:"sys_slaves"`
	SysActive      string `json:"sys_active"`
	ControllerMode string `json:"controller_mode"`
	// ControllerActive is what the controller asked to carry traffic.
	ControllerActive []string `json:"controller_active"`
	BondAddrMoved    bool     `json:"bond_addr_moved"`
	// JoinDowns counts members the controller took Down while they were
	// added and the bond settled (enslaving must not look like a fault).
	JoinDowns int `json:"join_downs"`
	// Frames sent with all members up, with one cut, after the restore:
	// per member tx_packets deltas and frames the observer saw.
	Healthy  Traffic `json:"healthy"`
	Cut      Traffic `json:"cut"`
	Restored Traffic `json:"restored"`
	// The member cut, and what the bond said about it.
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
	// After removing both members.
	Dissolved    bool `json:"dissolved"`
	AddrReturned bool `json:"addr_returned"`
}

// Traffic is one burst of frames through the bond.
type Traffic struct {
	Sent     int            `json:"sent"`
	TX       map[string]int `json:"tx"`
	Observed int            `json:"observed"`
}

// Summary is the whole run.
type Summary struct {
	Members  []string `json:"members"`
	Observer string   `json:"observer"`
	Phases   []Phase  `json:"phases"`
	// Probes are balance-rr and active-backup with ARP probes and a
	// dead path.
	Probes []ProbePhase `json:"probes"`
}

// ProbePhase is a bond with the controller's ARP probes to the observer
// (probeTarget, in a namespace of its own so its kernel answers through the
// hub): a member's path dies while its carrier stays up (tc drops
// everything it sends and receives), then comes back.
type ProbePhase struct {
	Mode string `json:"mode"`
	// Settled with probes: both members admitted by their answers.
	ControllerActive []string `json:"controller_active"`
	SysSlaves        string   `json:"sys_slaves"`
	SysActive        string   `json:"sys_active"`
	JoinDowns        int      `json:"join_downs"`
	BondMAC          string   `json:"bond_mac"`
	Healthy          Traffic  `json:"healthy"`
	// With the path dead, once the controller noticed.
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
	Dead             Traffic  `json:"dead"`
	// After the fault was removed.
	RestoreS        float64 `json:"restore_s"`
	RestoredSlaves  string  `json:"restored_sys_slaves"`
	RestoredActive  string  `json:"restored_sys_active"`
	RestoredBondMAC string  `json:"restored_bond_mac"`
	RestoredDeadMAC string  `json:"restored_dead_mac"`
	Restored        Traffic `json:"restored"`
	// Downs counts the controller's Down changes up to here: only the
	// dead path's (the backups' and the slaves' probes are answered).
	Downs        int  `json:"downs"`
	Dissolved    bool `json:"dissolved"`
	AddrReturned bool `json:"addr_returned"`
}

func say(format string, a ...any) {
	fmt.Printf("bondtest: "+format+"\n", a...)
}

func run() error {
	// /init loads bonding without parameters, so the driver made an empty
	// bond0 (max_bonds defaults to 1); the controller creates its own.
	if l, err := netlink.LinkByName(bondName); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			return fmt.Errorf("delete the driver's default %s: %w", bondName, err)
		}
		say("deleted the driver's default %s", bondName)
	}
	// No IPv6: its neighbour discovery and MLD frames would add to the
	// members' tx counters.
	for _, f := range []string{"all", "default"} {
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+f+"/disable_ipv6", []byte("1\n"), 0); err != nil {
			return fmt.Errorf("disable IPv6: %w", err)
		}
	}
	nics, macs, err := waitNICs(3, waitLimit)
	if err != nil {
		return err
	}
	s := Summary{Members: nics[:2], Observer: nics[2]}
	for _, n := range nics[:2] {
		l, err := netlink.LinkByName(n)
		if err != nil {
			return fmt.Errorf("look up %s: %w", n, err)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("set %s up: %w", n, err)
		}
	}
	obs, err := observe(nics[2])
	if err != nil {
		return err
	}
	if err := waitFor("members' carrier", func() (bool, string) {
		c0, c1 := sysfs(nics[0], "carrier"), sysfs(nics[1], "carrier")
		return c0 == "1" && c1 == "1", c0 + " " + c1
	}); err != nil {
		return err
	}
	for _, m := range []bonding.Mode{bonding.LoadBalance, bonding.Failover} {
		p, err := phase(m, nics, macs, obs)
		if err != nil {
			return fmt.Errorf("%v: %w", m, err)
		}
		s.Phases = append(s.Phases, p)
	}
	for _, m := range []bonding.Mode{bonding.LoadBalance, bonding.Failover} {
		p, err := probePhase(m, nics, macs, obs)
		if err != nil {
			return fmt.Errorf("%v with ARP probes: %w", m, err)
		}
		s.Probes = append(s.Probes, p)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	say("summary %s", b)
	return nil
}

// waitNICs waits for n hardware NICs and returns them sorted by MAC, and
// their MACs (which members trade for the bond's once enslaved).
func waitNICs(n int, timeout time.Duration) ([]string, map[string]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		ents, _ := os.ReadDir("/sys/class/net")
		type nic struct{ name, mac string }
		var found []nic
		for _, e := range ents {
			if _, err := os.Stat(filepath.Join("/sys/class/net", e.Name(), "device")); err != nil {
				continue // virtual: lo, bond0
			}
			found = append(found, nic{e.Name(), sysfs(e.Name(), "address")})
		}
		if len(found) >= n {
			slices.SortFunc(found, func(a, b nic) int { return strings.Compare(a.mac, b.mac) })
			var out []string
			macs := map[string]string{}
			for _, f := range found[:n] {
				say("nic %s mac=%s", f.name, f.mac)
				out = append(out, f.name)
				macs[f.name] = f.mac
			}
			return out, macs, nil
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("wait for %d NICs: found %v after %v", n, found, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func phase(mode bonding.Mode, nics []string, macs map[string]string, obs observer) (Phase, error) {
	p := Phase{Mode: mode.String()}
	m0, m1 := nics[0], nics[1]
	l0, err := netlink.LinkByName(m0)
	if err != nil {
		return p, err
	}
	a, _ := netlink.ParseAddr(addr)
	if err := netlink.AddrAdd(l0, a); err != nil {
		return p, fmt.Errorf("address %s on %s: %w", addr, m0, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
	dp, err := kernelbond.New(kernelbond.Options{BondName: bondName, MIIMon: miimon, Logger: log})
	if err != nil {
		return p, err
	}
	defer dp.Close()
	c, err := bonding.New(bonding.Config{Mode: mode, UpDelay: 300 * time.Millisecond})
	if err != nil {
		return p, err
	}
	agent, downs, ctx, stop := startAgent(c, dp, log)
	defer stop()

	for _, n := range []string{m0, m1} {
		if err := agent.Add(ctx, n); err != nil {
			return p, err
		}
	}
	// Settled: the driver has both members up and the controller has both
	// Up (kernelbond takes a member down to enslave it and hides that
	// carrier loss from the controller).
	want := []string{m0, m1}
	if mode == bonding.Failover {
		want = []string{m0}
	}
	if err := settle(ctx, agent, want, m0, m1); err != nil {
		return p, err
	}
	p.JoinDowns = int(downs.Load())
	st, err := agent.Status(ctx)
	if err != nil {
		return p, err
	}
	p.ControllerMode, p.ControllerActive = st.Mode.String(), st.Active
	p.SysMode, p.SysMIIMon = bondSys("mode"), bondSys("miimon")
	p.SysSlaves, p.SysActive = bondSys("slaves"), bondSys("active_slave")
	say("%v settled: mode=%q miimon=%q slaves=%q active_slave=%q controller active=%v",
		mode, p.SysMode, p.SysMIIMon, p.SysSlaves, p.SysActive, st.Active)
	if bl, err := netlink.LinkByName(bondName); err == nil {
		as, _ := netlink.AddrList(bl, netlink.FAMILY_V4)
		p.BondAddrMoved = len(as) == 1 && as[0].IPNet.String() == addr
	}

	if p.Healthy, err = burst(1, []string{m0, m1}, obs); err != nil {
		return p, err
	}

	// Cut a member: the one carrying traffic in active-backup (the
	// primary), the second in balance-rr.
	cut := m1
	if mode == bonding.Failover {
		cut = m0
	}
	p.CutNIC = cut
	t0 := time.Now()
	say("cut %s mac=%s", cut, macs[cut])
	other := m0
	if cut == m0 {
		other = m1
	}
	wantAct := []string{other}
	if err := waitFor("cut of "+cut, func() (bool, string) {
		mii, car := slaveSys(cut, "mii_status"), sysfs(cut, "carrier")
		st, _ := agent.Status(ctx)
		act, slaves := bondSys("active_slave"), bondSys("slaves")
		ok := car == "0" && slices.Equal(st.Active, wantAct)
		if mode == bonding.Failover {
			// Still a slave, down, and not the active one.
			ok = ok && mii == "down" && act == other
		} else {
			// Out of the rotation the controller asked for: released.
			ok = ok && slaves == other
		}
		return ok, fmt.Sprintf("mii=%s carrier=%s active_slave=%q slaves=%q controller=%v", mii, car, act, slaves, st.Active)
	}); err != nil {
		return p, err
	}
	p.CutDetectS = time.Since(t0).Seconds()
	p.CutMII, p.CutCarrier, p.CutActive = slaveSys(cut, "mii_status"), sysfs(cut, "carrier"), bondSys("active_slave")
	p.CutSlaves = bondSys("slaves")
	st, _ = agent.Status(ctx)
	p.CutControllerAct = st.Active
	if p.Cut, err = burst(2, []string{m0, m1}, obs); err != nil {
		return p, err
	}

	t0 = time.Now()
	say("restore %s mac=%s", cut, macs[cut])
	if err := settle(ctx, agent, want, m0, m1); err != nil {
		return p, err
	}
	p.RestoreS = time.Since(t0).Seconds()
	p.RestoredMII, p.RestoredActive = slaveSys(cut, "mii_status"), bondSys("active_slave")
	if p.Restored, err = burst(3, []string{m0, m1}, obs); err != nil {
		return p, err
	}

	for _, n := range []string{m1, m0} {
		if err := agent.Remove(ctx, n); err != nil {
			return p, err
		}
	}
	_, err = netlink.LinkByName(bondName)
	p.Dissolved = err != nil
	as, _ := netlink.AddrList(l0, netlink.FAMILY_V4)
	p.AddrReturned = len(as) == 1 && as[0].IPNet.String() == addr
	if err := netlink.AddrDel(l0, a); err != nil {
		return p, fmt.Errorf("remove %s from %s after the phase: %w", addr, m0, err)
	}
	return p, nil
}

// settle waits until the driver has both members MII-up and the controller
// has want carrying traffic with every member Up; in active-backup the
// driver's active slave must be the controller's choice.
// startAgent runs the controller c over the datapath dp, saying every
// change and counting the members that went down; stop ends it.
func startAgent(c *bonding.Controller, dp bonding.Datapath, log *slog.Logger) (agent *bonding.Agent, downs *atomic.Int32, ctx context.Context, stop func()) {
	downs = new(atomic.Int32)
	agent = bonding.NewAgent(c, dp, bonding.AgentOptions{Logger: log, OnChange: func(ch bonding.Changed) {
		say("controller: %+v", ch)
		if ch.To == bonding.Down {
			downs.Add(1)
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- agent.Run(ctx) }()
	return agent, downs, ctx, func() { cancel(); <-ran }
}

func settle(ctx context.Context, agent *bonding.Agent, want []string, members ...string) error {
	return waitFor("bond to settle", func() (bool, string) {
		st, err := agent.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		ok := slices.Equal(st.Active, want)
		var desc []string
		for _, n := range st.NICs {
			ok = ok && n.State == bonding.Up
			desc = append(desc, fmt.Sprintf("%s:%v", n.Name, n.State))
		}
		for _, m := range members {
			mii := slaveSys(m, "mii_status")
			ok = ok && mii == "up"
			desc = append(desc, m+"-mii:"+mii)
		}
		act := bondSys("active_slave")
		if st.Mode == bonding.Failover {
			ok = ok && act == want[0]
		}
		return ok, fmt.Sprintf("controller active=%v %s active_slave=%q", st.Active, strings.Join(desc, " "), act)
	})
}

// waitFor polls cond every 10 ms, printing each new state, until it holds
// or waitLimit passes.
func waitFor(what string, cond func() (bool, string)) error {
	deadline := time.Now().Add(waitLimit)
	last := ""
	for {
		ok, state := cond()
		if state != last {
			say("wait %s: %s", what, state)
			last = state
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %v: %s", what, waitLimit, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// burst sends frames broadcast frames of our EtherType through the bond,
// tagged with id, and reports each member's tx_packets delta and how many
// of them the observer received.
func burst(id byte, members []string, obs observer) (Traffic, error) {
	tr := Traffic{Sent: frames, TX: map[string]int{}}
	var rx int
	err := nsexec.Do(obs.ns, func() error {
		var err error
		rx, err = packetSocket(obs.name)
		return err
	})
	if err != nil {
		return tr, err
	}
	defer unix.Close(rx)
	tx, err := packetSocket(bondName)
	if err != nil {
		return tr, err
	}
	defer unix.Close(tx)
	before := map[string]int{}
	for _, m := range members {
		before[m] = counter(m, "tx_packets")
	}
	bond, err := net.InterfaceByName(bondName)
	if err != nil {
		return tr, err
	}
	to := &unix.SockaddrLinklayer{Ifindex: bond.Index, Protocol: htons(etherType), Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	for i := range frames {
		payload := make([]byte, 46)
		copy(payload, "ftnas-bondtest")
		payload[14] = id
		binary.BigEndian.PutUint16(payload[15:], uint16(i))
		if err := unix.Sendto(tx, payload, 0, to); err != nil {
			return tr, fmt.Errorf("send frame %d through %s: %w", i, bondName, err)
		}
	}
	seen := map[uint16]bool{}
	buf := make([]byte, 2048)
	deadline := time.Now().Add(2 * time.Second)
	for len(seen) < frames && time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(rx, buf, 0)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return tr, fmt.Errorf("receive on %s: %w", obs.name, err)
		}
		if n >= 17 && string(buf[:14]) == "ftnas-bondtest" && buf[14] == id {
			seen[binary.BigEndian.Uint16(buf[15:])] = true
		}
	}
	tr.Observed = len(seen)
	// virtio-net counts a frame when it reaps the transmit completion,
	// which can come after the frame is on the wire: wait until the
	// members account for the burst, so no frame is counted in the next.
	err = waitFor(fmt.Sprintf("tx counters of burst %d", id), func() (bool, string) {
		sum := 0
		for _, m := range members {
			tr.TX[m] = counter(m, "tx_packets") - before[m]
			sum += tr.TX[m]
		}
		return sum >= frames, fmt.Sprint(tr.TX)
	})
	if err != nil {
		return tr, err
	}
	say("burst %d: sent %d, tx %v, observer got %d", id, frames, tr.TX, tr.Observed)
	return tr, nil
}

// packetSocket opens an AF_PACKET datagram socket for our EtherType bound
// to ifname, with a 100 ms receive timeout.
func packetSocket(ifname string) (int, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(etherType)))
	if err != nil {
		return -1, fmt.Errorf("packet socket on %s: %w", ifname, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(etherType)}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind packet socket to %s: %w", ifname, err)
	}
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func sysfs(nic, attr string) string {
	b, err := os.ReadFile(filepath.Join("/sys/class/net", nic, attr))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func bondSys(attr string) string { return sysfs(bondName, filepath.Join("bonding", attr)) }

func slaveSys(nic, attr string) string { return sysfs(nic, filepath.Join("bonding_slave", attr)) }

func counter(nic, name string) int {
	v, _ := strconv.Atoi(sysfs(nic, filepath.Join("statistics", name)))
	return v
}
