package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"ftnas/bonding"
	"ftnas/bonding/internal/nsexec"
	"ftnas/bonding/kernelbond"
)

// probeTarget is the observer's address in its namespace: the controller's
// ARP probes ask for it and the observer's kernel answers.
const probeTarget = "10.99.0.2"

// observer is the third NIC, in a network namespace of its own.
type observer struct {
	name string
	ns   netns.NsHandle
}

// observe moves nic into a new network namespace and gives it
// probeTarget, so its kernel answers ARP for it through the hub like a
// gateway would; it sees every frame the members send, as before.
func observe(nic string) (observer, error) {
	o := observer{name: nic}
	type made struct {
		ns  netns.NsHandle
		err error
	}
	c := make(chan made, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread, now in the new namespace, dies with the goroutine
		ns, err := netns.New()
		c <- made{ns, err}
	}()
	m := <-c
	if m.err != nil {
		return o, fmt.Errorf("observer namespace: %w", m.err)
	}
	o.ns = m.ns
	// No IPv6 in there either ("default" is what the NIC gets when it
	// moves in).
	err := nsexec.Do(o.ns, func() error {
		for _, f := range []string{"all", "default"} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+f+"/disable_ipv6", []byte("1\n"), 0); err != nil {
				return fmt.Errorf("disable IPv6 in the observer's namespace: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return o, err
	}
	l, err := netlink.LinkByName(nic)
	if err != nil {
		return o, err
	}
	if err := netlink.LinkSetNsFd(l, int(o.ns)); err != nil {
		return o, fmt.Errorf("move %s into the observer's namespace: %w", nic, err)
	}
	err = nsexec.Do(o.ns, func() error {
		for _, n := range []string{"lo", nic} {
			l, err := netlink.LinkByName(n)
			if err == nil {
				err = netlink.LinkSetUp(l)
			}
			if err != nil {
				return fmt.Errorf("set %s up in the observer's namespace: %w", n, err)
			}
		}
		l, _ := netlink.LinkByName(nic)
		a, _ := netlink.ParseAddr(probeTarget + "/24")
		if err := netlink.AddrAdd(l, a); err != nil {
			return fmt.Errorf("address %s on %s: %w", probeTarget, nic, err)
		}
		return nil
	})
	if err != nil {
		return o, err
	}
	say("observer %s in its own namespace at %s", nic, probeTarget)
	return o, nil
}

// deadPath kills (or revives) nic's path while its carrier stays up: a
// clsact qdisc whose matchall filters drop every frame in both
// directions. Egress drops happen before the NIC's driver (tx_packets does
// not count them); ingress drops before the bond and before protocol
// taps like the datapath's probe socket, as if the frames never came.
func deadPath(nic string, dead bool) error {
	l, err := netlink.LinkByName(nic)
	if err != nil {
		return err
	}
	idx := l.Attrs().Index
	q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}
	if !dead {
		if err := netlink.QdiscDel(q); err != nil {
			return fmt.Errorf("remove the drop filters from %s: %w", nic, err)
		}
		return nil
	}
	if err := netlink.QdiscAdd(q); err != nil {
		return fmt.Errorf("clsact qdisc on %s: %w", nic, err)
	}
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		drop := &netlink.GenericAction{ActionAttrs: netlink.ActionAttrs{Action: netlink.TC_ACT_SHOT}}
		f := &netlink.MatchAll{
			FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: parent, Priority: 1, Protocol: unix.ETH_P_ALL},
			Actions:     []netlink.Action{drop},
		}
		if err := netlink.FilterAdd(f); err != nil {
			return fmt.Errorf("drop filter on %s (parent %#x): %w", nic, parent, err)
		}
	}
	return nil
}

// probePhase runs a bond in mode with the controller's ARP probes to the
// observer and kills a member's path with deadPath: the second in
// balance-rr, the primary (the active one) in active-backup.
func probePhase(mode bonding.Mode, nics []string, macs map[string]string, obs observer) (ProbePhase, error) {
	p := ProbePhase{Mode: mode.String()}
	m0, m1 := nics[0], nics[1]
	dead, other := m1, m0
	if mode == bonding.Failover {
		dead, other = m0, m1
	}
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
	// Generous for TCG on a loaded host: a member is down after 3 probes
	// 200 ms apart go unanswered.
	c, err := bonding.New(bonding.Config{Mode: mode, Interval: 200 * time.Millisecond, Misses: 3,
		UpDelay: 400 * time.Millisecond, AddTimeout: 5 * time.Second, ProbeTarget: netip.MustParseAddr(probeTarget)})
	if err != nil {
		return p, err
	}
	agent, downs, ctx, stop := startAgent(c, dp, log)
	defer stop()

	// Each is admitted only by the target's answer through it.
	for _, n := range []string{m0, m1} {
		if err := agent.Add(ctx, n); err != nil {
			return p, err
		}
	}
	both, want := []string{m0, m1}, []string{m0, m1}
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
	p.ControllerActive, p.SysSlaves, p.SysActive, p.BondMAC = st.Active, bondSys("slaves"), bondSys("active_slave"), sysfs(bondName, "address")
	say("%v with probes settled: slaves=%q active_slave=%q controller active=%v bond mac=%s", mode, p.SysSlaves, p.SysActive, st.Active, p.BondMAC)
	if p.Healthy, err = burst(4, both, obs); err != nil {
		return p, err
	}

	p.DeadNIC = dead
	t0 := time.Now()
	if err := deadPath(dead, true); err != nil {
		return p, err
	}
	say("dead path %s (carrier stays up)", dead)
	var nst bonding.NICStatus
	err = waitFor("dead path of "+dead+" noticed", func() (bool, string) {
		st, err := agent.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range st.NICs {
			if n.Name == dead {
				nst = n
			}
		}
		slaves, act, car := bondSys("slaves"), bondSys("active_slave"), sysfs(dead, "carrier")
		ok := nst.State == bonding.Down && slices.Equal(st.Active, []string{other}) && car == "1"
		if mode == bonding.Failover {
			ok = ok && act == other // the driver follows the controller
		} else {
			ok = ok && slaves == other // released
		}
		return ok, fmt.Sprintf("%s:%v (%s) controller active=%v slaves=%q active_slave=%q carrier=%s", dead, nst.State, nst.Reason, st.Active, slaves, act, car)
	})
	if err != nil {
		return p, err
	}
	p.DeadDetectS = time.Since(t0).Seconds()
	st, _ = agent.Status(ctx)
	p.DeadReason, p.DeadState, p.DeadControllerAc = nst.Reason, nst.State.String(), st.Active
	p.DeadSysSlaves, p.DeadSysActive = bondSys("slaves"), bondSys("active_slave")
	p.DeadCarrier, p.DeadOperState, p.DeadMII = sysfs(dead, "carrier"), sysfs(dead, "operstate"), slaveSys(dead, "mii_status")
	p.DeadMAC, p.DeadBondMAC = sysfs(dead, "address"), sysfs(bondName, "address")
	say("%s out: slaves=%q active_slave=%q carrier=%s operstate=%s mii=%s mac=%s (own %s) bond mac=%s", dead,
		p.DeadSysSlaves, p.DeadSysActive, p.DeadCarrier, p.DeadOperState, p.DeadMII, p.DeadMAC, macs[dead], p.DeadBondMAC)
	if p.Dead, err = burst(5, both, obs); err != nil {
		return p, err
	}

	t0 = time.Now()
	if err := deadPath(dead, false); err != nil {
		return p, err
	}
	say("path of %s back", dead)
	if err := settle(ctx, agent, want, m0, m1); err != nil {
		return p, err
	}
	if err := waitFor("both slaves again", func() (bool, string) {
		s := bondSys("slaves")
		return s == m0+" "+m1, s
	}); err != nil {
		return p, err
	}
	p.RestoreS = time.Since(t0).Seconds()
	p.RestoredSlaves, p.RestoredActive = bondSys("slaves"), bondSys("active_slave")
	p.RestoredBondMAC, p.RestoredDeadMAC = sysfs(bondName, "address"), sysfs(dead, "address")
	if p.Restored, err = burst(6, both, obs); err != nil {
		return p, err
	}
	p.Downs = int(downs.Load())

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
