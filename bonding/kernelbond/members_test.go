package kernelbond

import (
	"slices"
	"testing"

	"ftnas/bonding"
)

func TestPlan(t *testing.T) {
	in := func(names ...string) []member {
		var ms []member
		for _, n := range names {
			ms = append(ms, member{Name: n})
		}
		return ms
	}
	out := func(ms []member, names ...string) []member {
		ms = slices.Clone(ms)
		for i := range ms {
			if slices.Contains(names, ms[i].Name) {
				ms[i].Out = true
			}
		}
		return ms
	}
	release := func(n string) move { return move{NIC: n} }
	enslave := func(n string) move { return move{NIC: n, Enslave: true} }
	lb, fo := bonding.LoadBalance, bonding.Failover
	for _, c := range []struct {
		name   string
		ms     []member
		mode   bonding.Mode
		active []string
		want   []move
	}{
		{"all healthy", in("a", "b"), lb, []string{"a", "b"}, nil},
		{"detector fails b", in("a", "b"), lb, []string{"a"}, []move{release("b")}},
		{"b stays out", out(in("a", "b"), "b"), lb, []string{"a"}, nil},
		{"b back", out(in("a", "b"), "b"), lb, []string{"a", "b"}, []move{enslave("b")}},
		{"primary fails", in("a", "b", "c"), lb, []string{"b", "c"}, []move{release("a")}},
		// The bond never loses its last slave (it would take a random
		// MAC): the one coming back is enslaved before the other goes.
		{"swap", out(in("a", "b"), "b"), lb, []string{"b"}, []move{enslave("b"), release("a")}},
		{"none healthy", in("a", "b"), lb, nil, nil},
		{"none healthy, one out", out(in("a", "b"), "b"), lb, nil, nil},
		{"only unknown NICs listed", in("a"), lb, []string{"x"}, nil},
		{"removed member not listed", in("a", "b"), lb, []string{"a"}, []move{release("b")}},
		// Failover: the active slave does it; every member is a slave.
		{"failover", in("a", "b"), fo, []string{"b"}, nil},
		{"failover after load-balance", out(in("a", "b", "c"), "a", "c"), fo, []string{"b"}, []move{enslave("a"), enslave("c")}},
		{"failover, none healthy", out(in("a", "b"), "b"), fo, nil, []move{enslave("b")}},
		{"no members", nil, lb, []string{"a"}, nil},
	} {
		if got := plan(c.ms, c.mode, c.active); !slices.Equal(got, c.want) {
			t.Errorf("%s: plan(%v, %v, %v) = %v, want %v", c.name, c.ms, c.mode, c.active, got, c.want)
		}
	}
}
