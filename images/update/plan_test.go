package update

import (
	"strings"
	"testing"

	"ftnas/images/esp"
)

// loaderBoot is systemd-boot's part: pick the entry, count a try down.
func loaderBoot(t *testing.T, es Entries) string {
	t.Helper()
	var all []esp.EntryName
	for _, e := range es {
		all = append(all, e)
	}
	e, ok := esp.Chosen(all)
	if !ok {
		t.Fatal("no entry")
	}
	if e.Counting() && e.Left > 0 {
		e.Left--
		e.Done++
		es[e.Slot] = e
	}
	return e.Slot
}

func apply(t *testing.T, es Entries, renames []Rename) {
	t.Helper()
	for _, r := range renames {
		from, err := esp.ParseEntryName(r.From)
		if err != nil {
			t.Fatal(err)
		}
		to, err := esp.ParseEntryName(r.To)
		if err != nil {
			t.Fatal(err)
		}
		if es[from.Slot] != from || to.Slot != from.Slot {
			t.Fatalf("rename %v: entries %v", r, es)
		}
		es[to.Slot] = to
	}
}

func entries(t *testing.T, names ...string) Entries {
	t.Helper()
	es, err := ParseEntries(names)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestUpdateCycle walks an update that comes up, then one that does not.
func TestUpdateCycle(t *testing.T) {
	disk := entries(t, "ftnas-1-a.conf", "ftnas-0-b.conf", "README")
	if got := loaderBoot(t, disk); got != "a" {
		t.Fatalf("fresh install boots %s", got)
	}
	// Update from a to b. Every step in between boots a.
	es := entries(t, "ftnas-1-a.conf", "ftnas-0-b.conf")
	prep, err := PlanPrepare(es, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	if len(prep) != 1 || prep[0] != (Rename{"ftnas-0-b.conf", "ftnas-0-b+0.conf"}) {
		t.Fatalf("prepare %v", prep)
	}
	apply(t, disk, prep)
	if loaderBoot(t, copyOf(disk)) != "a" {
		t.Fatal("a half-written b would boot")
	}
	sw, err := PlanSwitch(es, "a", "b", 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []Rename{{"ftnas-1-a.conf", "ftnas-0-a.conf"}, {"ftnas-0-b+0.conf", "ftnas-1-b+3.conf"}}
	if len(sw) != 2 || sw[0] != want[0] || sw[1] != want[1] {
		t.Fatalf("switch %v, want %v", sw, want)
	}
	apply(t, disk, sw[:1])
	if loaderBoot(t, copyOf(disk)) != "a" {
		t.Fatal("between the renames, b would boot")
	}
	apply(t, disk, sw[1:])
	// b comes up on its first try and blesses itself.
	if got := loaderBoot(t, disk); got != "b" {
		t.Fatalf("after the switch %s boots", got)
	}
	if disk["b"].String() != "ftnas-1-b+2-1.conf" {
		t.Fatalf("entry after one try: %s", disk["b"])
	}
	bl, state, err := PlanBless(copyOf(disk), "b")
	if err != nil || state != Blessed || len(bl) != 1 || bl[0].To != "ftnas-1-b.conf" {
		t.Fatalf("bless: %v %s %v", bl, state, err)
	}
	apply(t, disk, bl)
	if _, state, _ := PlanBless(copyOf(disk), "b"); state != Good {
		t.Fatalf("second bless: %s", state)
	}

	// Update from b to a with a slot that never comes up: 2 tries.
	es = copyOf(disk)
	prep, _ = PlanPrepare(es, "b", "a")
	apply(t, disk, prep)
	sw, err = PlanSwitch(es, "b", "a", 2)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, disk, sw)
	if disk.String() != "ftnas-0-b.conf ftnas-1-a+2.conf" {
		t.Fatalf("after the second switch: %s", disk)
	}
	for i := 0; i < 2; i++ {
		if got := loaderBoot(t, disk); got != "a" {
			t.Fatalf("try %d boots %s", i+1, got)
		}
	}
	if got := loaderBoot(t, disk); got != "b" {
		t.Fatalf("after the tries, %s boots (%s)", got, disk)
	}
	bl, state, err = PlanBless(copyOf(disk), "b")
	if err != nil || state != RolledBack || len(bl) != 0 {
		t.Fatalf("bless after the rollback: %v %s %v", bl, state, err)
	}
	// The next update overwrites the failed slot.
	es = copyOf(disk)
	prep, _ = PlanPrepare(es, "b", "a")
	apply(t, disk, prep)
	if disk.String() != "ftnas-0-a+0.conf ftnas-1-b.conf" {
		t.Fatalf("prepare after a rollback: %s", disk)
	}
}

func copyOf(es Entries) Entries {
	out := Entries{}
	for k, v := range es {
		out[k] = v
	}
	return out
}

func TestPlanErrors(t *testing.T) {
	if _, err := ParseEntries([]string{"ftnas-a.conf"}); err == nil {
		t.Error("an unparseable ftnas entry was accepted")
	}
	if _, err := ParseEntries([]string{"ftnas-1-a.conf", "ftnas-0-a+1.conf"}); err == nil || !strings.Contains(err.Error(), "two loader entries") {
		t.Errorf("two entries of a: %v", err)
	}
	es := entries(t, "ftnas-1-a.conf")
	if _, err := PlanPrepare(es, "a", "b"); err == nil || !strings.Contains(err.Error(), "no loader entry for slot b") {
		t.Errorf("missing b: %v", err)
	}
	es = entries(t, "ftnas-1-a.conf", "ftnas-0-b.conf")
	for _, n := range []int{0, 10} {
		if _, err := PlanSwitch(es, "a", "b", n); err == nil {
			t.Errorf("%d tries accepted", n)
		}
	}
	if _, err := Target("c"); err == nil {
		t.Error("Target(c) succeeded")
	}
	if got, _ := Target("b"); got != "a" {
		t.Errorf("Target(b) = %s", got)
	}
}

func TestLoaderConf(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"default ftnas-*\ntimeout 0\n", "default ftnas-*\ntimeout 0\n"},
		{"default ftnas-a.conf\ntimeout 0\n", "default ftnas-*\ntimeout 0\n"},
		{"timeout 0\n", "default ftnas-*\ntimeout 0\n"},
		{"default x\ndefault y\neditor no\n", "default ftnas-*\neditor no\n"},
	} {
		got, changed := LoaderConf(tt.in)
		if got != tt.want || changed != (tt.in != tt.want) {
			t.Errorf("LoaderConf(%q) = %q, %v; want %q", tt.in, got, changed, tt.want)
		}
	}
}
