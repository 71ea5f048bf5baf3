//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"ftnas/appliance/api"
)

// runOptions configure the trials.
type runOptions struct {
	Lab      string
	Root     string
	Trials   int
	Seed     uint64
	Duration time.Duration
	Out      string
	Workers  int
	Keep     bool
	Self     string
	Settle   time.Duration
	// SMBWorkers per share log in as SMBUser (password from the
	// environment, passed on to the client).
	SMBWorkers int
	SMBUser    string
	// NasdDebug restarts nasd with --debug (every change captured and
	// every record applied logged: a failed trial can be traced record
	// by record).
	NasdDebug bool
}

func (o *runOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.Lab, "lab", "", "the lab (scripts/lab --name), with the pair formed and shares sync and async (required)")
	fs.StringVar(&o.Root, "root", ".", "the repository (for scripts/lab)")
	fs.IntVar(&o.Trials, "trials", 1, "trials")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the first trial; trial i uses seed+i")
	fs.DurationVar(&o.Duration, "duration", 25*time.Second, "a trial's client run (the faults fit inside)")
	fs.StringVar(&o.Out, "out", "/tmp/ftnas-chaos", "failed trials are kept in OUT/SEED")
	fs.IntVar(&o.Workers, "workers", 2, "client workers per share")
	fs.IntVar(&o.SMBWorkers, "smb-workers", 0, "SMB client workers per share (the lab's nasd runs Samba; needs --smb-user and $CHAOS_SMB_PASSWORD)")
	fs.StringVar(&o.SMBUser, "smb-user", "", "the SMB user the bench added")
	fs.BoolVar(&o.Keep, "keep", false, "keep every trial's folder, not only the failed ones")
	fs.StringVar(&o.Self, "self", "", "this program, run as the client in the client namespace (default: this executable)")
	fs.DurationVar(&o.Settle, "settle", 90*time.Second, "how long the pair may take to converge after a trial")
	fs.BoolVar(&o.NasdDebug, "nasd-debug", false, "restart nasd with --debug (start it so too)")
}

// labInfo is what `scripts/lab status --json` tells.
type labInfo struct {
	Name  string `json:"name"`
	Dir   string `json:"dir"`
	VIP   string `json:"vip"`
	Nodes []struct {
		Name     string `json:"name"`
		NS       string `json:"ns"`
		PublicIf string `json:"public_if"`
		API      string `json:"api"`
		Volume   string `json:"volume"`
		Log      string `json:"log"`
	} `json:"nodes"`
	Clients []struct {
		Name string `json:"name"`
		NS   string `json:"ns"`
	} `json:"clients"`
}

func (l *labInfo) pidfile(node string) string {
	return filepath.Join("/run/ftnas-lab", l.Name, "nasd-"+node+".pid")
}

// trialShares are the shares the bench sets up (name = path).
func trialShares() []shareSpec {
	return []shareSpec{{"sync", "/sync", "sync"}, {"async", "/async", "async"}}
}

// runner runs trials in one lab.
type runner struct {
	o   runOptions
	lab labInfo
	api map[string]*api.Client
	log *slog.Logger
	out io.Writer
}

func (r *runner) labCmd(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(r.o.Root, "scripts", "lab"), append([]string{"--name", r.o.Lab}, args...)...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		return string(b), fmt.Errorf("scripts/lab %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

func runTrials(ctx context.Context, o runOptions, stdout io.Writer) error {
	if o.Lab == "" {
		return errors.New("run: no --lab")
	}
	if o.Trials < 1 {
		return fmt.Errorf("run: --trials %d", o.Trials)
	}
	if o.Self == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("run: find this executable: %w", err)
		}
		o.Self = self
	}
	r := &runner{o: o, api: map[string]*api.Client{}, log: slog.New(slog.NewTextHandler(os.Stderr, nil)), out: stdout}
	st, err := r.labCmd(ctx, "status", "--json")
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(st), &r.lab); err != nil {
		return fmt.Errorf("run: parse scripts/lab status --json: %w", err)
	}
	if len(r.lab.Nodes) != 2 || len(r.lab.Clients) < 1 || r.lab.VIP == "" {
		return fmt.Errorf("run: lab %s: want 2 nodes, a client and a VIP: %s", o.Lab, st)
	}
	for _, n := range r.lab.Nodes {
		r.api[n.Name] = api.NewClient(n.API)
		defer r.api[n.Name].Close()
	}
	var sum summary
	for i := range o.Trials {
		seed := o.Seed + uint64(i)
		res, err := r.trial(ctx, i+1, seed)
		if err != nil {
			sum.Aborted = fmt.Sprintf("trial %d (seed %d): %v", i+1, seed, err)
			r.log.Error("chaos: run aborted", "trial", i+1, "seed", seed, "err", err)
			break
		}
		sum.add(res)
	}
	sum.print(stdout, o)
	if sum.Aborted != "" {
		return errors.New(sum.Aborted)
	}
	return nil
}

// trialResult is one trial's verdict.
type trialResult struct {
	N         int
	Seed      uint64
	Report    Report
	Faults    []string
	Converged bool
	Dir       string
	Stalls    []int64
}

// failed: a broken guarantee, no convergence, or a client that got
// nothing done (a broken set-up, not a result).
func (t trialResult) failed() bool { return t.Report.Failed() || !t.Converged || t.Report.Acked == 0 }

func (r *runner) trial(ctx context.Context, n int, seed uint64) (trialResult, error) {
	res := trialResult{N: n, Seed: seed}
	dir := filepath.Join(r.o.Out, fmt.Sprint(seed))
	if err := os.RemoveAll(dir); err != nil {
		return res, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("trial folder: %w", err)
	}
	res.Dir = dir
	if err := r.prepare(ctx); err != nil {
		return res, fmt.Errorf("bring the pair to n1 master, n2 slave in sync: %w", err)
	}
	logsAt := r.logSizes()
	sched := Generate(seed, r.o.Duration)
	if err := writeJSONFile(filepath.Join(dir, "schedule.json"), map[string]any{"seed": seed, "duration_ms": r.o.Duration.Milliseconds(), "faults": sched}); err != nil {
		return res, err
	}
	w, err := newWatcher(&r.lab, 50*time.Millisecond)
	if err != nil {
		return res, err
	}
	defer w.close()
	wctx, wstop := context.WithCancel(ctx)
	wdone := make(chan struct{})
	go func() { w.run(wctx); close(wdone) }()
	defer func() { wstop(); <-wdone }()

	// The client.
	hist := filepath.Join(dir, "history.jsonl")
	clog, err := os.Create(filepath.Join(dir, "client.log"))
	if err != nil {
		return res, err
	}
	defer clog.Close()
	args := []string{"netns", "exec", r.lab.Clients[0].NS, r.o.Self, "client", "--server", r.lab.VIP,
		"--workers", fmt.Sprint(r.o.Workers), "--seed", fmt.Sprint(seed), "--duration", r.o.Duration.String(),
		"--history", hist, "--prefix", fmt.Sprintf("t%d-", seed)}
	if r.o.SMBWorkers > 0 {
		args = append(args, "--smb-workers", fmt.Sprint(r.o.SMBWorkers), "--smb-user", r.o.SMBUser)
	}
	for _, s := range trialShares() {
		args = append(args, "--share", s.Name+":"+s.Export+":"+s.Mode)
	}
	client := exec.Command("ip", args...)
	client.Stdout, client.Stderr = clog, clog
	start := time.Now()
	if err := client.Start(); err != nil {
		return res, fmt.Errorf("start the client: %w", err)
	}
	cdone := make(chan error, 1)
	go func() { cdone <- client.Wait() }()

	// The faults.
	flog, err := os.Create(filepath.Join(dir, "faults.jsonl"))
	if err != nil {
		return res, err
	}
	defer flog.Close()
	enc := json.NewEncoder(flog)
	event := func(f Fault, node, action string, began time.Time, err error) {
		e := faultEvent{Start: began.UnixNano(), T: time.Now().UnixNano(), Fault: f, Node: node, Action: action}
		if err != nil {
			e.Err = err.Error()
			r.log.Warn("chaos: fault", "seed", seed, "fault", f.String(), "action", action, "err", err)
		}
		_ = enc.Encode(e)
	}
	for _, f := range sched {
		sleepUntil(ctx, start.Add(time.Duration(f.AtMS)*time.Millisecond))
		node := r.resolve(w, f.Target)
		desc := f.String()
		if f.Target != "" {
			desc = strings.Replace(desc, f.Target, f.Target+"("+node+")", 1)
		}
		res.Faults = append(res.Faults, desc)
		began := time.Now()
		err := r.apply(ctx, f, node)
		event(f, node, "apply", began, err)
		if f.ForMS > 0 || f.Kind == FaultRestart || f.Kind == FaultKill9 {
			sleepUntil(ctx, time.Now().Add(time.Duration(f.ForMS)*time.Millisecond))
			began = time.Now()
			err = r.undo(ctx, f, node)
			event(f, node, "undo", began, err)
		}
	}
	sleepUntil(ctx, start.Add(r.o.Duration))
	began := time.Now()
	err = r.healAll(ctx)
	event(Fault{Kind: "heal"}, "", "apply", began, err)

	// The client's last ops finish once the pair serves again.
	var cerr error
	t := time.NewTimer(90 * time.Second)
	select {
	case cerr = <-cdone:
	case <-t.C:
		_ = client.Process.Signal(syscall.SIGKILL)
		cerr = <-cdone
		cerr = fmt.Errorf("the client did not finish within 90 s of the trial's end (killed): %v", cerr)
	}
	t.Stop()
	end := time.Now()
	if cerr != nil {
		res.Report.Problems = append(res.Report.Problems, fmt.Sprintf("client: %v", cerr))
	}
	master, standby, cerr2 := r.converge(ctx, r.o.Settle, false)
	res.Converged = cerr2 == nil
	wstop()
	<-wdone
	samples := w.take()
	if err := writeJSONLines(filepath.Join(dir, "samples.jsonl"), samples); err != nil {
		return res, err
	}
	hf, err := os.Open(hist)
	if err != nil {
		return res, fmt.Errorf("read the history: %w", err)
	}
	ops, err := ParseHistory(hf)
	hf.Close()
	if err != nil {
		return res, err
	}
	trees, err := r.trees(fmt.Sprintf("t%d-", seed))
	if err != nil {
		return res, err
	}
	// The capture may log the client's last changes a moment after the
	// pair first looked converged: a standby that differs gets a few
	// more chances to catch up before it counts as no copy.
	for try := 0; res.Converged && try < 10 && len(Diverged(trees, master, standby)) > 0; try++ {
		sleepUntil(ctx, time.Now().Add(500*time.Millisecond))
		if master, standby, cerr2 = r.converge(ctx, r.o.Settle, false); cerr2 != nil {
			res.Converged = false
			break
		}
		if trees, err = r.trees(fmt.Sprintf("t%d-", seed)); err != nil {
			return res, err
		}
	}
	if err := writeJSONFile(filepath.Join(dir, "trees.json"), trees); err != nil {
		return res, err
	}
	in := CheckInput{Ops: ops, Final: trees, Master: master, Standby: standby, Samples: samples, End: end.UnixNano()}
	if err := writeJSONFile(filepath.Join(dir, "final.json"), map[string]any{"master": master, "standby": standby, "end": in.End, "converged": res.Converged}); err != nil {
		return res, err
	}
	rep := Check(in)
	rep.Problems = append(res.Report.Problems, rep.Problems...)
	if !res.Converged {
		rep.Problems = append(rep.Problems, fmt.Sprintf("the pair did not converge within %v after the trial: %v", r.o.Settle, cerr2))
	}
	if rep.Acked == 0 {
		rep.Problems = append(rep.Problems, "no op was acknowledged: the client could not work (see client.log and history.jsonl)")
	}
	res.Report = rep
	for _, o := range ops {
		res.Stalls = append(res.Stalls, o.Stall())
	}
	if err := writeJSONFile(filepath.Join(dir, "report.json"), rep); err != nil {
		return res, err
	}
	r.line(res)
	if res.failed() || r.o.Keep {
		r.keepLogs(dir, logsAt)
	}
	if !res.failed() && !r.o.Keep {
		os.RemoveAll(dir)
		res.Dir = ""
	}
	return res, nil
}

// logSizes is where each node's nasd log ends now: a trial's part of the
// log starts there.
func (r *runner) logSizes() map[string]int64 {
	at := make(map[string]int64, len(r.lab.Nodes))
	for _, n := range r.lab.Nodes {
		if fi, err := os.Stat(n.Log); err == nil {
			at[n.Name] = fi.Size()
		}
	}
	return at
}

// keepLogs copies each node's nasd log from where it was at the trial's
// start into the trial's folder as NODE.nasd.log.
func (r *runner) keepLogs(dir string, from map[string]int64) {
	for _, n := range r.lab.Nodes {
		if err := copyTail(n.Log, filepath.Join(dir, n.Name+".nasd.log"), from[n.Name]); err != nil {
			r.log.Warn("chaos: keep the nasd log", "node", n.Name, "err", err)
		}
	}
}

// copyTail copies src from offset off on to dst.
func copyTail(src, dst string, off int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if _, err := in.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("seek %s: %w", src, err)
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

func (r *runner) line(t trialResult) {
	verdict := "ok"
	if t.failed() {
		verdict = "FAILED (kept in " + t.Dir + ")"
	}
	rep := t.Report
	fmt.Fprintf(r.out, "trial %3d seed %-6d ops %5d (info %d)  lost sync %d/%d async %d smb %d (window %d ms)  stale %d  split %d  stall max %d ms p99 %d ms  %s\n",
		t.N, t.Seed, rep.Ops, rep.Info, rep.LostSync, rep.StandbyLostSync, rep.LostAsync, rep.LostSMB, rep.AsyncLossWindowMS, rep.StaleHandles, rep.SplitBrains,
		rep.MaxStallMS, rep.P99StallMS, verdict)
	fmt.Fprintf(r.out, "           faults: %s\n", strings.Join(t.Faults, "; "))
	for i, p := range rep.Problems {
		if i == 5 {
			fmt.Fprintf(r.out, "           ! ... %d more in %s/report.json\n", len(rep.Problems)-5, t.Dir)
			break
		}
		fmt.Fprintf(r.out, "           ! %s\n", p)
	}
	for i, l := range rep.Losses {
		if i == 5 {
			fmt.Fprintf(r.out, "           ... %d more in %s/report.json\n", len(rep.Losses)-5, t.Dir)
			break
		}
		fmt.Fprintf(r.out, "           lost on %s: %s w%d seq %d %s %s (%s)\n", l.Node, l.Share, l.Worker, l.Seq, l.Kind, l.File, l.Why)
	}
}

// resolve names the node a fault hits: the serving one or the other.
func (r *runner) resolve(w *watcher, target string) string {
	if target == "" {
		return ""
	}
	master := w.servingNode()
	if target == TargetMaster {
		return master
	}
	if master == "n1" {
		return "n2"
	}
	return "n1"
}

func (r *runner) nodeNS(node string) string {
	for _, n := range r.lab.Nodes {
		if n.Name == node {
			return n.NS
		}
	}
	return ""
}

func (r *runner) startNasd(ctx context.Context, node string) error {
	args := []string{"nasd", "start", node, "--", "--metrics", ""}
	if r.o.SMBWorkers == 0 {
		args = append(args, "--no-smb")
	}
	if r.o.NasdDebug {
		args = append(args, "--debug")
	}
	_, err := r.labCmd(ctx, args...)
	return err
}

// kill9 sends SIGKILL to a node's nasd itself (scripts/lab takes a
// second or more on a loaded machine) and then, as the box's supervisor
// does at once, removes the VIP the dead process left.
func (r *runner) kill9(ctx context.Context, node string) error {
	pf := r.lab.pidfile(node)
	b, err := os.ReadFile(pf)
	if err != nil {
		return fmt.Errorf("kill9 %s: %w", node, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("kill9 %s: pid file %s holds %q", node, pf, b)
	}
	if running, frozen := procState(pf); !running && !frozen {
		return fmt.Errorf("kill9 %s: nasd (pid %d) is not running", node, pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill9 %s: pid %d: %w", node, pid, err)
	}
	r.removeVIP(ctx, node)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if running, frozen := procState(pf); !running && !frozen {
			return nil
		}
		if time.Now().After(deadline) || !sleepUntil(ctx, time.Now().Add(20*time.Millisecond)) {
			return fmt.Errorf("kill9 %s: pid %d still there", node, pid)
		}
	}
}

// removeVIP is the box's supervisor after nasd died: it removes the VIP
// the dead process could not.
func (r *runner) removeVIP(ctx context.Context, node string) {
	_ = exec.CommandContext(ctx, "ip", "-n", r.nodeNS(node), "addr", "del", r.lab.VIP+"/24", "dev", "pub").Run()
}

func (r *runner) apply(ctx context.Context, f Fault, node string) error {
	var err error
	switch f.Kind {
	case FaultKill9:
		err = r.kill9(ctx, node)
	case FaultFreeze:
		_, err = r.labCmd(ctx, "nasd", "freeze", node)
	case FaultRestart:
		_, err = r.labCmd(ctx, "nasd", "stop", node)
	case FaultCut:
		_, err = r.labCmd(ctx, "cut", node, f.Path)
	case FaultPartition:
		_, err = r.labCmd(ctx, "partition", node)
	case FaultLoss:
		_, err = r.labCmd(ctx, "loss", node, f.Path, fmt.Sprint(f.Loss))
	case FaultRate:
		_, err = r.labCmd(ctx, "rate", node, f.Path, f.Rate)
	case FaultFailback:
		err = r.failback(ctx)
	default:
		err = fmt.Errorf("unknown fault %q", f.Kind)
	}
	return err
}

func (r *runner) undo(ctx context.Context, f Fault, node string) error {
	var err error
	switch f.Kind {
	case FaultKill9, FaultRestart:
		err = r.startNasd(ctx, node)
	case FaultFreeze:
		_, err = r.labCmd(ctx, "nasd", "thaw", node)
	case FaultCut:
		_, err = r.labCmd(ctx, "restore", node, f.Path)
	case FaultPartition:
		_, err = r.labCmd(ctx, "heal", node)
	case FaultLoss:
		_, err = r.labCmd(ctx, "loss", node, f.Path, "0")
	case FaultRate:
		_, err = r.labCmd(ctx, "rate", node, f.Path, "off")
	}
	return err
}

// failback hands the service back to n1 when n2 serves and n1 is its
// caught-up slave; otherwise it does nothing (errSkipped).
func (r *runner) failback(ctx context.Context) error {
	s1, e1 := r.status(ctx, "n1")
	s2, e2 := r.status(ctx, "n2")
	if e1 != nil || e2 != nil || !s2.Serving || s1.State != "slave" || !s2.PeerAlive {
		return fmt.Errorf("failback skipped: n1 %q, n2 %q serving %v", s1.State, s2.State, s2.Serving)
	}
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return r.api["n2"].ClusterAction(c, "failback")
}

func (r *runner) status(ctx context.Context, node string) (api.ClusterStatus, error) {
	c, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return r.api[node].ClusterStatus(c)
}

// healAll undoes every fault: cables, loss, rate; frozen nasd thawed,
// stopped nasd started.
func (r *runner) healAll(ctx context.Context) error {
	var errs []error
	if _, err := r.labCmd(ctx, "heal"); err != nil {
		errs = append(errs, err)
	}
	for _, n := range r.lab.Nodes {
		running, frozen := procState(r.lab.pidfile(n.Name))
		switch {
		case frozen:
			if _, err := r.labCmd(ctx, "nasd", "thaw", n.Name); err != nil {
				errs = append(errs, err)
			}
		case !running:
			r.removeVIP(ctx, n.Name)
			if err := r.startNasd(ctx, n.Name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// converge waits until one node serves and the other is its slave, both
// hear each other, and replication has caught up. With failback, it
// hands the service back to n1 first when n2 serves.
func (r *runner) converge(ctx context.Context, within time.Duration, failback bool) (master, standby string, err error) {
	deadline := time.Now().Add(within)
	var last string
	asked := time.Time{}
	for time.Now().Before(deadline) {
		s1, e1 := r.status(ctx, "n1")
		s2, e2 := r.status(ctx, "n2")
		last = fmt.Sprintf("n1 %s serving=%v epoch=%d peer_alive=%v repl=%+v (%v); n2 %s serving=%v epoch=%d peer_alive=%v repl=%+v (%v)",
			s1.State, s1.Serving, s1.Epoch, s1.PeerAlive, s1.Replication, e1, s2.State, s2.Serving, s2.Epoch, s2.PeerAlive, s2.Replication, e2)
		if e1 == nil && e2 == nil && s1.Serving != s2.Serving && s1.PeerAlive && s2.PeerAlive {
			m, s, mn, sn := s1, s2, "n1", "n2"
			if s2.Serving {
				m, s, mn, sn = s2, s1, "n2", "n1"
			}
			rm := m.Replication
			synced := s.State == "slave" && rm.Role == "master" && rm.Connected && rm.Depth == 0 && rm.AckedSeq == rm.LastSeq &&
				s.Replication.AckedSeq == rm.LastSeq
			if synced && (!failback || mn == "n1") {
				return mn, sn, nil
			}
			if synced && failback && mn == "n2" && time.Since(asked) > 10*time.Second {
				c, cancel := context.WithTimeout(ctx, 5*time.Second)
				if err := r.api["n2"].ClusterAction(c, "failback"); err != nil {
					r.log.Warn("chaos: failback", "err", err)
				}
				cancel()
				asked = time.Now()
			}
		}
		if !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
			return "", "", ctx.Err()
		}
	}
	return "", "", fmt.Errorf("not within %v: %s", within, last)
}

// prepare heals the lab and brings the pair to n1 master, n2 slave, in
// sync.
func (r *runner) prepare(ctx context.Context) error {
	if err := r.healAll(ctx); err != nil {
		return err
	}
	_, _, err := r.converge(ctx, r.o.Settle, true)
	return err
}

// trees reads the trial's files (names with prefix) from both nodes'
// volumes.
func (r *runner) trees(prefix string) (Trees, error) {
	out := Trees{}
	for _, n := range r.lab.Nodes {
		out[n.Name] = map[string]map[string]string{}
		for _, s := range trialShares() {
			files := map[string]string{}
			d := filepath.Join(n.Volume, strings.TrimPrefix(s.Export, "/"))
			ents, err := os.ReadDir(d)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("read %s: %w", d, err)
			}
			for _, e := range ents {
				if !strings.HasPrefix(e.Name(), prefix) || !e.Type().IsRegular() {
					continue
				}
				b, err := os.ReadFile(filepath.Join(d, e.Name()))
				if err != nil {
					if errors.Is(err, os.ErrNotExist) {
						continue
					}
					return nil, fmt.Errorf("read %s: %w", e.Name(), err)
				}
				files[e.Name()] = string(b)
			}
			out[n.Name][s.Name] = files
		}
	}
	return out, nil
}

// sleepUntil sleeps until t or ctx ends; false if ctx ended.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func writeJSONLines[T any](path string, vs []T) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, v := range vs {
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("encode %s: %w", path, err)
		}
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// summary aggregates the trials for the table's end and the JSON line.
type summary struct {
	Trials, FailedTrials, NotConverged        int
	LostSync, LostAsync, StandbyLostSync      int
	LostSMB, ReadMismatchSMB                  int
	Stale, Split, ReadMismatchSync, Ops, Info int
	Diverged                                  int
	MaxWindow, MaxStall                       int64
	Stalls                                    []int64
	FailedSeeds                               []uint64
	Aborted                                   string
}

func (s *summary) add(t trialResult) {
	s.Trials++
	rep := t.Report
	if t.failed() {
		s.FailedTrials++
		s.FailedSeeds = append(s.FailedSeeds, t.Seed)
	}
	if !t.Converged {
		s.NotConverged++
	}
	s.LostSync += rep.LostSync
	s.StandbyLostSync += rep.StandbyLostSync
	s.LostAsync += rep.LostAsync
	s.LostSMB += rep.LostSMB
	s.ReadMismatchSMB += rep.ReadMismatchSMB
	s.Stale += rep.StaleHandles
	s.Split += rep.SplitBrains
	s.Diverged += rep.Diverged
	s.ReadMismatchSync += rep.ReadMismatchSync
	s.Ops += rep.Ops
	s.Info += rep.Info
	s.MaxWindow = max(s.MaxWindow, rep.AsyncLossWindowMS)
	s.MaxStall = max(s.MaxStall, rep.MaxStallMS)
	s.Stalls = append(s.Stalls, t.Stalls...)
}

func (s *summary) print(w io.Writer, o runOptions) {
	var p50, p99 int64
	if len(s.Stalls) > 0 {
		slices.Sort(s.Stalls)
		p50 = s.Stalls[(len(s.Stalls)+1)/2-1] / 1e6
		p99 = s.Stalls[(len(s.Stalls)*99+99)/100-1] / 1e6
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-34s %v\n", "trials", s.Trials)
	fmt.Fprintf(w, "%-34s %v\n", "ops (given up)", fmt.Sprintf("%d (%d)", s.Ops, s.Info))
	fmt.Fprintf(w, "%-34s %v\n", "lost acked writes, sync (standby)", fmt.Sprintf("%d (%d)", s.LostSync, s.StandbyLostSync))
	fmt.Fprintf(w, "%-34s %v\n", "lost acked writes, async", s.LostAsync)
	fmt.Fprintf(w, "%-34s %v\n", "lost acked writes, SMB (async)", fmt.Sprintf("%d (reads not seeing them: %d)", s.LostSMB, s.ReadMismatchSMB))
	fmt.Fprintf(w, "%-34s %v\n", "max async loss window ms", s.MaxWindow)
	fmt.Fprintf(w, "%-34s %v\n", "sync reads not seeing acked data", s.ReadMismatchSync)
	fmt.Fprintf(w, "%-34s %v\n", "stale handles", s.Stale)
	fmt.Fprintf(w, "%-34s %v\n", "split brains", s.Split)
	fmt.Fprintf(w, "%-34s %v\n", "standby files not the master's", s.Diverged)
	fmt.Fprintf(w, "%-34s %v\n", "client stall p50 / p99 / max ms", fmt.Sprintf("%d / %d / %d", p50, p99, s.MaxStall))
	fmt.Fprintf(w, "%-34s %v\n", "trials not converged", s.NotConverged)
	fmt.Fprintf(w, "%-34s %v\n", "failed trials", s.FailedTrials)
	for _, seed := range s.FailedSeeds {
		fmt.Fprintf(w, "  seed %d: %s/%d; replay: scripts/bench chaos --seed %d --duration %v\n", seed, o.Out, seed, seed, o.Duration)
	}
	seeds := s.FailedSeeds
	if seeds == nil {
		seeds = []uint64{}
	}
	line := summaryLine{
		Bench: "chaos", Trials: s.Trials, LostSync: s.LostSync + s.StandbyLostSync, LostAsync: s.LostAsync,
		MaxWindow: s.MaxWindow, Stale: s.Stale, Split: s.Split, MaxStall: s.MaxStall, P99: p99, P50: p50,
		Ops: s.Ops, ReadMismatchSync: s.ReadMismatchSync, NotConverged: s.NotConverged, LostSMB: s.LostSMB, Diverged: s.Diverged,
		FailedTrials: s.FailedTrials, FailedSeeds: seeds, FirstSeed: o.Seed, DurationS: o.Duration.Seconds(), Aborted: s.Aborted,
	}
	b, _ := json.Marshal(line)
	fmt.Fprintln(w, string(b))
}

// summaryLine is the bench's last line, in the key order.
type summaryLine struct {
	Bench            string   `json:"bench"`
	Trials           int      `json:"trials"`
	LostSync         int      `json:"lost_acked_writes_sync"`
	LostAsync        int      `json:"lost_acked_writes_async"`
	MaxWindow        int64    `json:"max_async_loss_window_ms"`
	Stale            int      `json:"stale_handles"`
	Split            int      `json:"split_brains"`
	MaxStall         int64    `json:"client_max_stall_ms"`
	P99              int64    `json:"client_stall_p99_ms"`
	P50              int64    `json:"client_stall_p50_ms"`
	Ops              int      `json:"ops"`
	ReadMismatchSync int      `json:"sync_read_mismatches"`
	LostSMB          int      `json:"lost_acked_writes_smb"`
	NotConverged     int      `json:"not_converged"`
	Diverged         int      `json:"standby_diverged_files"`
	FailedTrials     int      `json:"failed_trials"`
	FailedSeeds      []uint64 `json:"failed_seeds"`
	FirstSeed        uint64   `json:"first_seed"`
	DurationS        float64  `json:"duration_s"`
	Aborted          string   `json:"aborted,omitempty"`
}
