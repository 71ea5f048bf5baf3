package raid

import (
	"io"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

// Captured from the qemu test (Debian 6.1 kernel): a RAID1 re-adding vdb
// with a bitmap, and the same array at the end with vdb failed.
func recoveringFS() fstest.MapFS {
	return mapFS(map[string]string{
		"md0/md/array_size":         "default",
		"md0/md/array_state":        "active",
		"md0/md/bitmap/location":    "+8",
		"md0/md/chunk_size":         "0",
		"md0/md/component_size":     "64512",
		"md0/md/consistency_policy": "bitmap",
		"md0/md/degraded":           "1",
		"md0/md/dev-vda/errors":     "0",
		"md0/md/dev-vda/slot":       "0",
		"md0/md/dev-vda/state":      "in_sync",
		"md0/md/dev-vdb/errors":     "0",
		"md0/md/dev-vdb/slot":       "1",
		"md0/md/dev-vdb/state":      "spare",
		"md0/md/last_sync_action":   "recovery",
		"md0/md/level":              "raid1",
		"md0/md/metadata_version":   "1.2",
		"md0/md/mismatch_cnt":       "0",
		"md0/md/raid_disks":         "2",
		"md0/md/reshape_position":   "none",
		"md0/md/resync_start":       "none",
		"md0/md/sync_action":        "recover",
		"md0/md/sync_completed":     "32768 / 129024",
		"md0/md/sync_speed":         "16384",
		"md0/md/sync_speed_max":     "200000 (system)",
		"md0/md/uuid":               "8e826feb-89c7-fb2d-294a-8708b6b72025",
		"md0/md/rd0/state":          "in_sync",
		"sda/size":                  "1024",
		"md127/md/array_state":      "inactive",
		"md127/md/dev-sdb3/state":   "",
		"md127/md/dev-sdb3/slot":    "none",
		"md127/md/metadata_version": "1.2",
		"md127/md/raid_disks":       "0",
		"md127/md/dev-sdb3/errors":  "0",
	})
}

func mapFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for k, v := range files {
		fsys[k] = &fstest.MapFile{Data: []byte(v + "\n")}
	}
	return fsys
}

func TestReadArrayRecovering(t *testing.T) {
	a, err := ReadArray(recoveringFS(), "md0")
	if err != nil {
		t.Fatal(err)
	}
	want := ArrayStatus{
		Name: "md0", Level: "raid1", RaidDisks: 2, State: StateActive, Metadata: "1.2", Degraded: 1,
		SyncAction: SyncRecover, SyncCompleted: Progress{Done: 32768, Total: 129024, Running: true},
		SyncSpeed: 16384, ComponentSize: 64512, Bitmap: true,
		Members: []Member{
			{Name: "vda", Slot: 0, State: []string{"in_sync"}},
			{Name: "vdb", Slot: 1, State: []string{"spare"}},
		},
	}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("ReadArray =\n%+v\nwant\n%+v", a, want)
	}
	if a.Healthy() {
		t.Error("a recovering array is Healthy")
	}
	if f := a.SyncCompleted.Fraction(); f < 0.25 || f > 0.26 {
		t.Errorf("Fraction = %v", f)
	}
	if m, ok := a.Member("vdb"); !ok || !m.Spare() || m.InSync() || m.Faulty() {
		t.Errorf("vdb = %+v, %v", m, ok)
	}
}

func TestReadArrayFinal(t *testing.T) {
	fsys := recoveringFS()
	for k, v := range map[string]string{
		"md0/md/array_state":    "clean",
		"md0/md/sync_action":    "idle",
		"md0/md/sync_completed": "none",
		"md0/md/sync_speed":     "none",
		"md0/md/dev-vdb/slot":   "none",
		"md0/md/dev-vdb/state":  "faulty",
		"md0/md/dev-vdb/errors": "3",
	} {
		fsys[k] = &fstest.MapFile{Data: []byte(v + "\n")}
	}
	for _, k := range []string{"md0/md/dev-vda/state", "md0/md/dev-vda/slot", "md0/md/dev-vda/errors"} {
		delete(fsys, k)
	}
	fsys["md0/md/dev-vdc/state"] = &fstest.MapFile{Data: []byte("in_sync\n")}
	fsys["md0/md/dev-vdc/slot"] = &fstest.MapFile{Data: []byte("0\n")}
	a, err := ReadArray(fsys, "md0")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != StateClean || a.SyncAction != SyncIdle || a.SyncCompleted.Running || a.SyncSpeed != 0 || a.Degraded != 1 {
		t.Errorf("status = %+v", a)
	}
	// The slotted member sorts first; the faulty one has no slot.
	want := []Member{{Name: "vdc", Slot: 0, State: []string{"in_sync"}}, {Name: "vdb", Slot: -1, State: []string{"faulty"}, Errors: 3}}
	if !reflect.DeepEqual(a.Members, want) {
		t.Errorf("members = %+v, want %+v", a.Members, want)
	}
	if a.Healthy() {
		t.Error("a degraded array is Healthy")
	}
	fsys["md0/md/degraded"] = &fstest.MapFile{Data: []byte("0\n")}
	if a, _ := ReadArray(fsys, "md0"); !a.Healthy() {
		t.Errorf("clean, idle, not degraded is not Healthy: %+v", a)
	}
}

func TestReadArrayInactiveAndErrors(t *testing.T) {
	a, err := ReadArray(recoveringFS(), "md127")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != StateInactive || a.State.Running() || a.Level != "" || len(a.Members) != 1 || a.Members[0].Slot != -1 || a.Members[0].State != nil {
		t.Errorf("inactive array = %+v", a)
	}
	for _, tt := range []struct {
		name  string
		patch map[string]string
		err   string
	}{
		{"md0", map[string]string{"md0/md/degraded": "x"}, `degraded "x"`},
		{"md0", map[string]string{"md0/md/sync_completed": "12"}, "sync_completed"},
		{"md0", map[string]string{"md0/md/dev-vdb/slot": "-2"}, "member vdb"},
		{"sda", nil, "not an md array"},
		{"nope", nil, "not an md array"},
		{"../x", nil, "bad name"},
	} {
		fsys := recoveringFS()
		for k, v := range tt.patch {
			fsys[k] = &fstest.MapFile{Data: []byte(v)}
		}
		if _, err := ReadArray(fsys, tt.name); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ReadArray(%s, %v) error = %v, want %q", tt.name, tt.patch, err, tt.err)
		}
	}
}

func TestListArrays(t *testing.T) {
	got, err := ListArrays(recoveringFS())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"md0", "md127"}) {
		t.Errorf("ListArrays = %v", got)
	}
}

func TestParsers(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Progress
		bad  bool
	}{
		{"none", Progress{}, false},
		{"", Progress{}, false},
		{"delayed", Progress{Running: true, Delayed: true}, false},
		{"32768 / 129024\n", Progress{32768, 129024, true, false}, false},
		{"0/8", Progress{0, 8, true, false}, false},
		{"1 / x", Progress{}, true},
		{"-1 / 2", Progress{}, true},
		{"12", Progress{}, true},
	} {
		got, err := ParseSyncCompleted(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseSyncCompleted(%q) = %+v, %v", tt.in, got, err)
		}
	}
	for in, want := range map[string][]string{
		"in_sync\n":                        {"in_sync"},
		"faulty":                           {"faulty"},
		"in_sync,write_mostly":             {"in_sync", "write_mostly"},
		"spare,want_replacement,blocked\n": {"spare", "want_replacement", "blocked"},
		"":                                 nil,
	} {
		if got := ParseMemberState(in); !reflect.DeepEqual(got, want) {
			t.Errorf("ParseMemberState(%q) = %v, want %v", in, got, want)
		}
	}
	for in, want := range map[string]int{"none": -1, "0": 0, "3\n": 3} {
		if got, err := ParseSlot(in); err != nil || got != want {
			t.Errorf("ParseSlot(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "-1", "x"} {
		if _, err := ParseSlot(bad); err == nil {
			t.Errorf("ParseSlot(%q) succeeded", bad)
		}
	}
	for s, running := range map[ArrayState]bool{StateClean: true, StateActive: true, StateReadAuto: true, StateInactive: false, StateClear: false, StateBroken: false, "": false} {
		if s.Running() != running {
			t.Errorf("%q.Running() = %v", s, !running)
		}
	}
}

func FuzzParseSyncCompleted(f *testing.F) {
	for _, s := range []string{"none", "delayed", "32768 / 129024", "1/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseSyncCompleted(s)
		if err != nil {
			return
		}
		if p.Done < 0 || p.Total < 0 || (!p.Running && (p.Done != 0 || p.Total != 0)) {
			t.Fatalf("ParseSyncCompleted(%q) = %+v", s, p)
		}
	})
}

// showFS is a file system whose files act as sysfs attributes do: each
// read calls show() again and returns its output from the file's offset.
// Successive show() calls return successive values of shows.
type showFS struct {
	fs.FS
	name  string
	shows []string
}

type showFile struct {
	fs.File
	fsys  *showFS
	calls int
	off   int
}

func (s *showFS) Open(name string) (fs.File, error) {
	if name != s.name {
		return s.FS.Open(name)
	}
	f, err := s.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return &showFile{File: f, fsys: s}, nil
}

func (f *showFile) Read(p []byte) (int, error) {
	out := f.fsys.shows[min(f.calls, len(f.fsys.shows)-1)]
	f.calls++
	if f.off >= len(out) {
		return 0, io.EOF
	}
	n := copy(p, out[f.off:])
	f.off += n
	return n, nil
}

// TestReadArraySyncCompletedChanging reads sync_completed while it
// changes between reads: the status is the first value, not two spliced
// (read to EOF, the second read returned "24\n" after "0 / 129024\n").
func TestReadArraySyncCompletedChanging(t *testing.T) {
	fsys := &showFS{
		FS:    recoveringFS(),
		name:  "md0/md/sync_completed",
		shows: []string{"0 / 129024\n", "4096 / 129024\n"},
	}
	a, err := ReadArray(fsys, "md0")
	if err != nil {
		t.Fatal(err)
	}
	if a.SyncCompleted.Done != 0 || a.SyncCompleted.Total != 129024 {
		t.Errorf("sync_completed = %+v, want 0 of 129024", a.SyncCompleted)
	}
}
