package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"ftnas/appliance/api"
)

func newUpdateCmd(a *app) *cobra.Command {
	var tries int
	var allowUnsigned, allowDowngrade bool
	cmd := &cobra.Command{
		Use:   "update FILE",
		Short: "Write a firmware update to the inactive root slot; it runs after a reboot",
		Long: "Send the update bundle FILE (a file or a block device holding one) to nasd,\n" +
			"which writes it to the root slot the box is not running, reads it back and checks\n" +
			"its SHA-256, and makes that slot boot next with --tries boots to come up. A slot\n" +
			"that does not come up in its tries is given up and the box boots the running\n" +
			"slot again. Reboot to run the update.\n\n" +
			"The bundle must be signed by a key the box trusts (the public keys in\n" +
			"/etc/ftnas/update-keys, put there when the firmware was built); nasd refuses an\n" +
			"unsigned bundle, one signed by an unknown key or one changed after it was signed\n" +
			"before it writes anything. A box that trusts no key (a development machine)\n" +
			"refuses every bundle unless --allow-unsigned is given; a box that trusts keys\n" +
			"ignores --allow-unsigned.\n\n" +
			"A bundle older than the running release (a lower serial, the build number the\n" +
			"signed manifest carries; a bundle without one counts as 0) is refused, so an old\n" +
			"signed bundle cannot roll the box back, unless --allow-downgrade is given.",
		Args: args(1, "FILE"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if tries < 0 || tries > 9 {
				return fmt.Errorf("update: --tries %d: want 1-9 (0: the default)", tries)
			}
			f, err := os.Open(argv[0])
			if err != nil {
				return fmt.Errorf("update: %w", err)
			}
			defer f.Close()
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.Update(cmd.Context(), f, api.UpdateRequest{Tries: tries, AllowUnsigned: allowUnsigned, AllowDowngrade: allowDowngrade})
			if err != nil {
				return fmt.Errorf("update from %s: %w", argv[0], err)
			}
			if a.json {
				return writeJSON(a.stdout, api.NormUpdateResult(res))
			}
			fmt.Fprintln(a.stdout, updateLine(res))
			return nil
		},
	}
	cmd.Flags().IntVar(&tries, "tries", 0, "boots the new slot gets to come up before the box falls back (1-9; default 3)")
	cmd.Flags().BoolVar(&allowUnsigned, "allow-unsigned", false, "on a box that trusts no update key (a development machine), write the bundle without a signature check")
	cmd.Flags().BoolVar(&allowDowngrade, "allow-downgrade", false, "write a bundle older than the running release (a lower serial)")
	return cmd
}

// updateLine is the status line of an update.
func updateLine(r api.UpdateResult) string {
	var esps []string
	for _, d := range r.ESPs {
		esps = append(esps, d.Disk)
	}
	boot := "kernel and initrd unchanged"
	if r.BootFiles {
		boot = "kernel and initrd replaced"
	}
	signed := "signed by key " + r.SignedBy
	if r.Unverified || r.SignedBy == "" {
		signed = "UNVERIFIED: no signature checked, this box trusts no update key"
	}
	if r.Downgrade {
		signed += fmt.Sprintf("; DOWNGRADE from %s (serial %d) to serial %d", r.RunningVersion, r.RunningSerial, r.Serial)
	}
	return fmt.Sprintf("update %s (%s) written to slot %s (%s, %d bytes, sha256 %s verified; %s); "+
		"entry %s boots next with %d tries, then slot %s again if it does not come up; ESPs identical on %s; reboot to run it",
		r.Version, signed, strings.ToUpper(r.Slot), r.Array, r.Bytes, r.SHA256, boot,
		r.Entry, r.Tries, strings.ToUpper(r.RunningSlot), strings.Join(esps, ", "))
}
