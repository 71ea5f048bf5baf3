package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"ftnas/appliance/api"
)

// DefaultStateDir is nasd's state directory on a real box.
const DefaultStateDir = "/var/lib/ftnas"

// app holds what every command shares: the I/O streams, the environment,
// the clock, and the global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time

	socket   string
	stateDir string
	json     bool
}

// run runs nasctl with args and returns the exit code; errors are printed
// to stderr as "nasctl: <error>".
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, now: time.Now}
	root := newRootCmd(a)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "nasctl: %v\n", err)
		return 1
	}
	return 0
}

func newRootCmd(a *app) *cobra.Command {
	defSocket := a.getenv("FTNAS_SOCKET")
	if defSocket == "" {
		defSocket = api.SocketPath(DefaultStateDir)
	}
	root := &cobra.Command{
		Use:   "nasctl",
		Short: "Control an ftnas node",
		Long: "nasctl controls the nasd on this machine through its local API socket.\n" +
			"With --json, output is stable JSON for scripts.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&a.socket, "socket", defSocket, "nasd's API socket ($FTNAS_SOCKET overrides the default)")
	pf.StringVar(&a.stateDir, "state", "", "nasd's state directory; the socket is derived from it (instead of --socket)")
	pf.BoolVar(&a.json, "json", false, "print stable JSON instead of tables")
	root.AddCommand(newStatusCmd(a), newShareCmd(a), newUserCmd(a), newClusterCmd(a))
	root.AddCommand(newBondCmd(a), newRaidCmd(a))
	root.AddCommand(newUpdateCmd(a), newFirmwareCmd(a))
	root.AddCommand(newInstallCmd(a))
	return root
}

// client returns an API client for the socket chosen by the flags.
func (a *app) client(cmd *cobra.Command) (*api.Client, error) {
	f := cmd.Flags()
	sock := a.socket
	switch {
	case f.Changed("socket") && f.Changed("state"):
		return nil, errors.New("--socket and --state both given; use one")
	case f.Changed("state"):
		if a.stateDir == "" {
			return nil, errors.New("--state is empty")
		}
		sock = api.SocketPath(a.stateDir)
	}
	if sock == "" {
		return nil, errors.New("--socket is empty")
	}
	return api.NewClient(sock), nil
}

// show runs a read-only API call and prints its answer: with --json as
// stable JSON, after wire (if set) has fixed its shapes; else as text.
func show[T any](a *app, cmd *cobra.Command, get func(*api.Client, context.Context) (T, error), wire func(T) T, text func(io.Writer, T) error) error {
	c, err := a.client(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	v, err := get(c, cmd.Context())
	if err != nil {
		return err
	}
	if a.json {
		if wire != nil {
			v = wire(v)
		}
		return writeJSON(a.stdout, v)
	}
	return text(a.stdout, v)
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// args checks the number of positional arguments and names what is
// missing: usage is what goes after the command, e.g. "NAME".
func args(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			return fmt.Errorf("%s: missing %s (usage: %s)", cmdName(cmd), usage, cmd.UseLine())
		case len(args) > n:
			return fmt.Errorf("%s: too many arguments (usage: %s)", cmdName(cmd), cmd.UseLine())
		}
		return nil
	}
}

// cmdName is the command's path without the leading "nasctl", for error
// messages that main already prefixes with "nasctl: ".
func cmdName(cmd *cobra.Command) string {
	if cmd.HasParent() {
		return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
	}
	return cmd.Name()
}
