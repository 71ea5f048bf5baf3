package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"ftnas/scripts/raidbench/internal/result"
)

// Summary is the RAID guest's report.
type Summary = result.Summary

// bootResult is one disk booted alone.
type bootResult struct {
	Disk              string
	OK                bool
	MarkerS, ServingS float64
	Degraded, InSync  int
	Err               string
}

// report is everything one run measured.
type report struct {
	Disks              int
	DataMiB            int64
	SpeedMin, SpeedMax int
	AwayS              float64
	BuildS, RunS       float64
	Arrays             []string
	Boots              []bootResult
	RAID               *Summary // nil: the RAID guest failed (RAIDErr) or was skipped
	RAIDErr            string
	// LoadBoots, LoadRAID: the host's 1-minute load average before and
	// after each part (TCG's speed depends on it).
	LoadBoots, LoadRAID [2]string
}

// figures is the last line's JSON object; a nil pointer is a figure that
// could not be measured (null).
type figures struct {
	Bench          string     `json:"bench"`
	BootsOK        int        `json:"boots_ok"`
	BootsTried     int        `json:"boots_tried"`
	BootSMax       *float64   `json:"boot_s_max"`
	RebuildMBs     *float64   `json:"rebuild_mbs"`
	ManualMBs      *float64   `json:"md_manual_rebuild_mbs"`
	ReAddS         *float64   `json:"readd_s"`
	FullRebuildS   *float64   `json:"full_rebuild_s"`
	ManualFullS    *float64   `json:"md_manual_full_rebuild_s"`
	ClientErrors   *int64     `json:"client_errors"`
	BootS          []*float64 `json:"boot_s"`
	DataMiBPerDisk int64      `json:"data_mib_per_disk"`
	DataLevel      string     `json:"data_level,omitempty"`
	SpeedLimitMin  int        `json:"speed_limit_min"`
	SpeedLimitMax  int        `json:"speed_limit_max"`
	RebuildMdKiBs  *float64   `json:"rebuild_md_speed_kibs"`
	ManualMdKiBs   *float64   `json:"md_manual_md_speed_kibs"`
	ReAddDataS     *float64   `json:"readd_data_resync_s"`
	ClientWrites   *int64     `json:"client_writes"`
	AwayS          float64    `json:"away_s"`
	ManualFirst    bool       `json:"manual_first"`
	RunS           float64    `json:"run_s"`
	Client         string     `json:"client"`
	RAIDError      string     `json:"raid_error,omitempty"`
}

func ptr[T any](v T) *T { return &v }

// round2 rounds to 2 decimals.
func round2(v float64) float64 { return math.Round(v*100) / 100 }

// positive is v rounded, or nil when v is not a measurement (0 or less).
func positive(v float64) *float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return ptr(round2(v))
}

func (r report) figures() figures {
	f := figures{Bench: "raid", BootsTried: len(r.Boots), DataMiBPerDisk: r.DataMiB,
		SpeedLimitMin: r.SpeedMin, SpeedLimitMax: r.SpeedMax, AwayS: r.AwayS, RunS: round2(r.RunS),
		Client: "in-guest writer to the data array (no network client)", RAIDError: r.RAIDErr}
	max := 0.0
	for _, b := range r.Boots {
		if !b.OK {
			f.BootS = append(f.BootS, nil)
			continue
		}
		f.BootsOK++
		f.BootS = append(f.BootS, ptr(round2(b.ServingS)))
		max = math.Max(max, b.ServingS)
	}
	if f.BootsOK > 0 {
		f.BootSMax = ptr(round2(max))
	}
	if s := r.RAID; s != nil {
		f.DataLevel = s.DataLevel
		f.ManualFirst = s.ManualFirst
		f.RebuildMBs = positive(s.Ftnas.Data.MBs)
		f.ManualMBs = positive(s.Manual.Data.MBs)
		f.RebuildMdKiBs = positive(s.Ftnas.Data.MdSpeedKiBs)
		f.ManualMdKiBs = positive(s.Manual.Data.MdSpeedKiBs)
		f.ReAddS = positive(s.ReAdd.CleanS)
		f.FullRebuildS = positive(s.Ftnas.CleanS)
		f.ManualFullS = positive(s.Manual.CleanS)
		f.ReAddDataS = ptr(round2(math.Max(0, s.ReAdd.Data.EndS-s.ReAdd.Data.StartS)))
		f.ClientErrors = ptr(s.WriteErrs + int64(s.BadChunks))
		f.ClientWrites = ptr(s.Writes)
	}
	return f
}

func num(p *float64, format string) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf(format, *p)
}

// print writes the table and, last, the JSON line.
func (r report) print(w io.Writer) {
	f := r.figures()
	fmt.Fprintf(w, "\nftnas RAID under qemu TCG: %d disks, data %d MiB a disk (%s); arrays: %s\n",
		r.Disks, r.DataMiB, orNA(f.DataLevel), strings.Join(r.Arrays, ", "))
	fmt.Fprintf(w, "image set built in %.0f s; whole run %.0f s\n\n", r.BuildS, r.RunS)
	if len(r.Boots) > 0 {
		fmt.Fprintf(w, "Each disk booted alone (OVMF, systemd-boot, real userland): power-on to \"ftnas: nasd serving\"\n")
		fmt.Fprintf(w, "  %-10s %8s %10s %6s\n", "disk", "root up", "serving", "root")
		for _, b := range r.Boots {
			if !b.OK {
				fmt.Fprintf(w, "  %-10s FAILED: %s\n", b.Disk, b.Err)
				continue
			}
			fmt.Fprintf(w, "  %-10s %7.1fs %9.1fs %6s\n", b.Disk, b.MarkerS, b.ServingS, fmt.Sprintf("%d/%d", b.InSync, b.InSync+b.Degraded))
		}
		fmt.Fprintf(w, "  boots ok %d/%d, slowest %s s (host load average %s before, %s after)\n\n", f.BootsOK, f.BootsTried, num(f.BootSMax, "%.1f"),
			orNA(r.LoadBoots[0]), orNA(r.LoadBoots[1]))
	}
	if r.RAID == nil && r.RAIDErr != "" {
		fmt.Fprintf(w, "RAID guest FAILED: %s\n\n", r.RAIDErr)
	}
	if s := r.RAID; s != nil {
		fmt.Fprintf(w, "RAID guest (Debian kernel, md, mdadm; raid.Manager as nasd runs it with --raid-auto-adopt),\n")
		fmt.Fprintf(w, "md speed_limit_min %d KiB/s, speed_limit_max %d KiB/s for every rebuild; host load average %s before, %s after:\n",
			s.SpeedMin, s.SpeedMax, orNA(r.LoadRAID[0]), orNA(r.LoadRAID[1]))
		fmt.Fprintf(w, "  %-48s %10s %12s %10s %14s %9s %6s\n", "", "clean after", "data rebuild", "data MB/s", "md sync_speed", "guest cpu", "forks")
		// The re-add's resync covers only what the bitmap marked: a
		// rate over the whole component would mean nothing.
		row := func(name string, p result.Phase, clean, rate bool) {
			c, mbs := "-", "-"
			if clean {
				c = fmt.Sprintf("%.1fs", p.CleanS)
			}
			if rate {
				mbs = num(positive(p.Data.MBs), "%.1f")
			}
			fmt.Fprintf(w, "  %-48s %10s %11.1fs %10s %8.0f KiB/s %8.0f%% %6d\n", name, c, math.Max(0, p.Data.EndS-p.Data.StartS), mbs,
				p.Data.MdSpeedKiBs, 100*p.Data.CPUBusy, p.Data.Forks)
		}
		row("ftnas: pull, blank disk, auto-adopt", s.Ftnas, true, true)
		row("mdadm by hand: pull, blank disk, sfdisk/dd/--add", s.Manual, true, true)
		row(fmt.Sprintf("ftnas: pull, %.0f s away, bitmap re-add", r.AwayS), s.ReAdd, true, false)
		order := "ftnas first, then by hand"
		if s.ManualFirst {
			order = "by hand first, then ftnas"
		}
		fmt.Fprintf(w, "  order: %s, after a warm-up check of the data array (%.1f s)\n", order, s.WarmupS)
		fmt.Fprintf(w, "  guest cpu, forks: the guest's busy CPU share and processes started during the data rebuild\n")
		fmt.Fprintf(w, "  clean after: from the blank (or returning) disk's block device seen in the guest to every array clean with it\n")
		fmt.Fprintf(w, "  full rebuild %.1f s (by hand %.1f s); bitmap re-add after %.0f s away %.1f s\n",
			s.Ftnas.CleanS, s.Manual.CleanS, r.AwayS, s.ReAdd.CleanS)
		fmt.Fprintf(w, "  pulled disk out of every array after %.1f s (ftnas), %.1f s (by hand), %.1f s (re-add phase)\n",
			s.Ftnas.RemovedS, s.Manual.RemovedS, s.ReAdd.RemovedS)
		for _, p := range []struct {
			name string
			ph   result.Phase
		}{{"ftnas", s.Ftnas}, {"by hand", s.Manual}, {"re-add", s.ReAdd}} {
			for _, o := range p.ph.Others {
				fmt.Fprintf(w, "  %-8s %-14s rebuilt %.1f-%.1f s after the disk came (%.1f MB/s)\n", p.name, o.Array, o.StartS, o.EndS, o.MBs)
			}
			what := "manager actions"
			if p.name == "by hand" {
				what = "commands"
			}
			fmt.Fprintf(w, "  %-8s %s: %s\n", p.name, what, strings.Join(p.ph.Actions, "; "))
		}
		fmt.Fprintf(w, "  client: %s: %d writes, %d failed, %d chunks read back, %d wrong\n\n", s.ClientNote, s.Writes, s.WriteErrs, s.Verified, s.BadChunks)
	}
	b, err := json.Marshal(f)
	if err != nil {
		fmt.Fprintf(w, "{\"bench\":\"raid\",\"error\":%q}\n", err.Error())
		return
	}
	fmt.Fprintf(w, "%s\n", b)
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}
