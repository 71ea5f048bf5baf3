package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ftnas/appliance/api"
	"ftnas/heartbeat"
)

func newClusterCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Form, inspect and steer a hot-standby pair",
		Args:  args(0, ""),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newClusterInitCmd(a), newClusterJoinCmd(a), newClusterStatusCmd(a), newClusterLeaveCmd(a))
	for _, c := range []struct{ name, short string }{
		{"promote", "Ask for the service: take it over once caught up (or at once if the peer is gone)"},
		{"demote", "Hand the service to the peer and do not promote until told"},
		{"failback", "Give the service back to the repaired primary once it has caught up"},
		{"takeover", "Serve here now: the peer is gone for good (you vouch for it), and whatever it had not shipped here is lost"},
	} {
		cmd.AddCommand(newClusterActionCmd(a, c.name, c.short))
	}
	return cmd
}

func newClusterInitCmd(a *app) *cobra.Command {
	var req api.ClusterInitRequest
	var interval, dead, lease time.Duration
	cmd := &cobra.Command{
		Use:   "init --vip IP/LEN --public IP --peer-public IP --witness IP [--dedicated IP --peer-dedicated IP]",
		Short: "Make this node the primary of a new pair and print the standby's join token",
		Long: "Make this node the primary of a new hot-standby pair. The pair serves its shares on the\n" +
			"virtual IP; heartbeats run over the public network and, if given, the dedicated link; a node\n" +
			"takes over only while it reaches the witness (the gateway, say). Prints a join token for\n" +
			"`nasctl cluster join` on the standby: it holds the pair's keys, so treat it like a password.\n" +
			"nasd restarts its services at once to serve on the virtual IP.\n\n" +
			"The heartbeat timing (--heartbeat-interval, --dead-interval, --lease; Go durations such as\n" +
			"150ms or 1.2s) is the pair's: the standby takes it with the token. Each defaults to\n" +
			"heartbeat's own: heartbeats every 100–200 ms, the peer dead after 900 ms of silence, a\n" +
			"500 ms lease; set only the interval and the others scale with it.",
		Args: args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, f := range []struct {
				flag string
				d    time.Duration
				ms   *int64
			}{{"heartbeat-interval", interval, &req.HeartbeatIntervalMS}, {"dead-interval", dead, &req.DeadIntervalMS}, {"lease", lease, &req.LeaseMS}} {
				ms, err := wholeMS(f.flag, f.d)
				if err != nil {
					return err
				}
				*f.ms = ms
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			out, err := c.InitCluster(cmd.Context(), req)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, out)
			}
			fmt.Fprintf(a.stdout, "Cluster %d: this node is node %d (primary); virtual IP %s on %s.\n",
				out.Status.ClusterID, out.Status.NodeID, out.Status.VIP, out.Status.Interface)
			fmt.Fprintf(a.stdout, "On the standby, run:\n  nasctl cluster join --token-stdin <<<'%s'\n", out.Token)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.VIP, "vip", "", "virtual IP with prefix length, e.g. 192.168.1.100/24 (required)")
	f.StringVar(&req.Public, "public", "", "this node's address on the public network (required)")
	f.StringVar(&req.PeerPublic, "peer-public", "", "the standby's address on the public network (required)")
	f.StringVar(&req.Dedicated, "dedicated", "", "this node's address on the dedicated link")
	f.StringVar(&req.PeerDedicated, "peer-dedicated", "", "the standby's address on the dedicated link")
	f.StringVar(&req.Witness, "witness", "", "address both nodes must reach to take over, e.g. the gateway (required)")
	f.StringVar(&req.Interface, "interface", "", "interface for the virtual IP (default: the one holding --public)")
	f.StringVar(&req.Failback, "failback", "manual", "manual: `cluster failback` hands the service back; auto: once the primary has caught up")
	f.Uint32Var(&req.NodeID, "node-id", 1, "this node's id")
	f.Uint32Var(&req.PeerID, "peer-id", 2, "the standby's id")
	f.Uint16Var(&req.HeartbeatPort, "heartbeat-port", 0, "UDP port of the heartbeats (default 7470)")
	f.Uint16Var(&req.JournalPort, "journal-port", 0, "TCP port of the journal stream (default 7471)")
	f.DurationVar(&interval, "heartbeat-interval", 0, "mean gap between heartbeats, 20ms..2s; each gap varies by a third of it (default 150ms)")
	f.DurationVar(&dead, "dead-interval", 0, "silence on every path after which the peer is dead (default 4 heartbeats at the longest gap + 100ms: 900ms)")
	f.DurationVar(&lease, "lease", 0, "how long a master serves past its newest acknowledged heartbeat, at most the dead interval (default 2 heartbeats at the longest gap + 100ms: 500ms)")
	return cmd
}

// wholeMS converts a timing flag to the API's milliseconds; 0 is the
// default. The server checks the bounds.
func wholeMS(flag string, d time.Duration) (int64, error) {
	switch {
	case d < 0:
		return 0, fmt.Errorf("cluster init: --%s %v must not be negative", flag, d)
	case d%time.Millisecond != 0:
		return 0, fmt.Errorf("cluster init: --%s %v is not a whole number of milliseconds", flag, d)
	}
	return d.Milliseconds(), nil
}

func newClusterJoinCmd(a *app) *cobra.Command {
	var req api.ClusterJoinRequest
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "join (--token-stdin | TOKEN) [--interface IF]",
		Short: "Make this node the standby of the pair a join token describes",
		Args: func(cmd *cobra.Command, argv []string) error {
			if fromStdin {
				return args(0, "")(cmd, argv)
			}
			return args(1, "TOKEN or --token-stdin")(cmd, argv)
		},
		RunE: func(cmd *cobra.Command, argv []string) error {
			if fromStdin {
				line, err := bufio.NewReader(a.stdin).ReadString('\n')
				if err != nil && err != io.EOF {
					return fmt.Errorf("cluster join: read token from stdin: %w", err)
				}
				req.Token = strings.TrimSpace(line)
			} else {
				req.Token = argv[0]
			}
			if req.Token == "" {
				return fmt.Errorf("cluster join: the token is empty")
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			s, err := c.JoinCluster(cmd.Context(), req)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, s)
			}
			fmt.Fprintf(a.stdout, "Joined cluster %d as node %d (standby of node %d); virtual IP %s on %s.\n",
				s.ClusterID, s.NodeID, s.PeerID, s.VIP, s.Interface)
			return nil
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "token-stdin", false, "read the token from standard input (keeps it out of the process list)")
	cmd.Flags().StringVar(&req.Interface, "interface", "", "interface for the virtual IP (default: the one holding this node's public address)")
	return cmd
}

func newClusterStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show this node's view of the pair: states, epoch, paths, witness",
		Args:  args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(a, cmd, (*api.Client).ClusterStatus, nil, printClusterStatus)
		},
	}
}

func printClusterStatus(w io.Writer, s api.ClusterStatus) error {
	if !s.Configured {
		_, err := fmt.Fprintln(w, "Stand-alone node (no cluster). Form one with: nasctl cluster init")
		return err
	}
	serving := "standing by"
	if s.Serving {
		serving = "serving on " + s.VIP
	}
	fmt.Fprintf(w, "Pair %s: cluster %d, epoch %d, virtual IP %s on %s, failback %s\n",
		strings.ToUpper(s.Protection), s.ClusterID, s.Epoch, s.VIP, s.Interface, s.Failback)
	tw := newTable(w)
	fmt.Fprintln(tw, "NODE\tROLE\tSTATE\tEPOCH\tJOURNAL\t")
	health := "healthy"
	if !s.Healthy {
		health = "UNHEALTHY"
	}
	fmt.Fprintf(tw, "%d (this)\t%s\t%s\t%d\t%s\t%s, %s\n", s.NodeID, s.Role, s.State, s.Epoch, journalPos(s.Journal), serving, health)
	peer := "never seen"
	switch {
	case s.PeerAlive:
		peer = "alive"
	case s.PeerSeen:
		peer = "DEAD (silent on every path)"
	}
	peerState := s.PeerState
	if peerState == "" {
		peerState = "-"
	}
	fmt.Fprintf(tw, "%d (peer)\t%s\t%s\t%d\t%s\t%s\n", s.PeerID, otherRole(s.Role), peerState, s.PeerEpoch, journalPos(s.PeerJournal), peer)
	tw.Flush()
	tw = newTable(w)
	fmt.Fprintln(tw, "PATH\tLOCAL\tPEER\tSTATE\tLAST HEARTBEAT")
	for _, p := range s.Paths {
		st := "up"
		if !p.Alive {
			st = "DOWN"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, p.Local, p.Peer, st, ageText(p.LastHeardMS))
	}
	wst := "not probed yet"
	if s.Witness.Known {
		wst = "reachable"
		if !s.Witness.Reachable {
			wst = "UNREACHABLE"
		}
	}
	fmt.Fprintf(tw, "witness\t\t%s\t%s\t%s\n", s.Witness.Addr, wst, ageText(s.Witness.AgeMS))
	tw.Flush()
	if t := s.Timing; t != (api.ClusterTiming{}) {
		ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
		fmt.Fprintf(w, "Timing: heartbeat every %v ± %v, peer dead after %v of silence, lease %v\n",
			ms(t.IntervalMS), ms(t.JitterMS), ms(t.DeadMS), ms(t.LeaseMS))
	}
	r := s.Replication
	switch {
	case r.Disabled != "":
		fmt.Fprintf(w, "Journal: DISABLED: %s\n", r.Disabled)
	case r.Role == "master":
		fmt.Fprintf(w, "Journal: shipping to the standby (%s); last record %d, acknowledged %d, depth %d, lag %d ms\n",
			connText(r.Connected), r.LastSeq, r.AckedSeq, r.Depth, r.LagMS)
	case r.Role == "standby":
		fmt.Fprintf(w, "Journal: applying the master's (%s); applied %d, lag %d ms\n", connText(r.Connected), r.AckedSeq, r.LagMS)
	}
	if r.Continued {
		fmt.Fprintln(w, "Journal: this log continues the one the standby had at the hand-off: it stayed a copy, no resync")
	}
	if r.Resyncs > 0 {
		fmt.Fprintf(w, "Journal: resynchronised %d times from a new master log since nasd started\n", r.Resyncs)
	}
	switch {
	case s.Outdating && s.PeerOutdated:
		fmt.Fprintln(w, "Journal: the standby is OUTDATED: sync shares go on without it; it is no copy and does not take over until it has caught up")
	case s.Outdating:
		fmt.Fprintln(w, "Journal: outdating the standby (its journal is cut off); sync writes wait until it acknowledges")
	case !s.Serving && s.PeerAlive && !s.Synced:
		fmt.Fprintln(w, "Journal: this node is not a copy of the master's data yet: it does not take over by itself")
	}
	if r.LastError != "" {
		fmt.Fprintf(w, "Journal: last error: %s\n", r.LastError)
	}
	if len(s.Alarms) > 0 {
		fmt.Fprintf(w, "Alarms: %s\n", strings.Join(s.Alarms, ", "))
	}
	return nil
}

func connText(c bool) string {
	if c {
		return "connected"
	}
	return "NOT CONNECTED"
}

func otherRole(r string) string {
	if r == "primary" {
		return "standby"
	}
	return "primary"
}

func ageText(ms int64) string {
	if ms < 0 {
		return "never"
	}
	if ms < 10_000 {
		return fmt.Sprintf("%d ms ago", ms)
	}
	return fmt.Sprintf("%d s ago", ms/1000)
}

func newClusterActionCmd(a *app, action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   action,
		Short: short,
		Args:  args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.ClusterAction(cmd.Context(), action); err != nil {
				return err
			}
			if !a.json {
				fmt.Fprintf(a.stdout, "Asked for %s; watch it with: nasctl cluster status\n", action)
			}
			return nil
		},
	}
}

func newClusterLeaveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "leave",
		Short: "Make this node stand-alone again (it stops taking part in failover)",
		Args:  args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.LeaveCluster(cmd.Context()); err != nil {
				return err
			}
			if !a.json {
				fmt.Fprintln(a.stdout, "Left the cluster; this node is stand-alone.")
			}
			return nil
		},
	}
}

// journalPos shows a journal position; a master whose new log does not
// describe its volume yet has none to catch up with.
func journalPos(p uint64) string {
	if p == heartbeat.JournalUnknown {
		return "describing"
	}
	return strconv.FormatUint(p, 10)
}
