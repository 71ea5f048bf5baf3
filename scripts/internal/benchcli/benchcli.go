package benchcli

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

	nfsutil "github.com/willscott/go-nfs-client/nfs/util"
)

// Run is a command's body: args without the program name.
type Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Main runs run with os.Args and exits: 0 on success or -h, 1 with
// "name: error" on stderr otherwise. SIGTERM and SIGINT cancel ctx.
func Main(name string, run Run) {
	QuietNFS()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(ExitCode(name, err, os.Stderr))
}

// ExitCode reports err on stderr and returns the exit code for it.
func ExitCode(name string, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 1
}

// QuietNFS silences go-nfs-client's package logger, which reports every
// failed dial.
func QuietNFS() { nfsutil.DefaultLogger = quietLogger{} }

type quietLogger struct{}

func (quietLogger) SetDebug(bool)         {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Infof(string, ...any)  {}

// Parse parses args into fs and refuses arguments left over.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	return nil
}

// WriteJSON writes v as one JSON line.
func WriteJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// Op splits args into an operation and its flag set: with no OP or a
// help flag it prints usage and returns an error ("missing OP", or
// flag.ErrHelp).
func Op(name string, args []string, usage string, stderr io.Writer) (op string, fs *flag.FlagSet, rest []string, err error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return "", nil, nil, errors.New("missing OP")
		}
		return "", nil, nil, flag.ErrHelp
	}
	fs = flag.NewFlagSet(name+" "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	return args[0], fs, args[1:], nil
}
