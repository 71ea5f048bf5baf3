package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"ftnas/heartbeat"
	"ftnas/scripts/internal/benchcli"
)

const usage = `usage: failoverbench OP [flags]

ops:
  read   --server IP [--export /data] [--file whoami]   one NFSv3 read; prints the content
  probe  --server IP --want NODE --fault-file F --ready-file R
                                                        time the failover (JSON)
  watch  --vip IP MEMBER=NETNS...                       VIP add/del events per member
  timers                                                ftnas's heartbeat timing (shell)
  report --trials F --events F                          the table and the JSON line

Run "failoverbench OP -h" for the flags of OP.
`

func main() { benchcli.Main("failoverbench", run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	op, fs, args, err := benchcli.Op("failoverbench", args, usage, stderr)
	if err != nil {
		return err
	}
	switch op {
	case "read":
		var o nfsTarget
		o.flags(fs)
		timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
		showMAC := fs.Bool("show-mac", false, "also print the MAC of the server's neighbour entry: who answered")
		if err := benchcli.Parse(fs, args); err != nil {
			return err
		}
		if err := o.check(); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		a, err := boundedAnswer(ctx, *timeout, o.reader())
		if err != nil {
			return fmt.Errorf("read %s:%s/%s: %w", o.Server, o.Export, o.File, err)
		}
		if *showMAC {
			_, err = fmt.Fprintln(stdout, a.content, a.mac)
		} else {
			_, err = fmt.Fprintln(stdout, a.content)
		}
		return err
	case "probe":
		var o probeOptions
		o.flags(fs)
		if err := benchcli.Parse(fs, args); err != nil {
			return err
		}
		if err := o.check(); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		res, err := probe(ctx, o, o.Target.reader())
		if err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		return benchcli.WriteJSON(stdout, res)
	case "watch":
		vip := fs.String("vip", "", "the virtual IP to watch (required)")
		// The flags come first; the flag package stops at MEMBER=NETNS.
		if err := fs.Parse(args); err != nil {
			return err
		}
		members, err := parseMembers(fs.Args())
		if err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		return watch(ctx, *vip, members, stdout)
	case "timers":
		if err := benchcli.Parse(fs, args); err != nil {
			return err
		}
		t := heartbeat.DefaultTiming()
		ms := func(d time.Duration) int64 { return d.Milliseconds() }
		_, err := fmt.Fprintf(stdout, "interval_ms=%d\njitter_ms=%d\nstall_ms=%d\nmisses=%d\ndead_ms=%d\nlease_ms=%d\nwitness_timeout_ms=%d\n",
			ms(t.Interval), ms(t.Jitter), ms(t.Stall), t.Misses, ms(t.Dead), ms(t.Lease), ms(t.WitnessTimeout))
		return err
	case "report":
		var o reportOptions
		o.flags(fs)
		if err := benchcli.Parse(fs, args); err != nil {
			return err
		}
		return report(o, stdout)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown op %q", op)
	}
}

// parse parses flags and refuses positional arguments.
