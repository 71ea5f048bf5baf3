package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"ftnas/appliance/api"
)

func newFirmwareCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "firmware",
		Short: "Show the root slots: which runs, which boots next, an update on trial or rolled back",
		Args:  args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := c.Firmware(cmd.Context())
			if err != nil {
				return fmt.Errorf("firmware: %w", err)
			}
			if a.json {
				return writeJSON(a.stdout, api.NormFirmwareStatus(st))
			}
			fmt.Fprint(a.stdout, firmwareText(st))
			return nil
		},
	}
}

// firmwareText is the firmware status for people.
func firmwareText(st api.FirmwareStatus) string {
	if !st.FromSlot {
		return fmt.Sprintf("firmware: not running from a root slot (%s)\n", st.Why)
	}
	var b strings.Builder
	say := map[string]string{
		"good":           "running slot %s, blessed; it boots next",
		"trial":          "running slot %s on trial: an update not yet blessed (nasd blesses it once it serves)",
		"update-pending": "running slot %s; an update in slot %s boots next on trial: reboot to run it",
		"rolled-back":    "running slot %s: ROLLED BACK, the preferred slot did not come up in its tries",
	}[st.State]
	if say == "" {
		say = "running slot %s, state " + st.State
	}
	if strings.Count(say, "%s") == 2 {
		fmt.Fprintf(&b, "firmware: "+say+"\n", strings.ToUpper(st.Running), strings.ToUpper(st.Next))
	} else {
		fmt.Fprintf(&b, "firmware: "+say+"\n", strings.ToUpper(st.Running))
	}
	switch {
	case st.ReleaseError != "":
		fmt.Fprintf(&b, "release: unreadable (%s): every update is refused unless allowed as a downgrade\n", st.ReleaseError)
	case st.Version != "":
		fmt.Fprintf(&b, "release: %s, serial %d (updates with a lower serial are refused unless allowed)\n", st.Version, st.Serial)
	}
	if st.Install != "" {
		fmt.Fprintf(&b, "installation: %s\n", st.Install)
	}
	fmt.Fprintf(&b, "%-5s %-22s %s\n", "SLOT", "ENTRY", "STATE")
	for _, s := range st.Slots {
		var what []string
		if s.Running {
			what = append(what, "running")
		}
		if s.Next {
			what = append(what, "boots next")
		}
		if s.Preferred {
			what = append(what, "preferred")
		}
		switch {
		case s.Failed:
			what = append(what, fmt.Sprintf("failed (no tries left, %d made)", s.TriesDone))
		case s.Trial:
			what = append(what, fmt.Sprintf("on trial: %d tries left, %d made", s.TriesLeft, s.TriesDone))
		}
		fmt.Fprintf(&b, "%-5s %-22s %s\n", strings.ToUpper(s.Slot), s.Entry, strings.Join(what, ", "))
	}
	if st.ESP != "" {
		fmt.Fprintf(&b, "entries read from the ESP of %s (booted %s)\n", st.ESP, st.Booted)
	}
	return b.String()
}
