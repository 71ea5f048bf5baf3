package update

import "testing"

func TestSlotStates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []string
		running string
		state   string
		next    string
	}{
		{"blessed", []string{"ftnas-1-a.conf", "ftnas-0-b.conf"}, "a", StateGood, "a"},
		{"update written, waiting for a reboot", []string{"ftnas-0-a.conf", "ftnas-1-b+3.conf"}, "a", StateUpdatePending, "b"},
		{"booted the update, not blessed yet", []string{"ftnas-0-a.conf", "ftnas-1-b+2-1.conf"}, "b", StateTrial, "b"},
		{"the update ran out of tries", []string{"ftnas-0-a.conf", "ftnas-1-b+0-3.conf"}, "a", StateRolledBack, "a"},
		{"the other slot chosen by hand", []string{"ftnas-1-a.conf", "ftnas-0-b.conf"}, "b", StateRolledBack, "a"},
	} {
		es, err := ParseEntries(tc.entries)
		if err != nil {
			t.Fatal(err)
		}
		st := SlotStates(es, tc.running, "")
		if st.State != tc.state || st.Next != tc.next {
			t.Errorf("%s: state %q next %q, want %q next %q", tc.name, st.State, st.Next, tc.state, tc.next)
		}
		if len(st.Slots) != 2 || st.Slots[0].Slot != "a" || st.Slots[1].Slot != "b" {
			t.Fatalf("%s: slots %+v", tc.name, st.Slots)
		}
	}
	es, _ := ParseEntries([]string{"ftnas-0-a.conf", "ftnas-1-b+2-1.conf"})
	b := SlotStates(es, "b", "ftnas-1-b+2-1.conf").Slots[1]
	if !b.Trial || b.TriesLeft != 2 || b.TriesDone != 1 || !b.Running || !b.Next || !b.Preferred || b.Failed {
		t.Fatalf("slot b on trial: %+v", b)
	}
}
