package esp

import (
	"strings"
	"testing"
)

func TestEntryName(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want EntryName
		out  string
	}{
		{"ftnas-1-a.conf", EntryName{Rank: 1, Slot: "a", Left: -1}, "ftnas-1-a.conf"},
		{"ftnas-0-b+3.conf", EntryName{Rank: 0, Slot: "b", Left: 3}, "ftnas-0-b+3.conf"},
		{"FTNAS-1-B+2-1.CONF", EntryName{Rank: 1, Slot: "b", Left: 2, Done: 1}, "ftnas-1-b+2-1.conf"},
		{"ftnas-1-b+0-3.conf", EntryName{Rank: 1, Slot: "b", Left: 0, Done: 3}, "ftnas-1-b+0-3.conf"},
		{"ftnas-1-b+3-0.conf", EntryName{Rank: 1, Slot: "b", Left: 3}, "ftnas-1-b+3.conf"},
	} {
		got, err := ParseEntryName(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseEntryName(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if got.String() != tt.out {
			t.Errorf("%q: String() = %q, want %q", tt.in, got.String(), tt.out)
		}
	}
	for _, in := range []string{
		"", "ftnas-a.conf", "ftnas-1-a", "other-1-a.conf", "ftnas-x-a.conf", "ftnas-10-a.conf",
		"ftnas-1-.conf", "ftnas-1-A_b.conf", "ftnas-1-a+.conf", "ftnas-1-a+3-.conf", "ftnas-1-a+-3.conf",
		"ftnas-1-a+3-1-1.conf", "ftnas-1-a+99999.conf", "ftnas-1-a+1x.conf", "ftnas-1-abcdefghi.conf",
	} {
		if e, err := ParseEntryName(in); err == nil {
			t.Errorf("ParseEntryName(%q) = %+v, want an error", in, e)
		} else if !strings.Contains(err.Error(), "loader entry") {
			t.Errorf("ParseEntryName(%q): error %q does not name the entry", in, err)
		}
	}
}

func TestChosen(t *testing.T) {
	p := func(s string) EntryName {
		e, err := ParseEntryName(s)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	for _, tt := range []struct {
		entries []string
		want    string
	}{
		{[]string{"ftnas-1-a.conf", "ftnas-0-b.conf"}, "ftnas-1-a.conf"},
		{[]string{"ftnas-0-a.conf", "ftnas-1-b+3.conf"}, "ftnas-1-b+3.conf"},
		{[]string{"ftnas-0-a.conf", "ftnas-1-b+1-2.conf"}, "ftnas-1-b+1-2.conf"},
		// The trial is over: the old slot boots again.
		{[]string{"ftnas-0-a.conf", "ftnas-1-b+0-3.conf"}, "ftnas-0-a.conf"},
		// Nothing good left: systemd-boot still boots the best.
		{[]string{"ftnas-0-a+0-3.conf", "ftnas-1-b+0-3.conf"}, "ftnas-1-b+0-3.conf"},
	} {
		var es []EntryName
		for _, s := range tt.entries {
			es = append(es, p(s))
		}
		got, ok := Chosen(es)
		if !ok || got.String() != tt.want {
			t.Errorf("Chosen(%v) = %v, %v; want %s", tt.entries, got, ok, tt.want)
		}
	}
	if _, ok := Chosen(nil); ok {
		t.Error("Chosen(nil) is ok")
	}
}

// FuzzParseEntryName: names come from an ESP's directory, which other
// software (the firmware, a person) may have written.
func FuzzParseEntryName(f *testing.F) {
	for _, s := range []string{"ftnas-1-a.conf", "ftnas-0-b+3.conf", "ftnas-1-b+2-1.conf", "FTNAS-1-B+0-3.CONF", "ftnas-1-a+", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEntryName(s)
		if err != nil {
			return
		}
		back, err := ParseEntryName(e.String())
		if err != nil || back != e {
			t.Fatalf("%q: parsed %+v, String %q parses as %+v, %v", s, e, e.String(), back, err)
		}
	})
}
