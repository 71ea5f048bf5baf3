package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ftnas/appliance/api"
)

func newRaidCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "raid",
		Short: "Software RAID (md) arrays: status, scrub, replace, adopt, esp-sync",
		Long: "The disks' partitions are mirrored (or striped with parity) by Linux md arrays.\n" +
			"status shows every array and its members, scrub checks that every copy still\n" +
			"agrees, replace moves a member's data onto a new partition, adopt turns a\n" +
			"blank disk into a member disk like the others, and esp-sync makes every disk's\n" +
			"boot partition (ESP) a copy of one disk's.",
		Args: args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newRaidStatusCmd(a), newRaidScrubCmd(a), newRaidReplaceCmd(a), newRaidAdoptCmd(a), newRaidESPSyncCmd(a))
	return cmd
}

func newRaidStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show every md array: level, state, members, sync progress",
		Args:  args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(a, cmd, (*api.Client).RaidStatus, api.NormRaidStatus, printRaid)
		},
	}
}

func newRaidScrubCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "scrub ARRAY",
		Short: "Start a check that every copy of the array's data agrees",
		Long: "Start a check of ARRAY (md0, say): md reads every member and counts the sectors\n" +
			"whose copies differ (MISMATCHES in nasctl raid status) without changing any. The\n" +
			"array stays in service; the check runs at md's background speed.",
		Args: args(1, "ARRAY"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			arr, err := c.ScrubRaid(cmd.Context(), argv[0])
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, api.NormRaidArray(arr))
			}
			fmt.Fprintf(a.stdout, "Started a check of %s (%s, %s). Follow it with: nasctl raid status\n",
				arr.Name, arr.Level, plural(len(arr.Members), "member"))
			return nil
		},
	}
}

func newRaidReplaceCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "replace ARRAY OLD NEW",
		Short: "Move member OLD's data onto the unused partition NEW",
		Long: "Replace member OLD of ARRAY with NEW (kernel names like sdb2; /dev/ is optional).\n" +
			"A working member is copied to NEW while it stays in service, then marked faulty; a\n" +
			"faulty member is removed and NEW rebuilt from the others. NEW must exist and belong\n" +
			"to no array. Follow the rebuild with: nasctl raid status",
		Args: args(3, "ARRAY OLD NEW"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			arr, err := c.ReplaceRaidMember(cmd.Context(), argv[0], api.RaidReplaceRequest{Old: argv[1], New: argv[2]})
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, api.NormRaidArray(arr))
			}
			fmt.Fprintf(a.stdout, "Replacing %s in %s with %s; md is rebuilding. Follow it with: nasctl raid status\n",
				strings.TrimPrefix(argv[1], "/dev/"), arr.Name, strings.TrimPrefix(argv[2], "/dev/"))
			return nil
		},
	}
}

func newRaidAdoptCmd(a *app) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "adopt DISK [--from DISK]",
		Short: "Partition a blank disk like the others and add it to every array",
		Long: "Adopt the blank disk DISK (sdc; /dev/ is optional), a replacement for a failed one:\n" +
			"it gets the partition table of the member disk --from (by default the disk with\n" +
			"the most partitions in sync), fresh GUIDs, a byte-for-byte copy of its ESP, and each\n" +
			"RAID partition is added to the array its counterpart belongs to; md rebuilds them\n" +
			"online. A disk with partitions, a partition table, an md superblock or anything\n" +
			"holding it is refused untouched, as is one smaller than the source. Follow the\n" +
			"rebuild with: nasctl raid status",
		Args: args(1, "DISK"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.AdoptRaidDisk(cmd.Context(), api.RaidAdoptRequest{Disk: argv[0], From: from})
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, api.NormRaidAdoptResult(res))
			}
			fmt.Fprintf(a.stdout, "Adopted %s: partitioned like %s", res.Disk, res.From)
			if res.ESPSHA256 != "" {
				fmt.Fprintf(a.stdout, ", ESP copied (sha256 %.12s)", res.ESPSHA256)
			}
			fmt.Fprintln(a.stdout, ".")
			for _, j := range res.Added {
				fmt.Fprintf(a.stdout, "  %s added to %s\n", j.Partition, j.Array)
			}
			fmt.Fprintln(a.stdout, "md is rebuilding. Follow it with: nasctl raid status")
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "member disk to copy the partition table and ESP from (default: the healthiest)")
	return cmd
}

func newRaidESPSyncCmd(a *app) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "esp-sync [--from DISK]",
		Short: "Make every member disk's ESP a copy of one disk's",
		Long: "Compare every member disk's ESP (the boot partition, not in any array) with the ESP\n" +
			"of --from (by default the disk with the most partitions in sync) and rewrite those\n" +
			"that differ, checking each copy. Run after that disk's ESP was updated; with equal\n" +
			"ESPs nothing is written. A mounted ESP is not overwritten.",
		Args: args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.SyncRaidESP(cmd.Context(), api.RaidESPSyncRequest{From: from})
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, api.NormRaidESPSyncResult(res))
			}
			var copied, same []string
			for _, d := range res.Disks {
				switch {
				case d.Disk == res.From:
				case d.Copied:
					copied = append(copied, d.Disk)
				default:
					same = append(same, d.Disk)
				}
			}
			sum := ""
			if len(res.Disks) > 0 {
				sum = fmt.Sprintf(" (sha256 %.12s)", res.Disks[0].After)
			}
			fmt.Fprintf(a.stdout, "ESP of %s%s:\n", res.From, sum)
			if len(copied) > 0 {
				fmt.Fprintf(a.stdout, "  copied to %s\n", strings.Join(copied, ", "))
			}
			if len(same) > 0 {
				fmt.Fprintf(a.stdout, "  already equal on %s\n", strings.Join(same, ", "))
			}
			if len(copied)+len(same) == 0 {
				fmt.Fprintln(a.stdout, "  no other member disk")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "disk whose ESP the others copy (default: the healthiest)")
	return cmd
}

// raidSync is the SYNC column: the action and its progress.
func raidSync(a api.RaidArray) string {
	switch {
	case a.SyncAction == "":
		return "-"
	case a.SyncAction == "idle":
		return "idle"
	case a.SyncDelayed:
		return a.SyncAction + " (delayed)"
	}
	return fmt.Sprintf("%s %.1f%%", a.SyncAction, a.SyncProgress)
}

func printRaid(w io.Writer, st api.RaidStatus) error {
	if len(st.Arrays) == 0 {
		_, err := fmt.Fprintln(w, "No md RAID arrays.")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "ARRAY\tLEVEL\tSTATE\tMEMBERS\tSYNC\tETA\tMISMATCHES")
	var notes []string
	for _, a := range st.Arrays {
		level := a.Level
		if level == "" {
			level = "-"
		}
		state := a.State
		if a.Degraded > 0 {
			state += ", DEGRADED"
		}
		eta := "-"
		if a.ETASeconds >= 0 {
			eta = fmtDuration(time.Duration(a.ETASeconds) * time.Second)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%d\n", a.Name, level, state, a.MembersUp(), a.RaidDisks, raidSync(a), eta, a.MismatchCount)
		for _, m := range a.Members {
			if note := raidMemberNote(a, m); note != "" {
				notes = append(notes, note)
			}
		}
		if !a.LastCheck.IsZero() {
			note := fmt.Sprintf("%s: last checked %s", a.Name, a.LastCheck.UTC().Format("2006-01-02 15:04 UTC"))
			if !a.NextCheck.IsZero() {
				note += ", next check " + a.NextCheck.UTC().Format("2006-01-02 15:04 UTC")
			}
			notes = append(notes, note)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	return nil
}

// raidMemberNote explains a member that is not simply in sync; "" for
// one that is.
func raidMemberNote(a api.RaidArray, m api.RaidMember) string {
	has := func(f string) bool {
		for _, s := range m.State {
			if s == f {
				return true
			}
		}
		return false
	}
	errs := ""
	if m.Errors > 0 {
		errs = fmt.Sprintf(", %d read errors corrected", m.Errors)
	}
	switch {
	case has("faulty"):
		return fmt.Sprintf("%s: %s is FAULTY%s; replace it: nasctl raid replace %s %s NEW", a.Name, m.Name, errs, a.Name, m.Name)
	case has("replacement"):
		return fmt.Sprintf("%s: %s is being filled as a replacement%s", a.Name, m.Name, errs)
	case has("want_replacement"):
		return fmt.Sprintf("%s: %s is being replaced%s", a.Name, m.Name, errs)
	case has("spare") && m.Slot >= 0:
		return fmt.Sprintf("%s: %s is rebuilding into slot %d%s", a.Name, m.Name, m.Slot, errs)
	case has("spare"):
		return fmt.Sprintf("%s: %s is a spare%s", a.Name, m.Name, errs)
	case !has("in_sync"):
		flags := ""
		if len(m.State) > 0 {
			flags = " (" + strings.Join(m.State, ",") + ")"
		}
		return fmt.Sprintf("%s: %s is not in sync%s%s", a.Name, m.Name, flags, errs)
	case m.Errors > 0:
		return fmt.Sprintf("%s: %s is in sync%s", a.Name, m.Name, errs)
	}
	return ""
}
