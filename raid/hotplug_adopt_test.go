package raid

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestAdoptCandidate(t *testing.T) {
	degraded := HotplugArray{Status: ArrayStatus{Name: "md0", Level: "raid1", State: "clean", RaidDisks: 2, Degraded: 1}}
	whole := HotplugArray{Status: ArrayStatus{Name: "md0", Level: "raid1", State: "clean", RaidDisks: 2}}
	devs := []HotplugDevice{{Name: "vdd"}, {Name: "vdc"}, {Name: "sda1", Partition: true}}
	rep := HotplugReport{Blank: []string{"vdd", "sda1", "vdc"}}
	for _, c := range []struct {
		name   string
		arrays []HotplugArray
		rep    HotplugReport
		skip   map[string]bool
		want   string
	}{
		{"degraded: first whole blank disk", []HotplugArray{degraded}, rep, nil, "vdc"},
		{"skipped disk", []HotplugArray{degraded}, rep, map[string]bool{"vdc": true}, "vdd"},
		{"all skipped", []HotplugArray{degraded}, rep, map[string]bool{"vdc": true, "vdd": true}, ""},
		{"nothing degraded", []HotplugArray{whole}, rep, nil, ""},
		{"member being removed", []HotplugArray{whole}, HotplugReport{Blank: rep.Blank,
			Actions: []Action{{Kind: ActFail, Array: "md0", Device: "vdb"}, {Kind: ActRemove, Array: "md0", Device: "vdb"}}}, nil, "vdc"},
		{"degraded raid0 is no reason", []HotplugArray{{Status: ArrayStatus{Name: "md1", Level: "raid0", State: "clean", Degraded: 1}}}, rep, nil, ""},
		{"stopped array is no reason", []HotplugArray{{Status: ArrayStatus{Name: "md1", Level: "raid1", State: "inactive", Degraded: 1}}}, rep, nil, ""},
		{"only partitions blank", []HotplugArray{degraded}, HotplugReport{Blank: []string{"sda1"}}, nil, ""},
	} {
		if got := AdoptCandidate(c.arrays, devs, c.rep, c.skip); got != c.want {
			t.Errorf("%s: AdoptCandidate = %q, want %q", c.name, got, c.want)
		}
	}
}

type fakeDiskAdopter struct {
	calls []string
	err   error
}

func (f *fakeDiskAdopter) Adopt(_ context.Context, disk, from string) (AdoptResult, error) {
	f.calls = append(f.calls, disk+" from "+from)
	return AdoptResult{Disk: disk, From: "vda"}, f.err
}

func TestManagerAutoAdopt(t *testing.T) {
	newManager := func(ad DiskAdopter, auto bool) *Manager {
		block, class := hotplugSys()
		examined := map[string]string{"/dev/vdc": "MD_LEVEL=raid1\nMD_DEVICES=2\nMD_UUID=" + uuidMdadm + "\nMD_EVENTS=40\n"}
		run := func(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
			if len(args) == 3 && args[0] == "--examine" {
				if out := examined[args[2]]; out != "" {
					return []byte(out), nil, nil
				}
				return (&fakeRunner{fail: map[string]string{"x": "mdadm: No md superblock detected on " + args[2] + ".\n"}}).run(ctx, "mdadm", "x")
			}
			return nil, nil, nil
		}
		return &Manager{Mdadm: &Mdadm{Run: run}, Block: block, ClassBlock: class, Adopter: ad, AutoAdopt: auto}
	}
	ctx := context.Background()

	// Off by default: the blank vdd is only reported.
	ad := &fakeDiskAdopter{}
	if rep, err := newManager(ad, false).Evaluate(ctx); err != nil || len(ad.calls) != 0 || !slices.Equal(rep.Blank, []string{"vdd"}) {
		t.Errorf("AutoAdopt off: adopter calls %q, blank %q, %v", ad.calls, rep.Blank, err)
	}

	// On: vdb vanished from md0, so the blank vdd is adopted.
	m := newManager(ad, true)
	if _, err := m.Evaluate(ctx); err != nil || !slices.Equal(ad.calls, []string{"vdd from "}) {
		t.Errorf("AutoAdopt on: adopter calls %q, %v", ad.calls, err)
	}

	// A refusal is logged, not an error, and the disk is not tried again
	// while it stays.
	ad = &fakeDiskAdopter{err: fmt.Errorf("raid: adopt: %w: vdd is too small", ErrAdoptRefused)}
	m = newManager(ad, true)
	for range 2 {
		if _, err := m.Evaluate(ctx); err != nil {
			t.Errorf("evaluate with a refused adopt: %v", err)
		}
	}
	if len(ad.calls) != 1 {
		t.Errorf("refused disk tried %d times; want once", len(ad.calls))
	}
	// A failure is an evaluation error.
	ad = &fakeDiskAdopter{err: errors.New("raid: adopt vdd: write GPT: EIO")}
	if _, err := newManager(ad, true).Evaluate(ctx); err == nil || len(ad.calls) != 1 {
		t.Errorf("failed adopt: %v, calls %q", err, ad.calls)
	}
}
