package appliance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"ftnas/appliance/api"
	"ftnas/appliance/store"
	"ftnas/raid"

	"github.com/prometheus/client_golang/prometheus"
)

// raidSysfs is a captured /sys tree (Debian 6.1 kernel, values as md
// prints them) with three arrays: md0, a clean RAID1 whose last check
// found mismatches; md1, a degraded RAID1 recovering onto sdc3 after sdb3
// failed; md127, an inactive array assembled from a stray member. sdd2 is
// an unused partition.
func raidSysfs() map[string]string {
	return map[string]string{
		"block/md0/md/array_state":      "clean",
		"block/md0/md/level":            "raid1",
		"block/md0/md/raid_disks":       "2",
		"block/md0/md/degraded":         "0",
		"block/md0/md/metadata_version": "1.2",
		"block/md0/md/sync_action":      "idle",
		"block/md0/md/sync_completed":   "none",
		"block/md0/md/sync_speed":       "none",
		"block/md0/md/mismatch_cnt":     "128",
		"block/md0/md/component_size":   "1046528",
		"block/md0/md/bitmap/location":  "+8",
		"block/md0/md/dev-sda2/state":   "in_sync",
		"block/md0/md/dev-sda2/slot":    "0",
		"block/md0/md/dev-sda2/errors":  "0",
		"block/md0/md/dev-vdb2/state":   "in_sync",
		"block/md0/md/dev-vdb2/slot":    "1",
		"block/md0/md/dev-vdb2/errors":  "7",
		"block/md0/md/rd0/state":        "in_sync",
		"block/md0/size":                "2093056",

		"block/md1/md/array_state":      "active",
		"block/md1/md/level":            "raid1",
		"block/md1/md/raid_disks":       "2",
		"block/md1/md/degraded":         "1",
		"block/md1/md/metadata_version": "1.2",
		"block/md1/md/sync_action":      "recover",
		"block/md1/md/sync_completed":   "32768 / 129024",
		"block/md1/md/sync_speed":       "16384",
		"block/md1/md/mismatch_cnt":     "0",
		"block/md1/md/component_size":   "64512",
		"block/md1/md/dev-sda3/state":   "in_sync",
		"block/md1/md/dev-sda3/slot":    "0",
		"block/md1/md/dev-sda3/errors":  "0",
		"block/md1/md/dev-sdb3/state":   "faulty",
		"block/md1/md/dev-sdb3/slot":    "none",
		"block/md1/md/dev-sdb3/errors":  "12",
		"block/md1/md/dev-sdc3/state":   "spare",
		"block/md1/md/dev-sdc3/slot":    "1",
		"block/md1/md/dev-sdc3/errors":  "0",

		"block/md127/md/array_state":      "inactive",
		"block/md127/md/raid_disks":       "0",
		"block/md127/md/metadata_version": "1.2",
		"block/md127/md/dev-sde1/state":   "",
		"block/md127/md/dev-sde1/slot":    "none",
		"block/md127/md/dev-sde1/errors":  "0",

		"block/sda/size":       "4194304",
		"block/loop0/size":     "0",
		"class/block/sda2/dev": "8:2",
		"class/block/sda3/dev": "8:3",
		"class/block/sdb3/dev": "8:19",
		"class/block/sdc3/dev": "8:35",
		"class/block/sde1/dev": "8:65",
		"class/block/vdb2/dev": "254:18",
		"class/block/sdd2/dev": "8:50",
		"class/block/sdd3/dev": "8:51",
	}
}

// writeTree writes files (value + newline, as sysfs prints) below a
// fresh temporary root.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, v := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// fakeMdadm records mdadm calls and acts on the sysfs tree as md would
// at the start; fail makes the named operation fail.
type fakeMdadm struct {
	root  string
	calls []string
	fail  map[string]error // "add", "remove", "replace"
}

func (f *fakeMdadm) attr(array, dev, name, v string) {
	p := filepath.Join(f.root, "block", strings.TrimPrefix(array, "/dev/"), "md", "dev-"+strings.TrimPrefix(dev, "/dev/"))
	os.MkdirAll(p, 0o755)
	os.WriteFile(filepath.Join(p, name), []byte(v+"\n"), 0o644)
}

func (f *fakeMdadm) Add(_ context.Context, array, dev string) error {
	f.calls = append(f.calls, "add "+array+" "+dev)
	if err := f.fail["add"]; err != nil {
		return err
	}
	f.attr(array, dev, "state", "spare")
	f.attr(array, dev, "slot", "none")
	f.attr(array, dev, "errors", "0")
	return nil
}

func (f *fakeMdadm) Remove(_ context.Context, array, dev string) error {
	f.calls = append(f.calls, "remove "+array+" "+dev)
	if err := f.fail["remove"]; err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(f.root, "block", strings.TrimPrefix(array, "/dev/"), "md", "dev-"+strings.TrimPrefix(dev, "/dev/")))
}

func (f *fakeMdadm) Replace(_ context.Context, array, old, new string) error {
	f.calls = append(f.calls, "replace "+array+" "+old+" "+new)
	if err := f.fail["replace"]; err != nil {
		return err
	}
	f.attr(array, old, "state", "in_sync,want_replacement")
	f.attr(array, new, "state", "spare,replacement")
	return nil
}

// newRaidBackend serves raidSysfs (plus extra files) from a temporary
// directory through the live sysfs writer.
func newRaidBackend(t *testing.T, extra map[string]string) (*backend, *fakeMdadm, string) {
	files := raidSysfs()
	for k, v := range extra {
		files[k] = v
	}
	root := writeTree(t, files)
	md := &fakeMdadm{root: root, fail: map[string]error{}}
	return &backend{raid: newRaidManager(root, md, nil)}, md, root
}

func TestRaidStatusCapturedTree(t *testing.T) {
	b, _, _ := newRaidBackend(t, nil)
	st, err := b.RaidStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range st.Arrays {
		names = append(names, a.Name)
	}
	if want := []string{"md0", "md1", "md127"}; !slices.Equal(names, want) {
		t.Fatalf("arrays = %q, want %q", names, want)
	}
	md0, md1, md127 := st.Arrays[0], st.Arrays[1], st.Arrays[2]
	if md0.Level != "raid1" || md0.State != "clean" || md0.Degraded != 0 || md0.SyncAction != "idle" || md0.SyncProgress != 0 ||
		md0.ETASeconds != -1 || md0.MismatchCount != 128 || md0.MembersUp() != 2 || md0.RaidDisks != 2 {
		t.Errorf("md0 = %+v", md0)
	}
	if m := md0.Members[1]; m.Name != "vdb2" || m.Slot != 1 || !slices.Equal(m.State, []string{"in_sync"}) || m.Errors != 7 {
		t.Errorf("md0 member vdb2 = %+v", m)
	}
	// 32768 of 129024 sectors: 25.40%; 96256 sectors (48128 KiB) left at
	// 16384 KiB/s: 2.94 s, rounded up.
	if md1.Degraded != 1 || md1.SyncAction != "recover" || md1.SyncProgress != 25.4 || md1.SyncSpeedKiB != 16384 ||
		md1.ETASeconds != 3 || md1.MembersUp() != 1 || md1.State != "active" {
		t.Errorf("md1 = %+v", md1)
	}
	var members []string
	for _, m := range md1.Members {
		members = append(members, fmt.Sprintf("%s:%d:%s:%d", m.Name, m.Slot, strings.Join(m.State, ","), m.Errors))
	}
	if want := []string{"sda3:0:in_sync:0", "sdc3:1:spare:0", "sdb3:-1:faulty:12"}; !slices.Equal(members, want) {
		t.Errorf("md1 members = %q, want %q", members, want)
	}
	if md127.State != "inactive" || md127.Level != "" || len(md127.Members) != 1 || md127.Members[0].State == nil || md127.ETASeconds != -1 {
		t.Errorf("md127 = %+v", md127)
	}
}

func TestRaidStatusNoArrays(t *testing.T) {
	for name, fsys := range map[string]fs.FS{
		"no md":         fstest.MapFS{"block/sda/size": {Data: []byte("8\n")}, "block/loop0/size": {Data: []byte("0\n")}},
		"no /sys/block": fstest.MapFS{"class/net/lo/mtu": {Data: []byte("65536\n")}},
	} {
		b := &backend{raid: &raidManager{sys: fsys, log: slog.New(slog.DiscardHandler)}}
		st, err := b.RaidStatus(context.Background())
		if err != nil || st.Arrays == nil || len(st.Arrays) != 0 {
			t.Errorf("%s: RaidStatus = %+v, %v; want an empty list", name, st, err)
		}
	}
	// This host (no md arrays in CI) through the live /sys.
	b := &backend{}
	if _, err := b.RaidStatus(context.Background()); err != nil {
		t.Errorf("RaidStatus on this host: %v", err)
	}
	if b.raid == nil {
		t.Error("raidManager was not kept")
	}
}

func TestRaidStatusBadTree(t *testing.T) {
	b, _, root := newRaidBackend(t, map[string]string{"block/md0/md/mismatch_cnt": "lots"})
	_, err := b.RaidStatus(context.Background())
	if err == nil || !strings.Contains(err.Error(), "md0") || !strings.Contains(err.Error(), `mismatch_cnt "lots"`) {
		t.Errorf("RaidStatus with a garbled mismatch_cnt = %v", err)
	}
	// An array stopped between listing and reading is left out.
	m := &raidManager{sys: os.DirFS(root), log: slog.New(slog.DiscardHandler)}
	os.RemoveAll(filepath.Join(root, "block/md0"))
	os.WriteFile(filepath.Join(root, "block/md9"), nil, 0o644)
	arrays, err := m.arrays()
	if err != nil || len(arrays) != 2 {
		t.Errorf("arrays after md0 stopped = %d, %v", len(arrays), err)
	}
}

// recordingWriter records attribute writes into a MapFS.
type recordingWriter struct {
	fsys   fstest.MapFS
	writes []string
	err    error
}

func (w *recordingWriter) WriteAttr(name, value string) error {
	w.writes = append(w.writes, name+"="+value)
	if w.err != nil {
		return w.err
	}
	w.fsys[name] = &fstest.MapFile{Data: []byte(value + "\n")}
	return nil
}

func TestRaidScrub(t *testing.T) {
	ctx := context.Background()
	// Through the live writer on a temporary tree: the file gets "check".
	b, md, root := newRaidBackend(t, nil)
	a, err := b.ScrubRaid(ctx, "md0")
	if err != nil || a.SyncAction != "check" || a.Name != "md0" {
		t.Fatalf("ScrubRaid(md0) = %+v, %v", a, err)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "block/md0/md/sync_action")); string(got) != "check" {
		t.Errorf("sync_action = %q, want check", got)
	}
	if len(md.calls) != 0 {
		t.Errorf("scrub ran mdadm: %q", md.calls)
	}

	for _, c := range []struct {
		array string
		is    error
		want  string
	}{
		{"md0", store.ErrInvalid, "raid scrub md0: busy with check; try again when it is idle"},
		{"md1", store.ErrInvalid, "raid scrub md1: the array is degraded (1 of 2 members missing)"},
		{"md127", store.ErrInvalid, `raid scrub md127: the array is not running (state "inactive")`},
		{"md7", store.ErrNotFound, "raid scrub md7: not found: no such md array"},
		{"sda", store.ErrInvalid, `raid scrub "sda": not an md array name`},
		{"md0/../sda", store.ErrInvalid, "not an md array name"},
	} {
		_, err := b.ScrubRaid(ctx, c.array)
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ScrubRaid(%s) = %v; want %v mentioning %q", c.array, err, c.is, c.want)
		}
	}

	// Through the writer interface on a MapFS: what is written, where,
	// and a failing write.
	fsys := fstest.MapFS{}
	for k, v := range raidSysfs() {
		fsys[k] = &fstest.MapFile{Data: []byte(v + "\n")}
	}
	fsys["block/md2/md/array_state"] = &fstest.MapFile{Data: []byte("clean\n")}
	fsys["block/md2/md/level"] = &fstest.MapFile{Data: []byte("raid0\n")}
	fsys["block/md0/md/sync_completed"] = &fstest.MapFile{Data: []byte("123 / 456\n")}
	fsys["block/md0/md/sync_action"] = &fstest.MapFile{Data: []byte("resync\n")}
	w := &recordingWriter{fsys: fsys}
	b = &backend{raid: &raidManager{sys: fsys, attrs: w, log: slog.New(slog.DiscardHandler)}}
	if _, err := b.ScrubRaid(ctx, "md0"); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "busy with resync (27.0% done)") {
		t.Errorf("ScrubRaid(resyncing md0) = %v", err)
	}
	if _, err := b.ScrubRaid(ctx, "md2"); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "raid0 keeps one copy") {
		t.Errorf("ScrubRaid(raid0) = %v", err)
	}
	fsys["block/md0/md/sync_action"] = &fstest.MapFile{Data: []byte("idle\n")}
	fsys["block/md0/md/sync_completed"] = &fstest.MapFile{Data: []byte("none\n")}
	w.err = errors.New("device or resource busy")
	if _, err := b.ScrubRaid(ctx, "md0"); err == nil || !strings.Contains(err.Error(), "raid scrub md0: device or resource busy") || api.StatusFor(err) != 500 {
		t.Errorf("ScrubRaid with a failing write = %v", err)
	}
	w.err = nil
	if a, err := b.ScrubRaid(ctx, "md0"); err != nil || a.SyncAction != "check" {
		t.Errorf("ScrubRaid(md0) = %+v, %v", a, err)
	}
	if want := []string{"block/md0/md/sync_action=check", "block/md0/md/sync_action=check"}; !slices.Equal(w.writes, want) {
		t.Errorf("writes = %q, want %q", w.writes, want)
	}
}

func TestSysfsWriterRefusesMissingAttr(t *testing.T) {
	root := t.TempDir()
	w := sysfsWriter{root: root}
	if err := w.WriteAttr("block/md0/md/sync_action", "check"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("write to a missing attribute = %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "block")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the writer created files: %v", err)
	}
	if err := w.WriteAttr("../etc/passwd", "x"); err == nil || !strings.Contains(err.Error(), "bad name") {
		t.Errorf("write outside the root = %v", err)
	}
}

func TestRaidReplace(t *testing.T) {
	ctx := context.Background()
	// A working member is replaced online: spare first, then --replace.
	b, md, _ := newRaidBackend(t, nil)
	a, err := b.ReplaceRaidMember(ctx, "md0", api.RaidReplaceRequest{Old: "vdb2", New: "/dev/sdd2"})
	if err != nil {
		t.Fatalf("replace vdb2 with sdd2: %v", err)
	}
	if want := []string{"add /dev/md0 /dev/sdd2", "replace /dev/md0 /dev/vdb2 /dev/sdd2"}; !slices.Equal(md.calls, want) {
		t.Errorf("mdadm calls = %q, want %q", md.calls, want)
	}
	var states []string
	for _, m := range a.Members {
		states = append(states, m.Name+":"+strings.Join(m.State, ","))
	}
	if want := []string{"sda2:in_sync", "vdb2:in_sync,want_replacement", "sdd2:spare,replacement"}; !slices.Equal(states, want) {
		t.Errorf("members after replace = %q, want %q", states, want)
	}
	if _, err := b.ReplaceRaidMember(ctx, "md0", api.RaidReplaceRequest{Old: "sda2", New: "sdd3"}); !errors.Is(err, store.ErrInvalid) ||
		!strings.Contains(err.Error(), "vdb2 is already being replaced") {
		t.Errorf("second replace = %v", err)
	}

	// A faulty member is removed and the new device added for a rebuild.
	md.calls = nil
	if _, err := b.ReplaceRaidMember(ctx, "md1", api.RaidReplaceRequest{Old: "sdb3", New: "sdd3"}); err != nil {
		t.Fatalf("replace faulty sdb3: %v", err)
	}
	if want := []string{"remove /dev/md1 /dev/sdb3", "add /dev/md1 /dev/sdd3"}; !slices.Equal(md.calls, want) {
		t.Errorf("mdadm calls = %q, want %q", md.calls, want)
	}

	b, md, _ = newRaidBackend(t, nil)
	for _, c := range []struct {
		array, old, new string
		is              error
		want            string
	}{
		{"md9", "sda2", "sdd2", store.ErrNotFound, "raid replace md9: not found: no such md array"},
		{"md0", "sdx1", "sdd2", store.ErrNotFound, "raid replace md0: not found: sdx1 is not a member (members: sda2, vdb2)"},
		{"md0", "sda2", "sdz9", store.ErrNotFound, "raid replace md0: new device sdz9: not found: no such block device"},
		{"md0", "sda2", "vdb2", store.ErrInvalid, "vdb2 is already a member"},
		{"md0", "sda2", "sdc3", store.ErrInvalid, "sdc3 is a member of md1"},
		{"md0", "sda2", "sda2", store.ErrInvalid, "old and new are both sda2"},
		{"md0", "", "sdd2", store.ErrInvalid, `old "": want a block device name`},
		{"md0", "sda2", "../sdd2", store.ErrInvalid, `new "../sdd2": want a block device name`},
		{"md1", "sda3", "sdd2", store.ErrInvalid, "the array is degraded (1 of 2 members missing) and sda3 is working; replace the failed member first"},
		{"md127", "sde1", "sdd2", store.ErrInvalid, "not running"},
		{"nvme0", "a", "b", store.ErrInvalid, "not an md array name"},
	} {
		_, err := b.ReplaceRaidMember(ctx, c.array, api.RaidReplaceRequest{Old: c.old, New: c.new})
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("replace %s %s %s = %v; want %v mentioning %q", c.array, c.old, c.new, err, c.is, c.want)
		}
	}
	if len(md.calls) != 0 {
		t.Errorf("refused replaces ran mdadm: %q", md.calls)
	}

	// mdadm refuses --replace: the spare is taken out again and the error
	// names the array, the members and mdadm's complaint.
	md.fail["replace"] = &raid.Error{Args: []string{"--manage", "/dev/md0"}, ExitCode: 1, Message: "/dev/sdd2 is not a spare"}
	_, err = b.ReplaceRaidMember(ctx, "md0", api.RaidReplaceRequest{Old: "sda2", New: "sdd2"})
	if err == nil || !strings.Contains(err.Error(), "raid replace md0 sda2 with sdd2: raid: mdadm --manage /dev/md0: exit 1: /dev/sdd2 is not a spare") ||
		api.StatusFor(err) != 500 {
		t.Errorf("failed replace = %v", err)
	}
	if want := []string{"add /dev/md0 /dev/sdd2", "replace /dev/md0 /dev/sda2 /dev/sdd2", "remove /dev/md0 /dev/sdd2"}; !slices.Equal(md.calls, want) {
		t.Errorf("mdadm calls = %q, want %q", md.calls, want)
	}
	st, _ := b.RaidStatus(ctx)
	if len(st.Arrays[0].Members) != 2 {
		t.Errorf("md0 after the failed replace = %+v", st.Arrays[0].Members)
	}
}

func TestRaidCollector(t *testing.T) {
	b, _, _ := newRaidBackend(t, nil)
	want := `ftnas_raid_array_degraded{array="md0"} 0
ftnas_raid_array_degraded{array="md1"} 1
ftnas_raid_array_degraded{array="md127"} 0
ftnas_raid_member_faulty{array="md0",member="sda2"} 0
ftnas_raid_member_faulty{array="md0",member="vdb2"} 0
ftnas_raid_member_faulty{array="md1",member="sda3"} 0
ftnas_raid_member_faulty{array="md1",member="sdb3"} 1
ftnas_raid_member_faulty{array="md1",member="sdc3"} 0
ftnas_raid_member_faulty{array="md127",member="sde1"} 0
ftnas_raid_mismatches{array="md0"} 128
ftnas_raid_mismatches{array="md1"} 0
ftnas_raid_mismatches{array="md127"} 0
ftnas_raid_sync_progress{action="recover",array="md1"} 0.25396825396825395
`
	if got := gatherText(t, newRaidCollector(b.raid)); got != want {
		t.Errorf("raid metrics =\n%s\nwant\n%s", got, want)
	}
	// A garbled tree gives no RAID series rather than failing the scrape.
	b, _, _ = newRaidBackend(t, map[string]string{"block/md1/md/degraded": "-1"})
	if got := gatherText(t, newRaidCollector(b.raid)); got != "" {
		t.Errorf("garbled tree: metrics %q, want none", got)
	}
}

// gatherText registers c alone and prints its gauges, one per line:
// name{label="value",...} value.
func gatherText(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			fmt.Fprintf(&sb, "%s{%s} %v\n", mf.GetName(), strings.Join(labels, ","), m.GetGauge().GetValue())
		}
	}
	return sb.String()
}

// fakeAdopter stands for raid.Adopter: it records the request and, unless
// err is set, adds the planned partitions through the fake mdadm.
type fakeAdopter struct {
	md    *fakeMdadm
	calls []string
	joins []raid.AdoptJoin
	err   error
}

func (f *fakeAdopter) Adopt(ctx context.Context, disk, from string) (raid.AdoptResult, error) {
	f.calls = append(f.calls, disk+" from "+from)
	if from == "" {
		from = "sda"
	}
	res := raid.AdoptResult{Disk: disk, From: from, ESPHash: "abc123"}
	for _, j := range f.joins {
		if err := f.md.Add(ctx, "/dev/"+j.Array, j.Device); err != nil {
			return res, fmt.Errorf("raid: adopt %s: add %s to %s: %w", disk, j.Device, j.Array, err)
		}
		res.Added = append(res.Added, j)
	}
	return res, f.err
}

func TestRaidAdopt(t *testing.T) {
	ctx := context.Background()
	b, md, _ := newRaidBackend(t, nil)
	ad := &fakeAdopter{md: md, joins: []raid.AdoptJoin{
		{Number: 2, Array: "md0", Device: "/dev/sdd2", Source: "/dev/sda2"},
		{Number: 3, Array: "md1", Device: "/dev/sdd3", Source: "/dev/sda3"},
	}}
	b.raid.adopter = ad
	res, err := b.AdoptRaidDisk(ctx, api.RaidAdoptRequest{Disk: "/dev/sdd"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Disk != "sdd" || res.From != "sda" || res.ESPSHA256 != "abc123" || len(res.Added) != 2 ||
		res.Added[1] != (api.RaidAdoptJoin{Partition: "sdd3", Array: "md1"}) {
		t.Errorf("adopt result = %+v", res)
	}
	if len(res.Arrays) != 2 || res.Arrays[0].Name != "md0" || res.Arrays[1].Name != "md1" {
		t.Fatalf("adopt arrays = %+v", res.Arrays)
	}
	if m := res.Arrays[1].Members; len(m) != 4 || m[3].Name != "sdd3" || m[3].State[0] != "spare" {
		t.Errorf("md1 members after adopt = %+v; want sdd3 added as a spare", m)
	}
	if want := []string{"add /dev/md0 /dev/sdd2", "add /dev/md1 /dev/sdd3"}; !slices.Equal(md.calls, want) {
		t.Errorf("mdadm calls = %q, want %q", md.calls, want)
	}
	if _, err := b.AdoptRaidDisk(ctx, api.RaidAdoptRequest{Disk: "sde", From: "/dev/sda"}); err != nil || ad.calls[1] != "sde from sda" {
		t.Errorf("adopt with from: %v, calls %q", err, ad.calls)
	}

	// Refusals and missing disks map to the store's sentinels; bad names
	// never reach the adopter.
	ad.joins, ad.calls = nil, nil
	for _, c := range []struct {
		req  api.RaidAdoptRequest
		err  error
		is   error
		want string
	}{
		{api.RaidAdoptRequest{Disk: ""}, nil, store.ErrInvalid, `disk "": want a disk name like sdc`},
		{api.RaidAdoptRequest{Disk: "../sda"}, nil, store.ErrInvalid, `disk "../sda"`},
		{api.RaidAdoptRequest{Disk: "sdd", From: "a b"}, nil, store.ErrInvalid, `from "a b"`},
		{api.RaidAdoptRequest{Disk: "sdd"}, fmt.Errorf("raid: adopt: %w: sdd is not blank: it has partitions sdd1", raid.ErrAdoptRefused),
			store.ErrInvalid, "sdd is not blank: it has partitions sdd1"},
		{api.RaidAdoptRequest{Disk: "sdq"}, fmt.Errorf("raid: adopt: sdq: %w: no such block device", fs.ErrNotExist),
			store.ErrNotFound, "sdq: file does not exist: no such block device"},
	} {
		ad.err = c.err
		_, err := b.AdoptRaidDisk(ctx, c.req)
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("adopt %+v = %v; want %v mentioning %q", c.req, err, c.is, c.want)
		}
	}
	if len(ad.calls) != 2 {
		t.Errorf("adopter calls = %q; want only the two valid requests", ad.calls)
	}

	// A failure after some partitions joined says which, and is a 500.
	md.calls = nil
	ad.joins = []raid.AdoptJoin{{Number: 2, Array: "md0", Device: "/dev/sdf2"}, {Number: 3, Array: "md1", Device: "/dev/sdf3"}}
	ad.err = errors.New("raid: adopt sdf: add /dev/sdf4 to md2: boom")
	_, err = b.AdoptRaidDisk(ctx, api.RaidAdoptRequest{Disk: "sdf"})
	if err == nil || api.StatusFor(err) != 500 || !strings.Contains(err.Error(), "boom (already added and rebuilding: sdf2 to md0, sdf3 to md1)") {
		t.Errorf("partial adopt = %v", err)
	}

	// Without an adopter (not Linux's block layer) adopt is refused.
	b.raid.adopter = nil
	if _, err := b.AdoptRaidDisk(ctx, api.RaidAdoptRequest{Disk: "sdd"}); err == nil || !strings.Contains(err.Error(), "not available") {
		t.Errorf("adopt without an adopter = %v", err)
	}
}

func (f *fakeAdopter) SyncESPReturned(_ context.Context, parts []string) ([]raid.ESPSync, error) {
	f.calls = append(f.calls, "esp sync after "+strings.Join(parts, ","))
	return nil, f.err
}

func (f *fakeAdopter) SyncESP(_ context.Context, from string) ([]raid.ESPSync, error) {
	f.calls = append(f.calls, "esp-sync from "+from)
	if f.err != nil {
		return nil, f.err
	}
	if from == "" {
		from = "sda"
	}
	return []raid.ESPSync{{Disk: from, Before: "new", After: "new"}, {Disk: "sdb", Before: "old", After: "new", Copied: true},
		{Disk: "sdc", Before: "new", After: "new"}}, nil
}

func TestRaidESPSync(t *testing.T) {
	ctx := context.Background()
	b, _, _ := newRaidBackend(t, nil)
	ad := &fakeAdopter{}
	b.raid.adopter = ad
	res, err := b.SyncRaidESP(ctx, api.RaidESPSyncRequest{From: "/dev/sdb"})
	if err != nil {
		t.Fatal(err)
	}
	if res.From != "sdb" || len(res.Disks) != 3 || !res.Disks[1].Copied || res.Disks[2].Copied || ad.calls[0] != "esp-sync from sdb" {
		t.Errorf("esp-sync = %+v, calls %q", res, ad.calls)
	}
	if _, err := b.SyncRaidESP(ctx, api.RaidESPSyncRequest{From: "a/b"}); !errors.Is(err, store.ErrInvalid) ||
		!strings.Contains(err.Error(), `raid esp-sync: from "a/b"`) {
		t.Errorf("esp-sync with a bad name = %v", err)
	}
	ad.err = fmt.Errorf("raid: adopt: %w: no disk has partitions in sync", raid.ErrAdoptRefused)
	if _, err := b.SyncRaidESP(ctx, api.RaidESPSyncRequest{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("refused esp-sync = %v", err)
	}
	ad.err = errors.New("raid: ESP sync sdc from sda: open: EBUSY")
	if _, err := b.SyncRaidESP(ctx, api.RaidESPSyncRequest{}); err == nil || api.StatusFor(err) != 500 {
		t.Errorf("failed esp-sync = %v", err)
	}
}

// lockCheckAdopter records whether the raid manager's lock was held when
// an adoption ran.
type lockCheckAdopter struct {
	fakeAdopter
	rm       *raidManager
	unlocked bool
}

func (f *lockCheckAdopter) Adopt(ctx context.Context, disk, from string) (raid.AdoptResult, error) {
	if f.rm.mu.TryLock() {
		f.unlocked = true
		f.rm.mu.Unlock()
	}
	return f.fakeAdopter.Adopt(ctx, disk, from)
}

// TestHotplugAdoptHoldsRaidLock: the hot-plug manager's automatic
// adoption runs under the raid manager's lock, the one an install, an
// update and a replacement hold, so it never partitions a disk an
// install is writing; it waits for the lock's holder to finish.
func TestHotplugAdoptHoldsRaidLock(t *testing.T) {
	rm := newRaidManager(t.TempDir(), nil, nil)
	ad := &lockCheckAdopter{rm: rm}
	rm.adopter = ad
	la := lockedAdopter{rm}
	rm.mu.Lock() // an install runs
	done := make(chan error, 1)
	go func() {
		_, err := la.Adopt(context.Background(), "vdc", "")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the adoption ran while an install held the lock: %v", err)
	default:
	}
	rm.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ad.unlocked || len(ad.calls) != 1 || ad.calls[0] != "vdc from " {
		t.Fatalf("adoption without the lock %v, calls %v", ad.unlocked, ad.calls)
	}
	rm.adopter = nil
	if _, err := la.Adopt(context.Background(), "vdc", ""); err == nil {
		t.Fatal("adopt without an adopter: no error")
	}
}
