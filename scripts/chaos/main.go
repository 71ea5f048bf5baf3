package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"ftnas/scripts/internal/benchcli"
)

const usage = `usage: chaos OP [flags]

ops:
  schedule --seed N [--duration D]        the fault schedule of a seed (JSON lines)
  client --server VIP --share NAME:/EXPORT:sync|async --history F
                                          the workload (run it in the client namespace)
  run --lab NAME [--trials N] [--seed N]  the trials (root; the pair formed in the lab)
  check DIR                               the checker again on a kept trial folder
  timeline DIR                            a kept trial's faults, node states and slow ops in time order

Run "chaos OP -h" for the flags of OP.
`

func main() { benchcli.Main("chaos", run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	op, fs, args, err := benchcli.Op("chaos", args, usage, stderr)
	if err != nil {
		return err
	}
	switch op {
	case "schedule":
		seed := fs.Uint64("seed", 1, "seed")
		d := fs.Duration("duration", 25*time.Second, "trial duration")
		if err := benchcli.Parse(fs, args); err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		for _, f := range Generate(*seed, *d) {
			if err := enc.Encode(f); err != nil {
				return err
			}
		}
		return nil
	case "client":
		var o clientOptions
		o.flags(fs)
		if err := benchcli.Parse(fs, args); err != nil {
			return err
		}
		if err := o.check(); err != nil {
			return fmt.Errorf("client: %w", err)
		}
		return runClient(ctx, o)
	case "run":
		var o runOptions
		o.flags(fs)
		if err := benchcli.Parse(fs, args); err != nil {
			return err
		}
		return runTrials(ctx, o, stdout)
	case "check":
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("check: want one trial folder")
		}
		rep, err := recheck(fs.Arg(0))
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(rep, "", " ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, string(b))
		return err
	case "timeline":
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("timeline: want one trial folder")
		}
		in, err := loadTrial(fs.Arg(0))
		if err != nil {
			return err
		}
		var events []faultEvent
		if err := readJSONLines(filepath.Join(fs.Arg(0), "faults.jsonl"), &events); err != nil {
			return err
		}
		var t0 int64
		for _, o := range in.Ops {
			if t0 == 0 || o.Invoke < t0 {
				t0 = o.Invoke
			}
		}
		return Timeline(stdout, t0, in.Samples, events, in.Ops)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown op %q", op)
	}
}

// parse parses flags and refuses positional arguments.

// recheck runs the checker on a kept trial folder.
func recheck(dir string) (Report, error) {
	in, err := loadTrial(dir)
	if err != nil {
		return Report{}, err
	}
	return Check(in), nil
}

// loadTrial reads what a kept trial folder holds back into the checker's
// input.
func loadTrial(dir string) (CheckInput, error) {
	var in CheckInput
	hf, err := os.Open(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		return in, fmt.Errorf("check: %w", err)
	}
	defer hf.Close()
	if in.Ops, err = ParseHistory(hf); err != nil {
		return in, fmt.Errorf("check: %w", err)
	}
	if err := readJSON(filepath.Join(dir, "trees.json"), &in.Final); err != nil {
		return in, err
	}
	var final struct {
		Master  string `json:"master"`
		Standby string `json:"standby"`
		End     int64  `json:"end"`
	}
	if err := readJSON(filepath.Join(dir, "final.json"), &final); err != nil {
		return in, err
	}
	in.Master, in.Standby, in.End = final.Master, final.Standby, final.End
	if err := readJSONLines(filepath.Join(dir, "samples.jsonl"), &in.Samples); err != nil {
		return in, err
	}
	return in, nil
}

// readJSONLines appends every JSON value of a file to *out.
func readJSONLines[T any](path string, out *[]T) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	for {
		var v T
		if err := dec.Decode(&v); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("check: %s: %w", path, err)
		}
		*out = append(*out, v)
	}
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("check: %s: %w", path, err)
	}
	return nil
}
