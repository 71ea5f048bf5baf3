package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ftnas/appliance/api"
)

func newBondCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bond",
		Short: "Bond NICs for network fault tolerance: add, rm, status, mode",
		Long: "The bond makes several NICs act as one interface (bond0) carrying the first NIC's\n" +
			"addresses, MAC and MTU. A NIC that loses its carrier (or, with a probe target, stops\n" +
			"getting ARP answers) is taken out of rotation and put back once healthy again.\n" +
			"Removing the last NIC gives the addresses back to it as a plain interface.",
		Args: args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newBondAddCmd(a), newBondRmCmd(a), newBondStatusCmd(a), newBondModeCmd(a))
	return cmd
}

func newBondAddCmd(a *app) *cobra.Command {
	var req api.BondAddRequest
	cmd := &cobra.Command{
		Use:   "add NIC [--probe-target IP]",
		Short: "Add a NIC to the bond (the first one lends the bond its addresses)",
		Long: "Add NIC to the bond. It must exist, be up and have carrier; with a probe target it must\n" +
			"also get an ARP answer from that address within a second. The first NIC added is the\n" +
			"primary: the bond takes its IPv4 addresses, MAC and MTU; later NICs must carry no address.\n" +
			"--probe-target (the gateway, say) turns on ARP probing through every member; it can be\n" +
			"set while the bond is empty only.",
		Args: args(1, "NIC"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			req.NIC = argv[0]
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := c.AddBondMember(cmd.Context(), req)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, api.NormBondStatus(st))
			}
			fmt.Fprintf(a.stdout, "Added %s to %s.\n\n", req.NIC, st.Interface)
			return printBond(a.stdout, st, a.now())
		},
	}
	cmd.Flags().StringVar(&req.ProbeTarget, "probe-target", "", "IPv4 address to ARP-probe through every member (default: carrier only)")
	return cmd
}

func newBondRmCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NIC",
		Aliases: []string{"remove"},
		Short:   "Remove a NIC from the bond (the last one gets the addresses back)",
		Args:    args(1, "NIC"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			nic := argv[0]
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.RemoveBondMember(cmd.Context(), nic); err != nil {
				return err
			}
			if a.json {
				return nil
			}
			st, err := c.BondStatus(cmd.Context())
			switch {
			case err != nil:
				fmt.Fprintf(a.stdout, "Removed %s from the bond.\n", nic)
			case len(st.Members) == 0:
				fmt.Fprintf(a.stdout, "Removed %s; the bond is dissolved and %s is a plain interface again, with the bond's addresses.\n", nic, nic)
			default:
				fmt.Fprintf(a.stdout, "Removed %s from %s; %s left.\n", nic, st.Interface, plural(len(st.Members), "member"))
			}
			return nil
		},
	}
}

func newBondStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the bond: mode, addresses, and every member's state",
		Args:  args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(a, cmd, (*api.Client).BondStatus, api.NormBondStatus,
				func(w io.Writer, st api.BondStatus) error { return printBond(w, st, a.now()) })
		},
	}
}

func newBondModeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:       "mode load-balance|failover",
		Short:     "Spread traffic over every healthy member (load-balance) or use one (failover)",
		Args:      args(1, "load-balance|failover"),
		ValidArgs: []string{"load-balance", "failover"},
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := c.SetBondMode(cmd.Context(), argv[0])
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, api.NormBondStatus(st))
			}
			active := "none"
			if len(st.Active) > 0 {
				active = strings.Join(st.Active, ", ")
			}
			if len(st.Members) == 0 {
				active = "no members yet"
			}
			fmt.Fprintf(a.stdout, "Bond mode is now %s; carrying traffic: %s.\n", st.Mode, active)
			return nil
		},
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func printBond(w io.Writer, st api.BondStatus, now time.Time) error {
	if len(st.Members) == 0 {
		_, err := fmt.Fprintf(w, "No bond (mode %s). Add a NIC with: nasctl bond add NIC [--probe-target IP]\n", st.Mode)
		return err
	}
	tw := newTable(w)
	state := "formed"
	if !st.Bonded {
		state = "not formed: no member could join yet"
	}
	fmt.Fprintf(tw, "Bond:\t%s, %s, %s datapath, %s\n", st.Interface, st.Mode, st.Datapath, state)
	if st.Bonded {
		addrs := "none"
		if len(st.Addresses) > 0 {
			addrs = strings.Join(st.Addresses, ", ")
		}
		fmt.Fprintf(tw, "Addresses:\t%s  (MAC %s, MTU %d)\n", addrs, st.MAC, st.MTU)
	}
	detect := "carrier only (no probe target)"
	if st.ProbeTarget != "" {
		detect = fmt.Sprintf("carrier and ARP probes to %s every %dms", st.ProbeTarget, st.IntervalMS)
	}
	fmt.Fprintf(tw, "Detection:\t%s; rejoin after %dms healthy\n", detect, st.UpDelayMS)
	fmt.Fprintf(tw, "Failovers:\t%d\n", st.Failovers)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "NIC\tSTATE\tROLE\tCARRIER\tFAILURES\tSINCE\tREASON")
	for _, m := range st.Members {
		var role []string
		if m.Primary {
			role = append(role, "primary")
		}
		if m.Active {
			role = append(role, "active")
		}
		if len(role) == 0 {
			role = append(role, "-")
		}
		carrier := "no"
		if m.Carrier {
			carrier = "yes"
		}
		since := "-"
		if !m.Since.IsZero() {
			since = fmtDuration(now.Sub(m.Since)) + " ago"
		}
		state := m.State
		if state != "up" {
			state = strings.ToUpper(state)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", m.Name, state, strings.Join(role, ","), carrier, m.Failures, since, m.Reason)
	}
	return tw.Flush()
}
