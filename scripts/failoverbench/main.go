package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	nfsutil "github.com/willscott/go-nfs-client/nfs/util"

	"ftnas/heartbeat"
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

func main() {
	// go-nfs-client logs every failed dial through its own logger; a
	// failover probe fails on purpose until the standby answers.
	nfsutil.DefaultLogger = quietLogger{}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "failoverbench: %v\n", err)
		os.Exit(1)
	}
}

type quietLogger struct{}

func (quietLogger) SetDebug(bool)         {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Infof(string, ...any)  {}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return errors.New("missing OP")
		}
		return flag.ErrHelp
	}
	op, args := args[0], args[1:]
	fs := flag.NewFlagSet("failoverbench "+op, flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch op {
	case "read":
		var o nfsTarget
		o.flags(fs)
		timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
		showMAC := fs.Bool("show-mac", false, "also print the MAC of the server's neighbour entry: who answered")
		if err := parse(fs, args); err != nil {
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
		if err := parse(fs, args); err != nil {
			return err
		}
		if err := o.check(); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		res, err := probe(ctx, o, o.Target.reader())
		if err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		return writeJSON(stdout, res)
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
		if err := parse(fs, args); err != nil {
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
		if err := parse(fs, args); err != nil {
			return err
		}
		return report(o, stdout)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown op %q", op)
	}
}

// parse parses flags and refuses positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
