package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"ftnas/scripts/internal/benchcli"
)

const usage = `usage: replbench OP [flags]

ops:
  workload --netns NS --server IP [--export /data] [--files N --write-mib M --renames R --deletes D]
  watch    --src DIR --dst DIR --stop-file F [--done-file F] [--socket NAME=PATH]... [--trace F [--link-pid PID --link-if IF]]
  converge --a DIR --b DIR --since UNIX_NS [--socket PATH]
  phases   --trace F --workload F [--json]
  treehash DIR
`

func main() { benchcli.Main("replbench", run) }

// sockets is a repeatable NAME=PATH flag.
type sockets map[string]string

func (s sockets) String() string { return fmt.Sprint(map[string]string(s)) }
func (s sockets) Set(v string) error {
	for i := range len(v) {
		if v[i] == '=' && i > 0 && i < len(v)-1 {
			s[v[:i]] = v[i+1:]
			return nil
		}
	}
	return fmt.Errorf("--socket %q: want NAME=PATH", v)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	op, fs, args, err := benchcli.Op("replbench", args, usage, stderr)
	if err != nil {
		return err
	}
	switch op {
	case "workload":
		var o workloadOptions
		fs.StringVar(&o.NetNS, "netns", "", "network namespace to dial from (empty: this one)")
		fs.StringVar(&o.Server, "server", "", "NFS server address (required)")
		fs.StringVar(&o.Export, "export", "/data", "export to mount")
		fs.StringVar(&o.Dir, "dir", "replbench", "folder in the export the workload makes and works in")
		fs.IntVar(&o.Files, "files", 2000, "small files to create")
		fs.IntVar(&o.WriteMiB, "write-mib", 256, "MiB of mixed writes")
		fs.IntVar(&o.Renames, "renames", 200, "renames")
		fs.IntVar(&o.Deletes, "deletes", 200, "deletes")
		fs.Float64Var(&o.WriteRate, "write-rate", 0, "pace the mixed writes to this many MiB/s (0: as fast as the server answers)")
		fs.Uint64Var(&o.Seed, "seed", 1, "seed of the content and the choices")
		uid := fs.Uint("uid", 1000, "AUTH_SYS uid (root is squashed)")
		gid := fs.Uint("gid", 1000, "AUTH_SYS gid")
		if err := benchcli.Parse(fs, args); err != nil {
			return err
		}
		o.UID, o.GID = uint32(*uid), uint32(*gid)
		if err := o.check(); err != nil {
			return fmt.Errorf("workload: %w", err)
		}
		res, err := workload(ctx, o, stderr)
		if err != nil {
			return fmt.Errorf("workload: %w", err)
		}
		return benchcli.WriteJSON(stdout, res)
	case "watch":
		var o watchOptions
		o.Sockets = sockets{}
		fs.StringVar(&o.Src, "src", "", "folder markers are written into (required)")
		fs.StringVar(&o.Dst, "dst", "", "folder their copies appear in (required)")
		fs.StringVar(&o.StopFile, "stop-file", "", "stop writing markers and sampling once this file exists (required)")
		fs.StringVar(&o.DoneFile, "done-file", "", "after the stop, time unseen markers until they arrive or this file exists (empty: stop at once)")
		fs.Var(o.Sockets, "socket", "NAME=PATH of a nasd API socket whose replication.lag_ms to sample (repeatable)")
		fs.DurationVar(&o.Every, "every", 100*time.Millisecond, "marker and sampling period")
		trace := fs.String("trace", "", "write a JSON line per status sample, marker and link sample to this file")
		fs.IntVar(&o.LinkPID, "link-pid", 0, "sample --link-if's bytes in this process's network namespace into the trace")
		fs.StringVar(&o.LinkIf, "link-if", "", "interface for --link-pid")
		fs.StringVar(&o.CPU, "cpu", "/proc/stat", "sample the machine's CPU time from this file into the trace (empty: do not)")
		if err := benchcli.Parse(fs, args); err != nil {
			return err
		}
		if (o.LinkPID > 0) != (o.LinkIf != "") {
			return errors.New("watch: --link-pid and --link-if go together")
		}
		if *trace != "" {
			f, err := os.Create(*trace)
			if err != nil {
				return fmt.Errorf("watch: %w", err)
			}
			defer f.Close()
			o.Trace = f
		}
		if o.Src == "" || o.Dst == "" || o.StopFile == "" || o.Every <= 0 {
			return errors.New("watch: --src, --dst, --stop-file and a positive --every are required")
		}
		res, err := watch(ctx, o)
		if err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		return benchcli.WriteJSON(stdout, res)
	case "converge":
		var o convergeOptions
		fs.StringVar(&o.A, "a", "", "the master's tree (required)")
		fs.StringVar(&o.B, "b", "", "the standby's tree (required)")
		fs.StringVar(&o.Socket, "socket", "", "the master's nasd API socket: also wait for acked_seq == last_seq")
		fs.Int64Var(&o.Since, "since", 0, "the workload's end, unix ns (required)")
		fs.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "give up after this long")
		fs.DurationVar(&o.Every, "every", 100*time.Millisecond, "poll period")
		if err := benchcli.Parse(fs, args); err != nil {
			return err
		}
		if o.A == "" || o.B == "" || o.Since <= 0 {
			return errors.New("converge: --a, --b and --since are required")
		}
		res, err := converge(ctx, o)
		if err != nil {
			return fmt.Errorf("converge: %w", err)
		}
		return benchcli.WriteJSON(stdout, res)
	case "phases":
		tracePath := fs.String("trace", "", "a watch --trace file (required)")
		workPath := fs.String("workload", "", "the workload's JSON result (required)")
		asJSON := fs.Bool("json", false, "print JSON instead of a table")
		if err := benchcli.Parse(fs, args); err != nil {
			return err
		}
		if *tracePath == "" || *workPath == "" {
			return errors.New("phases: --trace and --workload are required")
		}
		wb, err := os.ReadFile(*workPath)
		if err != nil {
			return fmt.Errorf("phases: %w", err)
		}
		var w workloadResult
		if err := json.Unmarshal(wb, &w); err != nil {
			return fmt.Errorf("phases: %s: %w", *workPath, err)
		}
		f, err := os.Open(*tracePath)
		if err != nil {
			return fmt.Errorf("phases: %w", err)
		}
		defer f.Close()
		rows, err := phases(f, w)
		if err != nil {
			return fmt.Errorf("phases: %s: %w", *tracePath, err)
		}
		if *asJSON {
			return benchcli.WriteJSON(stdout, rows)
		}
		return printPhases(stdout, rows)
	case "treehash":
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("treehash: want one DIR")
		}
		h := newHasher()
		sum, n, err := h.tree(fs.Arg(0))
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s %d\n", sum, n)
		return err
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown op %q", op)
	}
}
