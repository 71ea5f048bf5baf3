package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"ftnas/appliance/api"
)

func newShareCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "share",
		Short: "Add, list and remove shares",
		Args:  args(0, ""),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newShareAddCmd(a), newShareListCmd(a), newShareRmCmd(a))
	return cmd
}

func newShareAddCmd(a *app) *cobra.Command {
	var req api.AddShareRequest
	cmd := &cobra.Command{
		Use:   "add NAME [--path SUBDIR] [--nfs] [--smb] [--read-only] [--client CIDR]...",
		Short: "Share a folder of the volume over NFS and/or SMB",
		Long: "Share the folder SUBDIR of the volume (made if missing) as NAME: over NFS as /NAME\n" +
			"and over SMB as \\\\HOST\\NAME. Without --nfs or --smb, both. --path defaults to NAME.\n" +
			"--client limits NFS access to addresses or CIDR prefixes (repeat it, or separate with commas).",
		Args: args(1, "NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			req.Name = argv[0]
			if !cmd.Flags().Changed("path") {
				req.Path = req.Name
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			sh, err := c.AddShare(cmd.Context(), req)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, wireShare(sh))
			}
			return printShareAdded(a.stdout, sh)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Path, "path", "", "folder to share, relative to the volume (default NAME)")
	f.BoolVar(&req.NFS, "nfs", false, "export over NFS")
	f.BoolVar(&req.SMB, "smb", false, "share over SMB")
	f.BoolVar(&req.ReadOnly, "read-only", false, "clients may read but not write")
	f.BoolVar(&req.SyncReplication, "sync", false, "in a pair, answer NFS commits only once the standby has the data (RPO 0)")
	f.StringSliceVar(&req.Clients, "client", nil, "NFS client allowed (IP or CIDR); default all")
	return cmd
}

func printShareAdded(w io.Writer, sh api.Share) error {
	fmt.Fprintf(w, "Added share %s (folder %s, %s).\n", sh.Name, sh.Path, access(sh))
	if sh.NFS {
		fmt.Fprintf(w, "  NFS export: %s  clients: %s\n", sh.Export, clients(sh))
	}
	if sh.SMB {
		fmt.Fprintf(w, "  SMB share:  %s\n", sh.UNC)
	}
	return nil
}

func newShareListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List shares",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(a, cmd, (*api.Client).ListShares, func(shares []api.Share) []api.Share {
				out := make([]api.Share, 0, len(shares))
				for _, s := range shares {
					out = append(out, wireShare(s))
				}
				return out
			}, printShares)
		},
	}
}

func printShares(w io.Writer, shares []api.Share) error {
	if len(shares) == 0 {
		_, err := fmt.Fprintln(w, "No shares. Add one with: nasctl share add NAME --path SUBDIR")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tPATH\tPROTOCOLS\tACCESS\tNFS CLIENTS\tFSID")
	for _, s := range shares {
		var protos []string
		if s.NFS {
			protos = append(protos, "nfs")
		}
		if s.SMB {
			protos = append(protos, "smb")
		}
		cl := "-"
		if s.NFS {
			cl = clients(s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", s.Name, s.Path, strings.Join(protos, ","), access(s), cl, s.FSID)
	}
	return tw.Flush()
}

func newShareRmCmd(a *app) *cobra.Command {
	return newRmCmd(a, "Stop sharing a folder (its data is kept)", (*api.Client).RemoveShare,
		"Removed share %s; its folder and data are kept.\n")
}

// newRmCmd is an "rm NAME" command: remove names the thing through the
// API, done is the line printed after (with the name).
func newRmCmd(a *app, short string, remove func(*api.Client, context.Context, string) error, done string) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"remove"},
		Short:   short,
		Args:    args(1, "NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := remove(c, cmd.Context(), argv[0]); err != nil {
				return err
			}
			if !a.json {
				fmt.Fprintf(a.stdout, done, argv[0])
			}
			return nil
		},
	}
}

// wireShare fixes the JSON shape: never a null client list.
func wireShare(s api.Share) api.Share {
	if s.Clients == nil {
		s.Clients = []string{}
	}
	return s
}

func access(s api.Share) string {
	if s.ReadOnly {
		return "read-only"
	}
	return "read-write"
}

func clients(s api.Share) string {
	if len(s.Clients) == 0 {
		return "all"
	}
	return strings.Join(s.Clients, ",")
}
