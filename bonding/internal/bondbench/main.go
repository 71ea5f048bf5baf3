//go:build linux

// Command bondbench measures the userland bond (scripts/bench bonding):
// single-flow TCP throughput through one plain veth link and through
// bonds of 2 and 3 veth links joined back to back (each link limited by
// tbf), the same unlimited, the failover gap of a 1 ms ping stream and the
// longest TCP stall when a member is cut mid-stream, and CPU per Gbit.
// With -iperf3 (scripts/bench bond) the throughput through the limited
// links and the CPU figure are also measured with iperf3 (server in one
// namespace, client in the other, -J output parsed).
// It needs root and creates (and removes) its own network namespaces.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"ftnas/bonding"
	"ftnas/bonding/internal/nsexec"
	"ftnas/bonding/userland"
)

func main() {
	rate := flag.String("rate", "500mbit", "tbf rate of every link (both directions)")
	secs := flag.Duration("time", 5*time.Second, "duration of each throughput run")
	reorder := flag.Int("reordering", 127, "net.ipv4.tcp_reordering in the bonded namespaces (Linux default 3)")
	verbose := flag.Bool("v", false, "log the bond controllers")
	prefix := flag.String("prefix", fmt.Sprintf("ftbench-%d", os.Getpid()), "name prefix of the network namespaces made (and removed)")
	iperf := flag.String("iperf3", "", "path of iperf3: measure throughput with it too (scripts/bench bond)")
	flag.Parse()
	if _, err := fmt.Sscanf(strings.TrimSuffix(*rate, "mbit"), "%g", new(float64)); err != nil || !strings.HasSuffix(*rate, "mbit") {
		fmt.Fprintf(os.Stderr, "bondbench: -rate %q: want a number of mbit, like 500mbit\n", *rate)
		os.Exit(2)
	}
	if *secs < time.Second {
		fmt.Fprintf(os.Stderr, "bondbench: -time %v: want at least 1s\n", *secs)
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bondbench: must run as root (network namespaces, TAP, AF_PACKET)")
		os.Exit(2)
	}
	b := &bench{rate: *rate, dur: *secs, reorder: *reorder, prefix: *prefix, iperf3: *iperf}
	if *verbose {
		b.log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	} else {
		b.log = slog.New(slog.DiscardHandler)
	}
	if err := b.run(); err != nil {
		fmt.Fprintln(os.Stderr, "bondbench:", err)
		os.Exit(1)
	}
}

type bench struct {
	rate    string
	dur     time.Duration
	reorder int
	log     *slog.Logger
	prefix  string
	seq     int
	iperf3  string
}

type result struct {
	Bench          string  `json:"bench"`
	RateMbit       float64 `json:"link_rate_mbit"`
	Single         float64 `json:"single_mbit"`
	Bond2          float64 `json:"bond2_mbit"`
	Bond3          float64 `json:"bond3_mbit"`
	UnlimSingle    float64 `json:"unlimited_single_mbit"`
	UnlimBond2     float64 `json:"unlimited_bond2_mbit"`
	GapMS          float64 `json:"failover_gap_ms"`
	PingLost       int     `json:"failover_pings_lost"`
	StallMS        float64 `json:"failover_tcp_stall_ms"`
	CPUPerGbit     float64 `json:"cpu_percent_per_gbit"`
	TCPReordering  int     `json:"tcp_reordering"`
	SecondsPerTest float64 `json:"seconds_per_run"`

	// With -iperf3 (bench "bond"): single_mbit, bond2_mbit, bond3_mbit and
	// cpu_percent_per_gbit are iperf3's; the Go flow's figures move here.
	GoSingle     float64 `json:"go_flow_single_mbit,omitempty"`
	GoBond2      float64 `json:"go_flow_bond2_mbit,omitempty"`
	GoBond3      float64 `json:"go_flow_bond3_mbit,omitempty"`
	GoCPUPerGbit float64 `json:"go_flow_cpu_percent_per_gbit,omitempty"`
	IperfUnlim   float64 `json:"iperf3_unlimited_bond2_mbit,omitempty"`
	IperfRetr    int     `json:"iperf3_bond2_retransmits,omitempty"`
}

func (b *bench) run() error {
	r := result{Bench: "bonding", TCPReordering: b.reorder, SecondsPerTest: b.dur.Seconds()}
	fmt.Sscanf(strings.TrimSuffix(b.rate, "mbit"), "%g", &r.RateMbit)
	var err error
	step := func(name string, f func() error) {
		if err != nil {
			return
		}
		fmt.Fprintf(os.Stderr, "bondbench: %s...\n", name)
		if e := f(); e != nil {
			err = fmt.Errorf("%s: %w", name, e)
		}
	}
	step("single link", func() (e error) { r.Single, _, e = b.throughput(1, false, b.rate); return })
	step("bond of 2", func() (e error) { r.Bond2, _, e = b.throughput(2, true, b.rate); return })
	step("bond of 3", func() (e error) { r.Bond3, _, e = b.throughput(3, true, b.rate); return })
	step("unlimited single link", func() (e error) { r.UnlimSingle, _, e = b.throughput(1, false, ""); return })
	var cpu float64
	step("unlimited bond of 2", func() (e error) { r.UnlimBond2, cpu, e = b.throughput(2, true, ""); return })
	if r.UnlimBond2 > 0 {
		r.CPUPerGbit = cpu / (r.UnlimBond2 / 1000)
	}
	var ip3 [3]iperfResult
	var ip3Unlim iperfResult
	if b.iperf3 != "" {
		r.Bench = "bond"
		step("iperf3, single link", func() (e error) { ip3[0], e = b.iperfThroughput(1, false, b.rate); return })
		step("iperf3, bond of 2", func() (e error) { ip3[1], e = b.iperfThroughput(2, true, b.rate); return })
		step("iperf3, bond of 3", func() (e error) { ip3[2], e = b.iperfThroughput(3, true, b.rate); return })
		step("iperf3, unlimited bond of 2", func() (e error) { ip3Unlim, e = b.iperfThroughput(2, true, ""); return })
	}
	step("failover", func() (e error) { r.GapMS, r.PingLost, r.StallMS, e = b.failover(); return })
	if err != nil {
		return err
	}
	if b.iperf3 != "" {
		r.GoSingle, r.GoBond2, r.GoBond3, r.GoCPUPerGbit = r.Single, r.Bond2, r.Bond3, r.CPUPerGbit
		r.Single, r.Bond2, r.Bond3 = ip3[0].mbit, ip3[1].mbit, ip3[2].mbit
		r.IperfUnlim, r.IperfRetr = ip3Unlim.mbit, ip3[1].retransmits
		r.CPUPerGbit = 0
		if ip3Unlim.mbit > 0 {
			r.CPUPerGbit = ip3Unlim.bondCPU / (ip3Unlim.mbit / 1000)
		}
		fmt.Printf("%-34s %12s %10s %12s %10s\n", "userland bond, single TCP flow", "iperf3", "× 1 link", "Go flow", "× 1 link")
		row := func(name string, v, base, g, gbase float64) {
			fmt.Printf("%-34s %12.0f %10.2f %12.0f %10.2f\n", name, v, v/max(base, 1e-9), g, g/max(gbase, 1e-9))
		}
		row(fmt.Sprintf("1 link (tbf %s)", b.rate), r.Single, r.Single, r.GoSingle, r.GoSingle)
		row(fmt.Sprintf("bond of 2 links (tbf %s)", b.rate), r.Bond2, r.Single, r.GoBond2, r.GoSingle)
		row(fmt.Sprintf("bond of 3 links (tbf %s)", b.rate), r.Bond3, r.Single, r.GoBond3, r.GoSingle)
		fmt.Printf("%-34s %12.0f %10s %12.0f %10s\n", "bond of 2, unlimited", r.IperfUnlim, "-", r.UnlimBond2, "-")
		fmt.Printf("%-34s %12s %10s %12.0f %10s\n", "1 link, unlimited (plain veth)", "-", "-", r.UnlimSingle, "-")
		fmt.Printf("iperf3 retransmits through the bond of 2 (round-robin reorders): %d\n", r.IperfRetr)
		fmt.Printf("physical limit: N × one link; targets 2 links ≥ 1.8×, 3 links ≥ 2.6×\n")
		fmt.Printf("failover (bond of 2, one member cut): 1 ms ping stream lost %d (longest gap %.0f ms); longest TCP stall %.0f ms (target < 100 ms)\n", r.PingLost, r.GapMS, r.StallMS)
		fmt.Printf("CPU: both userland bond ends (this process) during iperf3 through the unlimited bond of 2: %.0f%% of a core per Gbit/s (iperf3's own CPU: sender %.0f%%, receiver %.0f%%)\n", r.CPUPerGbit, ip3Unlim.hostCPU, ip3Unlim.remoteCPU)
		fmt.Printf("CPU, Go flow (bond ends and TCP ends in this process): %.0f%% of a core per Gbit/s\n", r.GoCPUPerGbit)
		out, _ := json.Marshal(r)
		fmt.Println(string(out))
		return nil
	}
	fmt.Printf("%-34s %12s %10s\n", "userland bond, single TCP flow", "Mbit/s", "× 1 link")
	row := func(name string, v, base float64) {
		ratio := "-"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f", v/base)
		}
		fmt.Printf("%-34s %12.0f %10s\n", name, v, ratio)
	}
	row(fmt.Sprintf("1 link (tbf %s)", b.rate), r.Single, r.Single)
	row(fmt.Sprintf("bond of 2 links (tbf %s)", b.rate), r.Bond2, r.Single)
	row(fmt.Sprintf("bond of 3 links (tbf %s)", b.rate), r.Bond3, r.Single)
	row("1 link, unlimited (plain veth)", r.UnlimSingle, r.UnlimSingle)
	row("bond of 2, unlimited", r.UnlimBond2, r.UnlimSingle)
	fmt.Printf("physical limit: N × one link; targets 2 links ≥ 1.8×, 3 links ≥ 2.6×, unlimited ≥ 2000 Mbit/s\n")
	fmt.Printf("failover (bond of 2, one member cut): 1 ms ping stream lost %d (longest gap %.0f ms); longest TCP stall %.0f ms (target < 100 ms)\n", r.PingLost, r.GapMS, r.StallMS)
	fmt.Printf("CPU (whole process: both bond ends and both TCP ends): %.0f%% of a core per Gbit/s\n", r.CPUPerGbit)
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	return nil
}

// lab is two namespaces joined by n veth pairs a<i> <-> b<i>.
type lab struct {
	b       *bench
	names   [2]string
	hs      [2]netns.NsHandle
	sides   []*side
	cleanup []func()
}

type side struct {
	dp    *userland.Datapath
	agent *bonding.Agent
	stop  func()
}

var ipA, ipB = netip.MustParseAddr("10.79.0.1"), netip.MustParseAddr("10.79.0.2")

func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func tc(args ...string) error {
	if out, err := exec.Command("tc", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("tc %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (b *bench) newLab(n int, rate string, bonded bool) (l *lab, err error) {
	b.seq++
	l = &lab{b: b}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	for i, s := range []string{"a", "b"} {
		name := fmt.Sprintf("%s-%d-%s", b.prefix, b.seq, s)
		if err := ip("netns", "add", name); err != nil {
			return nil, err
		}
		l.names[i] = name
		l.cleanup = append(l.cleanup, func() { exec.Command("ip", "netns", "del", name).Run() })
		if l.hs[i], err = netns.GetFromName(name); err != nil {
			return nil, err
		}
		h := l.hs[i]
		l.cleanup = append(l.cleanup, func() { h.Close() })
		if err := ip("-n", name, "link", "set", "lo", "up"); err != nil {
			return nil, err
		}
		if bonded {
			if err := sysctl(h, "net/ipv4/tcp_reordering", fmt.Sprint(b.reorder)); err != nil {
				return nil, err
			}
		}
	}
	for i := range n {
		an, bn := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
		if err := ip("-n", l.names[0], "link", "add", an, "type", "veth", "peer", "name", bn, "netns", l.names[1]); err != nil {
			return nil, err
		}
		for k, dev := range []string{an, bn} {
			if rate != "" {
				if err := tc("-n", l.names[k], "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "256kb", "latency", "20ms"); err != nil {
					return nil, err
				}
			}
			if err := ip("-n", l.names[k], "link", "set", dev, "up"); err != nil {
				return nil, err
			}
		}
	}
	if err := ip("-n", l.names[0], "addr", "add", ipA.String()+"/24", "dev", "a0"); err != nil {
		return nil, err
	}
	if err := ip("-n", l.names[1], "addr", "add", ipB.String()+"/24", "dev", "b0"); err != nil {
		return nil, err
	}
	if !bonded {
		return l, nil
	}
	for k, peer := range []netip.Addr{ipB, ipA} {
		dp, err := userland.New(userland.Options{Namespace: "/run/netns/" + l.names[k], Logger: b.log})
		if err != nil {
			return nil, err
		}
		c, err := bonding.New(bonding.Config{ProbeTarget: peer})
		if err != nil {
			dp.Close()
			return nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		s := &side{dp: dp, agent: bonding.NewAgent(c, dp, bonding.AgentOptions{Logger: b.log.With("ns", l.names[k])})}
		done := make(chan struct{})
		go func() { s.agent.Run(ctx); close(done) }()
		s.stop = func() { cancel(); <-done; dp.Close() }
		l.sides = append(l.sides, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range n {
		for k, s := range l.sides {
			nic := fmt.Sprintf("%c%d", "ab"[k], i)
			if err := s.agent.Add(ctx, nic); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

func (l *lab) close() {
	for _, s := range l.sides {
		s.stop()
	}
	for i := len(l.cleanup) - 1; i >= 0; i-- {
		l.cleanup[i]()
	}
}

// sysctl writes a per-namespace /proc/sys/net value from inside ns.
func sysctl(ns netns.NsHandle, key, val string) error {
	return nsexec.Do(ns, func() error {
		return os.WriteFile("/proc/sys/"+key, []byte(val), 0)
	})
}

// sink accepts one TCP connection in namespace B and counts what arrives,
// with the longest pause between two reads.
type sink struct {
	ln       net.Listener
	bytes    atomic.Int64
	maxStall atomic.Int64 // ns
	done     chan error
}

func (l *lab) sink() (*sink, error) {
	s := &sink{done: make(chan error, 1)}
	err := nsexec.Do(l.hs[1], func() error {
		var err error
		s.ln, err = net.Listen("tcp4", ipB.String()+":0")
		return err
	})
	if err != nil {
		return nil, err
	}
	go func() {
		c, err := s.ln.Accept()
		if err != nil {
			s.done <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 1<<20)
		last := time.Now()
		for {
			n, err := c.Read(buf)
			now := time.Now()
			if gap := now.Sub(last); int64(gap) > s.maxStall.Load() {
				s.maxStall.Store(int64(gap))
			}
			last = now
			s.bytes.Add(int64(n))
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				s.done <- err
				return
			}
		}
	}()
	return s, nil
}

// stream sends from namespace A to the sink until stop is closed.
func (l *lab) stream(s *sink, stop <-chan struct{}) error {
	var c net.Conn
	if err := nsexec.Do(l.hs[0], func() error {
		var err error
		c, err = net.DialTimeout("tcp4", s.ln.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	go func() {
		<-stop
		c.SetWriteDeadline(time.Now())
	}()
	for {
		if _, err := c.Write(buf); err != nil {
			select {
			case <-stop:
				c.Close()
				return nil
			default:
				c.Close()
				return err
			}
		}
	}
}

func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// throughput measures one TCP flow over n links (bonded or a plain one),
// after a one second warm-up; it returns Mbit/s and the process's CPU use
// in percent of one core.
func (b *bench) throughput(n int, bonded bool, rate string) (mbit, cpuPct float64, err error) {
	l, err := b.newLab(n, rate, bonded)
	if err != nil {
		return 0, 0, err
	}
	defer l.close()
	s, err := l.sink()
	if err != nil {
		return 0, 0, err
	}
	defer s.ln.Close()
	stop := make(chan struct{})
	serr := make(chan error, 1)
	go func() { serr <- l.stream(s, stop) }()
	time.Sleep(time.Second) // warm-up: slow start, tbf buckets
	b0, c0, t0 := s.bytes.Load(), cpuTime(), time.Now()
	time.Sleep(b.dur)
	b1, c1, t1 := s.bytes.Load(), cpuTime(), time.Now()
	close(stop)
	if err := <-serr; err != nil {
		return 0, 0, fmt.Errorf("send: %w", err)
	}
	if err := <-s.done; err != nil {
		return 0, 0, fmt.Errorf("receive: %w", err)
	}
	el := t1.Sub(t0).Seconds()
	return float64(b1-b0) * 8 / el / 1e6, (c1 - c0).Seconds() / el * 100, nil
}

// failover cuts one member of a bond of two (b1, from the far side) in the
// middle of a 1 ms ping stream and then of a TCP stream.
func (b *bench) failover() (gapMS float64, lost int, stallMS float64, err error) {
	l, err := b.newLab(2, b.rate, true)
	if err != nil {
		return 0, 0, 0, err
	}
	defer l.close()
	cut := func() error { return ip("-n", l.names[1], "link", "set", "b1", "down") }
	restore := func() error {
		if err := ip("-n", l.names[1], "link", "set", "b1", "up"); err != nil {
			return err
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			st, err := l.sides[0].agent.Status(context.Background())
			if err == nil && len(st.Active) == 2 {
				return nil
			}
			time.Sleep(20 * time.Millisecond)
		}
		return errors.New("a1 did not rejoin within 5s")
	}
	lost, longest, err := l.pingStream(3*time.Second, time.Second, cut)
	if err != nil {
		return 0, 0, 0, err
	}
	if err := restore(); err != nil {
		return 0, 0, 0, err
	}
	s, err := l.sink()
	if err != nil {
		return 0, 0, 0, err
	}
	defer s.ln.Close()
	stop := make(chan struct{})
	serr := make(chan error, 1)
	go func() { serr <- l.stream(s, stop) }()
	time.Sleep(time.Second)
	s.maxStall.Store(0) // only stalls from the cut on
	if err := cut(); err != nil {
		return 0, 0, 0, err
	}
	time.Sleep(2 * time.Second)
	close(stop)
	if err := <-serr; err != nil {
		return 0, 0, 0, fmt.Errorf("send: %w", err)
	}
	<-s.done
	return float64(longest), lost, float64(s.maxStall.Load()) / 1e6, nil
}

// pingStream sends an ICMP echo every millisecond from A to B for total,
// runs event at the given offset, and returns how many were not answered
// and the longest run of unanswered ones.
func (l *lab) pingStream(total, at time.Duration, event func() error) (lost, longest int, err error) {
	var c net.PacketConn
	if err := nsexec.Do(l.hs[0], func() error {
		var err error
		c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		return 0, 0, err
	}
	defer c.Close()
	n := int(total / time.Millisecond)
	got := make([]bool, n)
	var mu sync.Mutex
	rdone := make(chan struct{})
	go func() {
		defer close(rdone)
		buf := make([]byte, 1500)
		for {
			k, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if k >= 8 && buf[0] == 0 && buf[4] == 0xbe && buf[5] == 0x9c {
				seq := int(buf[6])<<8 | int(buf[7])
				mu.Lock()
				if seq < n {
					got[seq] = true
				}
				mu.Unlock()
			}
		}
	}()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	dst := &net.IPAddr{IP: ipB.AsSlice()}
	fired := false
	start := time.Now()
	for seq := 0; seq < n; seq++ {
		<-tick.C
		if !fired && time.Since(start) >= at {
			fired = true
			if err := event(); err != nil {
				return 0, 0, err
			}
		}
		msg := []byte{8, 0, 0, 0, 0xbe, 0x9c, byte(seq >> 8), byte(seq), 'g', 'a', 'p'}
		cs := checksum(msg)
		msg[2], msg[3] = byte(cs>>8), byte(cs)
		c.WriteTo(msg, dst)
	}
	time.Sleep(200 * time.Millisecond) // the last replies
	c.Close()
	<-rdone
	mu.Lock()
	defer mu.Unlock()
	run := 0
	for _, ok := range got {
		if ok {
			run = 0
			continue
		}
		lost++
		run++
		longest = max(longest, run)
	}
	return lost, longest, nil
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

type iperfResult struct {
	mbit               float64
	retransmits        int
	hostCPU, remoteCPU float64 // iperf3's own, percent
	bondCPU            float64 // this process (the bond ends), percent of a core
}

// iperfReport is the part of iperf3 -J's output used here.
type iperfReport struct {
	End struct {
		SumSent struct {
			Retransmits int `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			BitsPerSecond float64 `json:"bits_per_second"`
			Seconds       float64 `json:"seconds"`
		} `json:"sum_received"`
		CPU struct {
			HostTotal   float64 `json:"host_total"`
			RemoteTotal float64 `json:"remote_total"`
		} `json:"cpu_utilization_percent"`
	} `json:"end"`
	Error string `json:"error"`
}

// parseIperf reads iperf3 -J output.
func parseIperf(out []byte) (iperfResult, error) {
	var rep iperfReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return iperfResult{}, fmt.Errorf("iperf3 -J output: %w", err)
	}
	if rep.Error != "" {
		return iperfResult{}, fmt.Errorf("iperf3: %s", rep.Error)
	}
	if rep.End.SumReceived.Seconds <= 0 {
		return iperfResult{}, errors.New("iperf3 -J output: no sum_received")
	}
	return iperfResult{
		mbit:        rep.End.SumReceived.BitsPerSecond / 1e6,
		retransmits: rep.End.SumSent.Retransmits,
		hostCPU:     rep.End.CPU.HostTotal,
		remoteCPU:   rep.End.CPU.RemoteTotal,
	}, nil
}

// iperfThroughput measures one iperf3 TCP flow from namespace A to a
// one-off server in B over n links (bonded or a plain one), omitting the
// first second (slow start, tbf buckets).
func (b *bench) iperfThroughput(n int, bonded bool, rate string) (iperfResult, error) {
	l, err := b.newLab(n, rate, bonded)
	if err != nil {
		return iperfResult{}, err
	}
	defer l.close()
	const port = "5299"
	srv := exec.Command("ip", "netns", "exec", l.names[1], b.iperf3, "-s", "-1", "-B", ipB.String(), "-p", port)
	var srvOut strings.Builder
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		return iperfResult{}, fmt.Errorf("start iperf3 server: %w", err)
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Wait() }()
	defer func() {
		select {
		case <-srvDone:
		default:
			srv.Process.Kill()
			<-srvDone
		}
	}()
	secs := fmt.Sprint(int(b.dur.Round(time.Second).Seconds()))
	var res iperfResult
	var cpu0, cpu1 time.Duration
	var el float64
	for try := 0; ; try++ {
		// The server may not listen yet: retry a refused connection.
		cli := exec.Command("ip", "netns", "exec", l.names[0], b.iperf3, "-c", ipB.String(), "-p", port, "-t", secs, "-O", "1", "-J")
		cpu0 = cpuTime()
		t0 := time.Now()
		out, cerr := cli.Output()
		cpu1 = cpuTime()
		el = time.Since(t0).Seconds()
		res, err = parseIperf(out)
		if err == nil {
			break
		}
		if try == 20 || !strings.Contains(err.Error(), "connect") {
			return iperfResult{}, fmt.Errorf("%w (client exit: %v; server: %s)", err, cerr, strings.TrimSpace(srvOut.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The bond ends' CPU over the whole client run (omitted second and
	// setup included, so slightly high).
	res.bondCPU = (cpu1 - cpu0).Seconds() / el * 100
	return res, nil
}
