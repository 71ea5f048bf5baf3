package watchdog

import (
	"testing"
	"time"
)

func TestPolicy(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	p := NewPolicy(15 * time.Second)
	for _, step := range []struct {
		at      int
		probe   string // "ok", "fail" or "" (none)
		stop    bool
		want    Phase
		wantPet bool
	}{
		{0, "", false, Booting, true},
		{5, "fail", false, Booting, true},   // nasd not up yet
		{600, "fail", false, Booting, true}, // still booting: the init's own deadline decides
		{610, "ok", false, Healthy, true},
		{620, "fail", false, Healthy, true},
		{625, "fail", false, Healthy, true}, // 15 s: the grace's end
		{626, "", false, Unhealthy, false},
		{630, "ok", false, Healthy, true}, // came back before the hardware fired
		{700, "", false, Unhealthy, false},
		{701, "", true, Stopping, true},
		{900, "fail", false, Stopping, true},
	} {
		switch step.probe {
		case "ok":
			p.Probed(at(step.at), true)
		case "fail":
			p.Probed(at(step.at), false)
		}
		if step.stop {
			p.Stop()
		}
		if got := p.Phase(at(step.at)); got != step.want || p.Pet(at(step.at)) != step.wantPet {
			t.Errorf("at %ds: %v (pet %v), want %v (pet %v)", step.at, got, p.Pet(at(step.at)), step.want, step.wantPet)
		}
	}
	if p.Failures() != 1 || !p.LastHealthy().Equal(at(630)) {
		t.Errorf("failures %d, last healthy %v", p.Failures(), p.LastHealthy())
	}
}

func TestConfig(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.Device != "/dev/watchdog" || c.Timeout != 30*time.Second || c.Grace != time.Minute || c.Check() != nil {
		t.Errorf("defaults %+v: %v", c, c.Check())
	}
	for _, bad := range []Config{
		{Timeout: time.Second, Grace: time.Second},
		{Timeout: 1500 * time.Millisecond, Grace: time.Second},
		{Timeout: 2 * time.Hour, Grace: time.Second},
		{Timeout: 10 * time.Second, Grace: -time.Second},
	} {
		if bad.Check() == nil {
			t.Errorf("%+v passed", bad)
		}
	}
	if Interval(30*time.Second) != 10*time.Second || Interval(time.Second) != 500*time.Millisecond {
		t.Errorf("intervals %v %v", Interval(30*time.Second), Interval(time.Second))
	}
	if Unhealthy.String() != "unhealthy" || Phase(9).String() != "Phase(9)" {
		t.Error("phase names")
	}
}
