package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"ftnas/appliance/api"
)

func newInstallCmd(a *app) *cobra.Command {
	var disks []string
	var bundle, level string
	var allowUnsigned, yes bool
	cmd := &cobra.Command{
		Use:   "install --disks DISK,DISK... --bundle FILE [--data-level LEVEL] --yes",
		Short: "Install the firmware of a bundle onto blank disks (they become a box of their own)",
		Long: "Send the update bundle FILE (a file or a block device holding one) to nasd, which\n" +
			"installs it onto the blank disks named: every disk gets the standard partition\n" +
			"layout and the same ESP (systemd-boot, both root slots' entries, kernel and\n" +
			"initrd), md arrays are made over them (root A and B, state, data at\n" +
			"--data-level: by default RAID1 for one or two disks, RAID5 for three, RAID6 for\n" +
			"four or more), the bundle's slot image is written to both root slots and read\n" +
			"back, and the state and data arrays are left for the new box's first boot to\n" +
			"format. The new arrays carry a fresh installation id that their boot entries\n" +
			"name, so the new box assembles its own arrays even with this box's disks still\n" +
			"attached. Power off, and boot from the new disks.\n\n" +
			"nasd refuses, before writing anything, a disk that is not blank (partitions, a\n" +
			"partition table, file system, md superblock in its first or last MiB), a disk\n" +
			"this box runs from, and fewer disks than the data level needs. The bundle must\n" +
			"be signed by a key this box trusts, as for `nasctl update` (--allow-unsigned\n" +
			"likewise). Everything on the disks is lost: --yes confirms it.",
		Args: args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(disks) == 0 {
				return errors.New("install: --disks: name the blank disks (--disks /dev/vdb,/dev/vdc)")
			}
			if bundle == "" {
				return errors.New("install: --bundle: name the update bundle to install")
			}
			switch strings.ToLower(level) {
			case "", "raid1", "raid5", "raid6", "raid10":
			default:
				return fmt.Errorf("install: --data-level %q: want raid1, raid5, raid6 or raid10", level)
			}
			if !yes {
				return fmt.Errorf("install: this erases everything on %s; run again with --yes to go ahead", strings.Join(disks, ", "))
			}
			f, err := os.Open(bundle)
			if err != nil {
				return fmt.Errorf("install: %w", err)
			}
			defer f.Close()
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.Install(cmd.Context(), f, api.InstallRequest{Disks: disks, DataLevel: strings.ToLower(level), AllowUnsigned: allowUnsigned})
			if err != nil {
				return fmt.Errorf("install from %s onto %s: %w", bundle, strings.Join(disks, ", "), err)
			}
			if a.json {
				return writeJSON(a.stdout, api.NormInstallResult(res))
			}
			fmt.Fprintln(a.stdout, installLine(res))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&disks, "disks", nil, "the blank disks to install onto, comma-separated (/dev/vdb,/dev/vdc or vdb,vdc)")
	f.StringVar(&bundle, "bundle", "", "the update bundle to install (a file or a block device holding one)")
	f.StringVar(&level, "data-level", "", "the data array's level: raid1, raid5, raid6 or raid10 (default: by the number of disks)")
	f.BoolVar(&allowUnsigned, "allow-unsigned", false, "on a box that trusts no update key (a development machine), install the bundle without a signature check")
	f.BoolVar(&yes, "yes", false, "confirm that everything on the disks is erased")
	return cmd
}

// installLine is the status line of an install.
func installLine(r api.InstallResult) string {
	signed := "signed by key " + r.SignedBy
	if r.Unverified || r.SignedBy == "" {
		signed = "UNVERIFIED: no signature checked, this box trusts no update key"
	}
	var arrays []string
	for _, a := range r.Arrays {
		arrays = append(arrays, fmt.Sprintf("%s %s x%d", a.Name, a.Level, len(a.Members)))
	}
	return fmt.Sprintf("install %s (%s) onto %s: installation %s; arrays %s; slot image %d bytes, sha256 %s verified in slots A and B; "+
		"kernel and initrd from the %s; ESPs identical (sha256 %s); power off and boot from the new disks",
		r.Version, signed, strings.Join(r.Disks, ", "), r.ID, strings.Join(arrays, ", "), r.Bytes, r.SHA256, r.BootFiles, r.ESPHash)
}
