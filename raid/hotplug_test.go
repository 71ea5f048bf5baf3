package raid

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func mem(name string, slot int, state ...string) Member {
	return Member{Name: name, Slot: slot, State: state}
}

func raid1(name string, degraded int, members ...Member) ArrayStatus {
	return ArrayStatus{Name: name, Level: "raid1", RaidDisks: 2, State: StateClean, Degraded: degraded, SyncAction: SyncIdle, Members: members}
}

func dev(name, uuid string) HotplugDevice {
	d := HotplugDevice{Name: name}
	if uuid != "" {
		d.Superblock = Superblock{UUID: uuid, Populated: true}
	}
	return d
}

const (
	uuidSys   = "8e826feb-89c7-fb2d-294a-8708b6b72025"
	uuidMdadm = "8e826feb:89c7fb2d:294a8708:b6b72025"
	uuidOther = "11111111:22222222:33333333:44444444"
)

func TestDecide(t *testing.T) {
	tests := []struct {
		name    string
		arrays  []HotplugArray
		devices []HotplugDevice
		want    []string // Action.String without the reason
		blank   []string
		foreign []string
	}{
		{
			name:    "healthy: nothing to do",
			arrays:  []HotplugArray{{Status: raid1("md0", 0, mem("vda", 0, "in_sync"), mem("vdb", 1, "in_sync")), UUID: uuidSys}},
			devices: []HotplugDevice{dev("vda", ""), dev("vdb", "")},
		},
		{
			name:    "vanished in-sync member: fail then remove",
			arrays:  []HotplugArray{{Status: raid1("md0", 0, mem("vda", 0, "in_sync"), mem("vdb", 1, "in_sync")), UUID: uuidSys}},
			devices: []HotplugDevice{dev("vda", "")},
			want:    []string{"fail md0 vdb", "remove md0 vdb"},
		},
		{
			name:    "vanished member md already failed: remove only",
			arrays:  []HotplugArray{{Status: raid1("md0", 1, mem("vda", 0, "in_sync"), mem("vdb", -1, "faulty")), UUID: uuidSys}},
			devices: []HotplugDevice{dev("vda", "")},
			want:    []string{"remove md0 vdb"},
		},
		{
			name:    "detached member whose name was reused: remove it, re-add the new device",
			arrays:  []HotplugArray{{Status: raid1("md0", 1, mem("vda", 0, "in_sync"), mem("vdb", -1, "faulty")), UUID: uuidSys, Detached: []string{"vdb"}}},
			devices: []HotplugDevice{dev("vda", ""), dev("vdb", uuidMdadm)},
			want:    []string{"remove md0 vdb", "re-add md0 vdb"},
		},
		{
			name:    "returned device with the array's superblock: re-add",
			arrays:  []HotplugArray{{Status: raid1("md0", 1, mem("vda", 0, "in_sync")), UUID: uuidSys}},
			devices: []HotplugDevice{dev("vda", ""), dev("vdc", uuidMdadm)},
			want:    []string{"re-add md0 vdc"},
		},
		{
			name:    "blank device: reported, not added",
			arrays:  []HotplugArray{{Status: raid1("md0", 1, mem("vda", 0, "in_sync")), UUID: uuidSys}},
			devices: []HotplugDevice{dev("vda", ""), dev("vdc", "")},
			blank:   []string{"vdc"},
		},
		{
			name:    "superblock of another array: foreign",
			arrays:  []HotplugArray{{Status: raid1("md0", 1, mem("vda", 0, "in_sync")), UUID: uuidSys}},
			devices: []HotplugDevice{dev("vda", ""), dev("vdc", uuidOther)},
			foreign: []string{"vdc"},
		},
		{
			name:    "array not missing anything: a stale old member is foreign",
			arrays:  []HotplugArray{{Status: raid1("md0", 0, mem("vda", 0, "in_sync"), mem("vdc", 1, "in_sync")), UUID: uuidSys}},
			devices: []HotplugDevice{dev("vda", ""), dev("vdb", uuidMdadm), dev("vdc", "")},
			foreign: []string{"vdb"},
		},
		{
			name:    "one free slot, two candidates: only the first is re-added",
			arrays:  []HotplugArray{{Status: raid1("md0", 1, mem("vda", 0, "in_sync")), UUID: uuidSys}},
			devices: []HotplugDevice{dev("vda", ""), dev("vdc", uuidMdadm), dev("vdb", uuidMdadm)},
			want:    []string{"re-add md0 vdb"},
			foreign: []string{"vdc"},
		},
		{
			name:    "vanish and return in one pass: removed, then re-added under its new name",
			arrays:  []HotplugArray{{Status: raid1("md0", 0, mem("vda", 0, "in_sync"), mem("vdb", 1, "in_sync")), UUID: uuidSys}},
			devices: []HotplugDevice{dev("vda", ""), dev("vdc", uuidMdadm)},
			want:    []string{"fail md0 vdb", "remove md0 vdb", "re-add md0 vdc"},
		},
		{
			name:    "all members gone: left alone",
			arrays:  []HotplugArray{{Status: raid1("md0", 0, mem("vda", 0, "in_sync"), mem("vdb", 1, "in_sync")), UUID: uuidSys}},
			devices: []HotplugDevice{dev("sda", "")},
			blank:   []string{"sda"},
		},
		{
			name:    "inactive array takes nothing back",
			arrays:  []HotplugArray{{Status: ArrayStatus{Name: "md0", State: StateInactive, RaidDisks: 2, Members: []Member{mem("vda", 0)}}, UUID: uuidSys}},
			devices: []HotplugDevice{dev("vda", ""), dev("vdb", uuidMdadm)},
			foreign: []string{"vdb"},
		},
		{
			name:    "raid0 takes nothing back",
			arrays:  []HotplugArray{{Status: ArrayStatus{Name: "md0", Level: "raid0", State: StateClean, RaidDisks: 2, Members: []Member{mem("vda", 0, "in_sync")}}, UUID: uuidSys}},
			devices: []HotplugDevice{dev("vda", ""), dev("vdb", uuidMdadm)},
			foreign: []string{"vdb"},
		},
		{
			name: "two arrays, partitions",
			arrays: []HotplugArray{
				{Status: raid1("md1", 0, mem("sda3", 0, "in_sync"), mem("sdb3", 1, "in_sync")), UUID: uuidOther},
				{Status: raid1("md0", 1, mem("sda2", 0, "in_sync")), UUID: uuidSys},
			},
			devices: []HotplugDevice{dev("sda2", ""), dev("sda3", ""), dev("sdb2", uuidMdadm)},
			want:    []string{"re-add md0 sdb2", "fail md1 sdb3", "remove md1 sdb3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Decide(tt.arrays, tt.devices)
			if len(r.Faulty) > 0 || len(r.Withheld) > 0 {
				t.Errorf("faulty %q withheld %q, want none", r.Faulty, r.Withheld)
			}
			var got []string
			for _, a := range r.Actions {
				got = append(got, strings.TrimSuffix(a.String(), " ("+a.Reason+")"))
				if a.Reason == "" {
					t.Errorf("action %v has no reason", a)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("actions = %q, want %q", got, tt.want)
			}
			if !reflect.DeepEqual(r.Blank, tt.blank) || !reflect.DeepEqual(r.Foreign, tt.foreign) {
				t.Errorf("blank %q foreign %q, want %q %q", r.Blank, r.Foreign, tt.blank, tt.foreign)
			}
		})
	}
}

func TestNormalizeUUID(t *testing.T) {
	if a, b := NormalizeUUID(uuidSys), NormalizeUUID(strings.ToUpper(uuidMdadm)); a != b || a != "8e826feb89c7fb2d294a8708b6b72025" {
		t.Errorf("NormalizeUUID: %q vs %q", a, b)
	}
}

// hotplugSys is /sys/block and /sys/class/block with md0 over vda and
// vdb, where vdb's device is gone, and a returned vdc.
func hotplugSys() (block, class fstest.MapFS) {
	block = fstest.MapFS{
		"md0/md/level":             {Data: []byte("raid1\n")},
		"md0/md/array_state":       {Data: []byte("clean\n")},
		"md0/md/raid_disks":        {Data: []byte("2\n")},
		"md0/md/degraded":          {Data: []byte("0\n")},
		"md0/md/sync_action":       {Data: []byte("idle\n")},
		"md0/md/uuid":              {Data: []byte(uuidSys + "\n")},
		"md0/md/dev-vda/state":     {Data: []byte("in_sync\n")},
		"md0/md/dev-vda/slot":      {Data: []byte("0\n")},
		"md0/md/dev-vda/block/dev": {Data: []byte("254:0\n")},
		"md0/md/dev-vdb/state":     {Data: []byte("in_sync\n")},
		"md0/md/dev-vdb/slot":      {Data: []byte("1\n")},
	}
	class = fstest.MapFS{
		"vda/size":           {Data: []byte("131072\n")},
		"vda/holders/md0":    {Data: []byte{}},
		"vdc/size":           {Data: []byte("131072\n")},
		"vdd/size":           {Data: []byte("131072\n")},
		"vde/size":           {Data: []byte("0\n")}, // empty: skipped
		"sda/size":           {Data: []byte("131072\n")},
		"sda/sda1/partition": {Data: []byte("1\n")}, // partitioned disk: skipped
		"sda1/size":          {Data: []byte("1024\n")},
		"sda1/holders/dm-0":  {Data: []byte{}}, // held: skipped
		"loop0/size":         {Data: []byte("8\n")},
		"md0/size":           {Data: []byte("131072\n")},
	}
	return block, class
}

func TestManagerEvaluate(t *testing.T) {
	block, class := hotplugSys()
	f := &fakeRunner{}
	examined := map[string]string{
		"/dev/vdc": "MD_LEVEL=raid1\nMD_DEVICES=2\nMD_UUID=" + uuidMdadm + "\nMD_EVENTS=40\n",
		"/dev/vdd": "",
	}
	run := func(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
		if len(args) == 3 && args[0] == "--examine" {
			f.calls = append(f.calls, append([]string{name}, args...))
			if out := examined[args[2]]; out != "" {
				return []byte(out), nil, nil
			}
			return (&fakeRunner{fail: f.fail}).run(ctx, "mdadm", "blank")
		}
		return f.run(ctx, name, args...)
	}
	f.fail = map[string]string{"blank": "mdadm: No md superblock detected on /dev/vdd.\n"}
	var applied []string
	esps := &fakeESPSyncer{}
	m := &Manager{
		Mdadm: &Mdadm{Path: "mdadm", Run: run}, Block: block, ClassBlock: class,
		OnAction:  func(a Action, err error) { applied = append(applied, a.String()) },
		ESPSyncer: esps,
	}
	rep, err := m.Evaluate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The returned disk's ESP is brought up to date after its re-add.
	if !reflect.DeepEqual(esps.calls, [][]string{{"vdc"}}) {
		t.Errorf("ESP syncs %q, want one for the re-added vdc", esps.calls)
	}
	var got []string
	for _, c := range f.calls {
		got = append(got, strings.Join(c, " "))
	}
	want := []string{
		"mdadm --examine --export /dev/vdc",
		"mdadm --examine --export /dev/vdd",
		"mdadm --manage /dev/md0 --fail vdb",
		"mdadm --manage /dev/md0 --remove vdb",
		"mdadm --manage /dev/md0 --re-add /dev/vdc",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mdadm calls:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(applied) != 3 || !reflect.DeepEqual(rep.Blank, []string{"vdd"}) {
		t.Errorf("applied %q, blank %q", applied, rep.Blank)
	}
}

func TestManagerEvaluateErrors(t *testing.T) {
	block, class := hotplugSys()
	f := &fakeRunner{fail: map[string]string{"--remove": "mdadm: hot remove failed for vdb: Device or resource busy\n"}}
	m := &Manager{Mdadm: &Mdadm{Run: f.run}, Block: block, ClassBlock: class}
	_, err := m.Evaluate(context.Background())
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "Device or resource busy") {
		t.Fatalf("Evaluate error = %v, want mdadm's busy remove", err)
	}
	// A re-add md refused: the disk is no member again, its ESP is left.
	f = &fakeRunner{fail: map[string]string{"--re-add": "mdadm: --re-add for /dev/vdc to /dev/md0 is not possible\n"}}
	run := func(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
		if len(args) == 3 && args[0] == "--examine" && args[2] == "/dev/vdc" {
			return []byte("MD_LEVEL=raid1\nMD_DEVICES=2\nMD_UUID=" + uuidMdadm + "\nMD_EVENTS=40\n"), nil, nil
		}
		return f.run(ctx, name, args...)
	}
	esps := &fakeESPSyncer{}
	m = &Manager{Mdadm: &Mdadm{Run: run}, Block: block, ClassBlock: class, ESPSyncer: esps}
	if _, err := m.Evaluate(context.Background()); err == nil || !strings.Contains(err.Error(), "not possible") {
		t.Fatalf("Evaluate error = %v, want mdadm's refused re-add", err)
	}
	if len(esps.calls) != 0 {
		t.Errorf("ESP synced after a failed re-add: %q", esps.calls)
	}
	if _, err := (&Manager{}).Evaluate(context.Background()); err == nil || !strings.Contains(err.Error(), "needs Mdadm") {
		t.Errorf("unconfigured Manager: %v", err)
	}
}

// fakeTimers hands out channels for Manager.After and fires them on
// demand.
type fakeTimers struct {
	asked chan time.Duration
	fire  map[time.Duration]chan time.Time
}

func newFakeTimers() *fakeTimers {
	return &fakeTimers{asked: make(chan time.Duration, 16), fire: map[time.Duration]chan time.Time{}}
}

func (f *fakeTimers) after(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	f.fire[d] = ch // only read after the Manager waits, see wait
	f.asked <- d
	return ch
}

func TestManagerRun(t *testing.T) {
	block, class := hotplugSys()
	evals := make(chan struct{}, 16)
	failRemove := true
	run := func(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
		if args[0] == "--examine" {
			return []byte("MD_UUID=" + uuidOther + "\n"), nil, nil
		}
		if args[2] == "--fail" {
			evals <- struct{}{}
		}
		if args[2] == "--remove" && failRemove {
			return (&fakeRunner{fail: map[string]string{"x": "mdadm: busy"}}).run(ctx, name, "x")
		}
		return nil, nil, nil
	}
	timers := newFakeTimers()
	m := &Manager{Mdadm: &Mdadm{Run: run}, Block: block, ClassBlock: class, Interval: time.Minute, RetryDelay: time.Second, After: timers.after}
	ctx, cancel := context.WithCancel(context.Background())
	triggers := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, triggers) }()

	expect := func(what string, want ...time.Duration) {
		t.Helper()
		<-evals
		for _, w := range want {
			if d := <-timers.asked; d != w {
				t.Fatalf("%s: timer for %v, want %v", what, d, w)
			}
		}
	}
	expect("start", time.Minute, time.Second) // interval, then retry after the failed remove
	timers.fire[time.Second] <- time.Time{}
	expect("retry", time.Second)
	failRemove = false // read by Run only after the next wake-up
	triggers <- struct{}{}
	expect("trigger") // succeeded: no retry timer
	timers.fire[time.Minute] <- time.Time{}
	expect("interval", time.Minute)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
}

func TestManagerRunExamineErrorNoRetry(t *testing.T) {
	block, class := hotplugSys()
	evals := make(chan struct{}, 16)
	run := func(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
		if args[0] == "--examine" {
			evals <- struct{}{}
			return (&fakeRunner{fail: map[string]string{"x": "mdadm: cannot open /dev/vdc: Input/output error"}}).run(ctx, name, "x")
		}
		return nil, nil, nil
	}
	timers := newFakeTimers()
	m := &Manager{Mdadm: &Mdadm{Run: run}, Block: block, ClassBlock: class, Interval: time.Minute, After: timers.after}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	triggers := make(chan struct{})
	go func() { done <- m.Run(ctx, triggers) }()
	if d := <-timers.asked; d != time.Minute {
		t.Fatalf("timer %v", d)
	}
	// The send completes once Run waits again, past its retry decision.
	triggers <- struct{}{}
	select {
	case d := <-timers.asked:
		t.Errorf("a failed examine asked for a %v retry timer", d)
	default:
	}
	if len(evals) < 2 {
		t.Errorf("examined %d devices, want vdc and vdd", len(evals))
	}
	cancel()
	<-done
}

// TestDecideKicked: md kicking a member for I/O errors is no pull: its
// device stays, so nothing is failed or removed, the member is reported,
// and once out of its array (an operator's mdadm --remove) the device is
// not re-added while it is the one md kicked.
func TestDecideKicked(t *testing.T) {
	kicked := func(d HotplugDevice) HotplugDevice { d.Kicked = true; return d }
	r := Decide([]HotplugArray{
		{Status: raid1("md0", 1, mem("vda1", 0, "in_sync"), mem("vdb1", -1, "faulty", "write_error")), UUID: uuidSys},
		{Status: raid1("md1", 0, mem("vda2", 0, "in_sync"), mem("vdb2", 1, "in_sync")), UUID: uuidOther},
	}, []HotplugDevice{dev("vda1", ""), dev("vdb1", ""), dev("vda2", ""), dev("vdb2", "")})
	if len(r.Actions) != 0 || !reflect.DeepEqual(r.Faulty, []string{"md0/vdb1"}) || r.Withheld != nil {
		t.Errorf("kicked member present: actions %v faulty %q withheld %q; want none, md0/vdb1, none", r.Actions, r.Faulty, r.Withheld)
	}
	// Removed by hand: the kicked device is withheld, a returned one
	// (not kicked) re-added.
	arrays := []HotplugArray{{Status: raid1("md0", 1, mem("vda1", 0, "in_sync")), UUID: uuidSys}}
	r = Decide(arrays, []HotplugDevice{dev("vda1", ""), kicked(dev("vdb1", uuidMdadm))})
	if len(r.Actions) != 0 || !reflect.DeepEqual(r.Withheld, []string{"vdb1"}) || r.Foreign != nil {
		t.Errorf("kicked device out of its array: actions %v withheld %q foreign %q; want none, vdb1, none", r.Actions, r.Withheld, r.Foreign)
	}
	r = Decide(arrays, []HotplugDevice{dev("vda1", ""), dev("vdb1", uuidMdadm)})
	if len(r.Actions) != 1 || r.Actions[0].Kind != ActReAdd || r.Withheld != nil {
		t.Errorf("device not kicked: actions %v withheld %q; want a re-add", r.Actions, r.Withheld)
	}
	// A kicked device of an array missing nothing stays foreign.
	r = Decide([]HotplugArray{{Status: raid1("md0", 0, mem("vda1", 0, "in_sync"), mem("vdc1", 1, "in_sync")), UUID: uuidSys}},
		[]HotplugDevice{dev("vda1", ""), dev("vdc1", ""), kicked(dev("vdb1", uuidMdadm))})
	if !reflect.DeepEqual(r.Foreign, []string{"vdb1"}) || r.Withheld != nil {
		t.Errorf("kicked device, array whole: foreign %q withheld %q", r.Foreign, r.Withheld)
	}
}

// TestManagerKicked follows a member md kicked for I/O errors through
// the Manager: reported (not failed or removed) while in the array, not
// re-added after an operator removed it, forgotten once its disk is
// pulled, and re-added when a disk with its superblock comes back.
func TestManagerKicked(t *testing.T) {
	block, class := hotplugSys()
	block["md0/md/dev-vdb/state"] = &fstest.MapFile{Data: []byte("faulty,write_error\n")}
	block["md0/md/dev-vdb/slot"] = &fstest.MapFile{Data: []byte("none\n")}
	block["md0/md/dev-vdb/block/dev"] = &fstest.MapFile{Data: []byte("254:16\n")}
	block["md0/md/degraded"] = &fstest.MapFile{Data: []byte("1\n")}
	class["vdb/size"] = &fstest.MapFile{Data: []byte("131072\n")}
	class["vdb/holders/md0"] = &fstest.MapFile{Data: []byte{}}
	delete(class, "vdc/size")
	delete(class, "vdd/size")
	var calls []string
	run := func(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
		calls = append(calls, strings.Join(args, " "))
		if args[0] == "--examine" {
			return []byte("MD_LEVEL=raid1\nMD_DEVICES=2\nMD_UUID=" + uuidMdadm + "\n"), nil, nil
		}
		return nil, nil, nil
	}
	var logs strings.Builder
	m := &Manager{Mdadm: &Mdadm{Run: run}, Block: block, ClassBlock: class, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	eval := func(what string, wantCalls ...string) HotplugReport {
		t.Helper()
		calls = nil
		rep, err := m.Evaluate(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !reflect.DeepEqual(calls, wantCalls) {
			t.Errorf("%s: mdadm %q, want %q", what, calls, wantCalls)
		}
		return rep
	}
	rep := eval("kicked, present")
	if !reflect.DeepEqual(rep.Faulty, []string{"md0/vdb"}) || !strings.Contains(logs.String(), "md kicked members") || !strings.Contains(logs.String(), "md0/vdb") {
		t.Errorf("faulty %q, log:\n%s", rep.Faulty, logs.String())
	}
	logs.Reset()
	eval("again")
	if logs.Len() != 0 {
		t.Errorf("the same faulty member logged twice:\n%s", logs.String())
	}
	// The operator removes it; the disk stays.
	for _, f := range []string{"state", "slot", "block/dev"} {
		delete(block, "md0/md/dev-vdb/"+f)
	}
	delete(class, "vdb/holders/md0")
	rep = eval("removed by hand", "--examine --export /dev/vdb")
	if !reflect.DeepEqual(rep.Withheld, []string{"vdb"}) || !strings.Contains(logs.String(), "not re-adding") {
		t.Errorf("withheld %q, log:\n%s", rep.Withheld, logs.String())
	}
	// Pulled, then a disk with the superblock is back under the name.
	delete(class, "vdb/size")
	eval("pulled")
	class["vdb/size"] = &fstest.MapFile{Data: []byte("131072\n")}
	eval("back", "--examine --export /dev/vdb", "--manage /dev/md0 --re-add /dev/vdb")

	// Kicked again, then pulled and back between two passes: md's
	// member is detached (its old device is gone), so the device under
	// the name is a new disk, re-added once the old member is out (the
	// next pass examines it).
	block["md0/md/dev-vdb/state"] = &fstest.MapFile{Data: []byte("faulty\n")}
	block["md0/md/dev-vdb/slot"] = &fstest.MapFile{Data: []byte("none\n")}
	block["md0/md/dev-vdb/block/dev"] = &fstest.MapFile{Data: []byte("254:16\n")}
	class["vdb/holders/md0"] = &fstest.MapFile{Data: []byte{}}
	eval("kicked again")
	delete(block, "md0/md/dev-vdb/block/dev")
	delete(class, "vdb/holders/md0")
	eval("swapped between passes", "--manage /dev/md0 --remove vdb")
	for _, f := range []string{"state", "slot"} {
		delete(block, "md0/md/dev-vdb/"+f)
	}
	eval("after the remove", "--examine --export /dev/vdb", "--manage /dev/md0 --re-add /dev/vdb")
}

// fakeESPSyncer records SyncESPReturned calls.
type fakeESPSyncer struct{ calls [][]string }

func (f *fakeESPSyncer) SyncESPReturned(_ context.Context, parts []string) ([]ESPSync, error) {
	f.calls = append(f.calls, parts)
	return nil, nil
}
