package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"ftnas/scripts/raidbench/internal/result"
)

// lastJSON is print's last line, decoded.
func lastJSON(t *testing.T, r report) (map[string]any, string) {
	t.Helper()
	var buf bytes.Buffer
	r.print(&buf)
	out := strings.TrimRight(buf.String(), "\n")
	last := out[strings.LastIndexByte(out, '\n')+1:]
	var m map[string]any
	if err := json.Unmarshal([]byte(last), &m); err != nil {
		t.Fatalf("last line %q: %v", last, err)
	}
	return m, out
}

func TestReportFailedPartsAreNull(t *testing.T) {
	r := report{Disks: 4, DataMiB: 256, SpeedMin: 1000, SpeedMax: 200000, AwayS: 10,
		Boots: []bootResult{
			{Disk: "disk0.raw", OK: true, MarkerS: 3, ServingS: 41.234},
			{Disk: "disk1.raw", Err: "waiting for nasd: timeout"},
			{Disk: "disk2.raw", OK: true, MarkerS: 3, ServingS: 55.5},
		},
		RAIDErr: "pull disk3: qemu exited",
	}
	m, out := lastJSON(t, r)
	if m["bench"] != "raid" || m["boots_ok"] != 2.0 || m["boots_tried"] != 3.0 || m["boot_s_max"] != 55.5 {
		t.Errorf("boots: %v", m)
	}
	if bs, _ := m["boot_s"].([]any); len(bs) != 3 || bs[0] != 41.23 || bs[1] != nil || bs[2] != 55.5 {
		t.Errorf("boot_s %v, want [41.23 null 55.5]", m["boot_s"])
	}
	for _, k := range []string{"rebuild_mbs", "md_manual_rebuild_mbs", "readd_s", "full_rebuild_s", "client_errors"} {
		v, ok := m[k]
		if !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}
	if m["raid_error"] != "pull disk3: qemu exited" {
		t.Errorf("raid_error %v", m["raid_error"])
	}
	if !strings.Contains(out, "disk1.raw") || !strings.Contains(out, "FAILED: waiting for nasd") || !strings.Contains(out, "RAID guest FAILED") {
		t.Errorf("table does not show the failures:\n%s", out)
	}
}

func TestReportFigures(t *testing.T) {
	s := &result.Summary{SpeedMin: 1000, SpeedMax: 200000, DataLevel: "raid6", DataKiB: 261120,
		Ftnas:  result.Phase{CleanS: 29.14, Data: result.Window{StartS: 16.9, EndS: 29.1, MBs: 21.826}},
		Manual: result.Phase{CleanS: 10.3, Data: result.Window{StartS: 0.3, EndS: 10.3, MBs: 26.857}},
		ReAdd:  result.Phase{CleanS: 4.716, Data: result.Window{StartS: 1, EndS: 4.7, MBs: 72}},
		Writes: 1000, WriteErrs: 1, BadChunks: 2,
	}
	r := report{Disks: 4, DataMiB: 256, Boots: []bootResult{{Disk: "disk0.raw", OK: true, ServingS: 40}}, RAID: s}
	m, out := lastJSON(t, r)
	want := map[string]any{"rebuild_mbs": 21.83, "md_manual_rebuild_mbs": 26.86, "readd_s": 4.72, "full_rebuild_s": 29.14,
		"client_errors": 3.0, "readd_data_resync_s": 3.7, "data_level": "raid6", "boots_ok": 1.0, "boot_s_max": 40.0}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	// The re-add's rate over the whole component means nothing: the
	// table shows none.
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "bitmap re-add") && strings.Contains(l, "72.0") {
			t.Errorf("re-add row shows a rate: %q", l)
		}
	}
}

func TestReportZeroRateIsNull(t *testing.T) {
	// A recovery that finished between two samples has no window: no
	// rate rather than an infinite or zero one.
	r := report{RAID: &result.Summary{Ftnas: result.Phase{CleanS: 3}}}
	m, _ := lastJSON(t, r)
	if m["rebuild_mbs"] != nil || m["md_manual_rebuild_mbs"] != nil || m["full_rebuild_s"] != 3.0 || m["client_errors"] != 0.0 {
		t.Errorf("%v", m)
	}
}
