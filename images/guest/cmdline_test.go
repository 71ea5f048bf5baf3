package guest

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	tests := []struct {
		in   string
		want []Param
	}{
		{"", nil},
		{"  \n", nil},
		{"console=ttyS0 quiet panic=-1\n", []Param{{"console", "ttyS0", true}, {"quiet", "", false}, {"panic", "-1", true}}},
		{`ftnas.run="/bin/t -v  x" ro`, []Param{{"ftnas.run", "/bin/t -v  x", true}, {"ro", "", false}}},
		{`"ftnas.run=/bin/t -v" a=`, []Param{{"ftnas.run", "/bin/t -v", true}, {"a", "", true}}},
		{"a=b=c", []Param{{"a", "b=c", true}}},
	}
	for _, tt := range tests {
		got, err := ParseCmdline(tt.in)
		if err != nil {
			t.Errorf("ParseCmdline(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseCmdline(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	if _, err := ParseCmdline(`a="b c`); err == nil {
		t.Error("unterminated quote parsed")
	}
}

func TestLookupAndQuote(t *testing.T) {
	q, err := Quote(ParamRun, "/bin/raidtest -disks vda,vdb")
	if err != nil {
		t.Fatal(err)
	}
	params, err := ParseCmdline("console=ttyS0 ftnas.run=/bin/old " + q)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := Lookup(params, ParamRun); !ok || v != "/bin/raidtest -disks vda,vdb" {
		t.Errorf("Lookup = %q, %v; want the last value round-tripped", v, ok)
	}
	if _, ok := Lookup(params, "nope"); ok {
		t.Error("Lookup found a missing key")
	}
	if q, _ := Quote("a", "b"); q != "a=b" {
		t.Errorf("Quote without spaces = %q", q)
	}
	if _, err := Quote("a", `b"c`); err == nil {
		t.Error("Quote accepted a double quote")
	}
}

func TestResultLine(t *testing.T) {
	pass := ResultLine(nil)
	fail := ResultLine(errors.New("raid: degraded = 0,\n want 1"))
	if fail != "FTNAS-RESULT: FAIL raid: degraded = 0, want 1" {
		t.Errorf("ResultLine = %q", fail)
	}
	console := "boot noise\r\n" + pass + "\r\n"
	if m := ResultPattern.FindStringSubmatch(console); m == nil || m[1] != "PASS" {
		t.Errorf("PASS not matched in %q: %v", console, m)
	}
	if m := ResultPattern.FindStringSubmatch("x\n" + fail + "\n"); m == nil || m[1] != "FAIL" || m[2] != "raid: degraded = 0, want 1" {
		t.Errorf("FAIL not matched: %v", m)
	}
	if ResultPattern.MatchString("echo FTNAS-RESULT: PASS") {
		t.Error("marker matched mid-line")
	}
}

func FuzzParseCmdline(f *testing.F) {
	f.Add(`console=ttyS0 ftnas.run="/bin/t -v" "a=b c" quiet`)
	f.Fuzz(func(t *testing.T, s string) {
		params, err := ParseCmdline(s)
		if err != nil {
			return
		}
		for _, p := range params {
			if p.Key == "" && !p.HasValue && p.Value == "" {
				continue // a lone "" is a valid empty parameter
			}
			q, err := Quote(p.Key, p.Value)
			if err != nil || p.Key == "" || !p.HasValue || strings.ContainsAny(p.Key, " \t\n\"") {
				continue
			}
			back, err := ParseCmdline(q)
			if err != nil || len(back) != 1 || back[0].Value != p.Value {
				t.Fatalf("round trip of %+v via %q: %+v, %v", p, q, back, err)
			}
		}
	})
}
