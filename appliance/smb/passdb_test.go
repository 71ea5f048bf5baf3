package smb

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSmbpasswdLine(t *testing.T) {
	got := smbpasswdLine("alice", 10001, "8846F7EAEE8FB117AD06BDD830B7586C", time.Unix(0x6B048ED3, 0))
	want := "alice:10001:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:8846F7EAEE8FB117AD06BDD830B7586C:[U          ]:LCT-6B048ED3:\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// A zero change time would mean "password expired".
	if l := smbpasswdLine("a", 1, "00000000000000000000000000000000", time.Unix(0, 0)); !strings.Contains(l, "LCT-00000001:") {
		t.Errorf("zero time not bumped: %q", l)
	}
}

func TestParseSmbpasswdList(t *testing.T) {
	out := []byte("alice:10001:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:8846F7EAEE8FB117AD06BDD830B7586C:[U          ]:LCT-6B048ED3:\n" +
		"bob:10002:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:[U          ]:LCT-00000000:\n\n")
	got, err := parseSmbpasswdList(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["alice"] != "8846F7EAEE8FB117AD06BDD830B7586C" || got["bob"] != "" {
		t.Errorf("got %v", got)
	}
	_, err = parseSmbpasswdList([]byte("garbage:1:AAAA:8846F7EAEE8FB117AD06BDD830B7586C\n"))
	if err == nil {
		t.Fatal("accepted a malformed line")
	}
	if strings.Contains(err.Error(), "8846F7") {
		t.Errorf("error leaks a hash: %v", err)
	}
}

func TestParseUserList(t *testing.T) {
	got, err := parseUserList([]byte("zed:10003:\nalice:10001:Alice A: Smith\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"alice", "zed"}) {
		t.Errorf("got %v", got)
	}
	if _, err := parseUserList([]byte("nocolon\n")); err == nil {
		t.Error("accepted a line without ':'")
	}
}

func TestPlanSync(t *testing.T) {
	have := map[string]string{"keep": "AA", "change": "BB", "drop": "CC", "nohash": ""}
	want := map[string]string{"keep": "AA", "change": "B2", "add": "DD", "nohash": "EE"}
	set, del := planSync(have, want)
	if !slices.Equal(set, []string{"add", "change", "nohash"}) {
		t.Errorf("set = %v", set)
	}
	if !slices.Equal(del, []string{"drop"}) {
		t.Errorf("del = %v", del)
	}
}

func TestNormalizeWant(t *testing.T) {
	got, err := normalizeWant(map[string]string{"alice": "8846f7eaee8fb117ad06bdd830b7586c"})
	if err != nil || got["alice"] != "8846F7EAEE8FB117AD06BDD830B7586C" {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := normalizeWant(map[string]string{"bad:name": NTHash("x")}); err == nil {
		t.Error("accepted a bad user name")
	}
	if _, err := normalizeWant(map[string]string{"alice": "password"}); err == nil || !strings.Contains(err.Error(), "alice") {
		t.Errorf("bad hash error = %v, want one naming the user", err)
	}
}
