package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"ftnas/appliance/api"
)

func newStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the node's state: volume, shares, users, services",
		Args:  args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(a, cmd, (*api.Client).Status, func(st api.Status) api.Status {
				if st.Services == nil {
					st.Services = []api.Service{}
				}
				return st
			}, func(w io.Writer, st api.Status) error { return printStatus(w, st, a.now()) })
		},
	}
}

func printStatus(w io.Writer, st api.Status, now time.Time) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "Host:\t%s\n", st.Hostname)
	fmt.Fprintf(tw, "Version:\t%s\n", st.Version)
	if !st.StartedAt.IsZero() {
		fmt.Fprintf(tw, "Uptime:\t%s (since %s)\n", fmtDuration(now.Sub(st.StartedAt)), st.StartedAt.Local().Format("2006-01-02 15:04:05 MST"))
	}
	vol := st.Volume
	if st.VolumeTotalBytes > 0 {
		used := st.VolumeTotalBytes - min(st.VolumeFreeBytes, st.VolumeTotalBytes)
		vol += fmt.Sprintf(" (%s free of %s, %d%% used)", fmtBytes(st.VolumeFreeBytes), fmtBytes(st.VolumeTotalBytes), used*100/st.VolumeTotalBytes)
	}
	fmt.Fprintf(tw, "Volume:\t%s\n", vol)
	fmt.Fprintf(tw, "Shares:\t%d\n", st.Shares)
	fmt.Fprintf(tw, "Users:\t%d\n", st.Users)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Services) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "SERVICE\tSTATE\tHEALTH\tSINCE\tDETAIL")
	for _, s := range st.Services {
		health := "ok"
		if !s.Healthy {
			health = "FAILING"
		}
		since := "-"
		if !s.Since.IsZero() {
			since = fmtDuration(now.Sub(s.Since)) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.State, health, since, s.Detail)
	}
	return tw.Flush()
}

// fmtDuration prints a duration coarsely: 3d4h, 4h5m, 5m30s, 12s.
func fmtDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	days, hours, mins, secs := s/86400, s/3600%24, s/60%60, s%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh%dm", hours, mins)
	case mins > 0:
		return fmt.Sprintf("%dm%ds", mins, secs)
	}
	return fmt.Sprintf("%ds", secs)
}

// fmtBytes prints a size in IEC units: 512 B, 1.5 KiB, 931.3 GiB.
func fmtBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
