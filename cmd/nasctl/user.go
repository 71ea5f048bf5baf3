package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"ftnas/appliance/api"
)

// maxPasswordLine bounds the password line read from stdin; the server
// enforces its own, smaller, limit.
const maxPasswordLine = 1024

func newUserCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Add, list and remove users; change passwords",
		Args:  args(0, ""),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newUserAddCmd(a), newUserListCmd(a), newUserRmCmd(a), newUserPasswdCmd(a))
	return cmd
}

// passwordArgs is args(1, "NAME") that, given extra arguments, says why
// they are refused without echoing them: they may be a password.
func passwordArgs(cmd *cobra.Command, argv []string) error {
	if len(argv) > 1 {
		return fmt.Errorf("%s: too many arguments; passwords are never taken from the command line, pipe one line to --password-stdin", cmdName(cmd))
	}
	return args(1, "NAME")(cmd, argv)
}

func requirePasswordStdin(cmd *cobra.Command, set bool) error {
	if !set {
		return fmt.Errorf("%s: a password is required: pass --password-stdin and write it as one line on standard input, e.g. printf '%%s\\n' \"$PW\" | %s NAME --password-stdin (it is never taken from the command line)",
			cmdName(cmd), cmd.CommandPath())
	}
	return nil
}

// readPassword reads one line from r: the password, without its trailing
// "\n" or "\r\n".
func readPassword(r io.Reader) (string, error) {
	br := bufio.NewReaderSize(r, maxPasswordLine+2)
	line, err := br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", fmt.Errorf("read password from standard input: line is longer than %d bytes", maxPasswordLine)
	case err != nil && !errors.Is(err, io.EOF):
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		if err != nil {
			return "", errors.New("read password from standard input: nothing there; write the password as one line")
		}
		return "", errors.New("read password from standard input: the line is empty")
	}
	if len(line) > maxPasswordLine {
		return "", fmt.Errorf("read password from standard input: line is longer than %d bytes", maxPasswordLine)
	}
	return string(line), nil
}

func newUserAddCmd(a *app) *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "add NAME --password-stdin",
		Short: "Add a user; the password is read as one line from standard input",
		Args:  passwordArgs,
		RunE: func(cmd *cobra.Command, argv []string) error {
			if err := requirePasswordStdin(cmd, fromStdin); err != nil {
				return err
			}
			pw, err := readPassword(a.stdin)
			if err != nil {
				return err
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			u, err := c.AddUser(cmd.Context(), api.AddUserRequest{Name: argv[0], Password: pw})
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, u)
			}
			_, err = fmt.Fprintf(a.stdout, "Added user %s (uid %d, gid %d).\n", u.Name, u.UID, u.GID)
			return err
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password as one line from standard input")
	return cmd
}

func newUserListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List users",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(a, cmd, (*api.Client).ListUsers, func(users []api.User) []api.User {
				if users == nil {
					users = []api.User{}
				}
				return users
			}, printUsers)
		},
	}
}

func printUsers(w io.Writer, users []api.User) error {
	if len(users) == 0 {
		_, err := fmt.Fprintln(w, "No users. Add one with: nasctl user add NAME --password-stdin")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tUID\tGID")
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", u.Name, u.UID, u.GID)
	}
	return tw.Flush()
}

func newUserRmCmd(a *app) *cobra.Command {
	return newRmCmd(a, "Remove a user", (*api.Client).RemoveUser, "Removed user %s.\n")
}

func newUserPasswdCmd(a *app) *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "passwd NAME --password-stdin",
		Short: "Change a user's password; the new one is read as one line from standard input",
		Args:  passwordArgs,
		RunE: func(cmd *cobra.Command, argv []string) error {
			if err := requirePasswordStdin(cmd, fromStdin); err != nil {
				return err
			}
			pw, err := readPassword(a.stdin)
			if err != nil {
				return err
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.SetPassword(cmd.Context(), argv[0], pw); err != nil {
				return err
			}
			if !a.json {
				fmt.Fprintf(a.stdout, "Changed the password of %s.\n", argv[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password as one line from standard input")
	return cmd
}
