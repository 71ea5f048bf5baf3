package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

const usage = `usage: nfsbench OP --server IP [flags]

ops:
  probe                              portmap, MNT, NULL and FSINFO; print sizes
  write  --file NAME --size 1GiB     WRITE UNSTABLE + COMMIT, one connection
  read   --file NAME                 READ the file back and check every byte
  create --count 10000 --conns 4     CREATE GUARDED empty files in a fresh dir

Run "nfsbench OP -h" for the flags of OP.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "nfsbench: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return errors.New("missing OP")
		}
		return flag.ErrHelp
	}
	op := args[0]
	fs := flag.NewFlagSet("nfsbench "+op, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var uid, gid uint
	var chunk string
	fs.StringVar(&o.Server, "server", "", "server IPv4/IPv6 address (portmapper on port 111)")
	fs.StringVar(&o.Export, "export", "/bench", "export path to mount")
	fs.UintVar(&uid, "uid", 0, "AUTH_SYS uid")
	fs.UintVar(&gid, "gid", 0, "AUTH_SYS gid")
	fs.IntVar(&o.Depth, "depth", 16, "requests in flight per connection")
	fs.StringVar(&chunk, "chunk", "1MiB", "READ/WRITE size, capped by the server's rtmax/wtmax")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "give up (exit 2) after this long")
	var file, size, dir string
	var count, conns int
	verify := true
	switch op {
	case "probe":
	case "write":
		fs.StringVar(&file, "file", "nfsbench.dat", "file name in the export root")
		fs.StringVar(&size, "size", "1GiB", "bytes to write")
	case "read":
		fs.StringVar(&file, "file", "nfsbench.dat", "file name in the export root (written by write)")
		fs.BoolVar(&verify, "verify", true, "check every byte against the pattern write stored")
	case "create":
		fs.IntVar(&count, "count", 10000, "files to create")
		fs.IntVar(&conns, "conns", 4, "connections")
		fs.StringVar(&dir, "dir", "", "directory to create the files in (default creates-<time>)")
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown op %q", op)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%s: unexpected arguments %q", op, fs.Args())
	}
	if o.Server == "" {
		return fmt.Errorf("%s: --server is required", op)
	}
	if uid > 1<<32-1 || gid > 1<<32-1 {
		return fmt.Errorf("%s: --uid/--gid out of range", op)
	}
	o.UID, o.GID = uint32(uid), uint32(gid)
	if o.Depth < 1 || o.Depth > 1024 {
		return fmt.Errorf("%s: --depth %d: want 1..1024", op, o.Depth)
	}
	var err error
	if o.Chunk, err = parseSize(chunk); err != nil {
		return fmt.Errorf("%s: --chunk: %w", op, err)
	}
	if o.Chunk < 512 || o.Chunk > 16<<20 {
		return fmt.Errorf("%s: --chunk %d: want 512 bytes .. 16 MiB", op, o.Chunk)
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("%s: --timeout must be positive", op)
	}
	// A hung server must not hang the benchmark: give up loudly.
	watchdog := time.AfterFunc(o.Timeout, func() {
		fmt.Fprintf(stderr, "nfsbench: %s against %s: no result after %v, giving up\n", op, o.Server, o.Timeout)
		os.Exit(2)
	})
	defer watchdog.Stop()

	s, err := openSession(o)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer s.close()

	var result any
	switch op {
	case "probe":
		result = map[string]any{
			"op": "probe", "server": o.Server, "export": o.Export,
			"mount_port": s.mountPort, "nfs_port": s.nfsPort,
			"rtmax": s.info.RTMax, "rtpref": s.info.RTPref, "wtmax": s.info.WTMax, "wtpref": s.info.WTPref,
		}
	case "write":
		n, perr := parseSize(size)
		if perr != nil {
			return fmt.Errorf("write: --size: %w", perr)
		}
		if n == 0 {
			return errors.New("write: --size must be positive")
		}
		result, err = runWrite(s, file, n)
	case "read":
		result, err = runRead(s, file, verify)
	case "create":
		if count < 1 || conns < 1 || conns > 256 {
			return fmt.Errorf("create: --count %d --conns %d: want count >= 1, conns 1..256", count, conns)
		}
		if dir == "" {
			dir = fmt.Sprintf("creates-%d", time.Now().UnixNano())
		}
		result, err = runCreate(s, dir, count, conns)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	out, err := json.Marshal(result)
	if err != nil {
		return fmt.Errorf("%s: encode result: %w", op, err)
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}
