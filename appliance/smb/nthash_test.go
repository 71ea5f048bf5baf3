package smb

import (
	"strings"
	"testing"
)

func TestNTHash(t *testing.T) {
	for _, tc := range []struct{ pw, want string }{
		{"", "31D6CFE0D16AE931B73C59D7E0C089C0"},
		{"password", "8846F7EAEE8FB117AD06BDD830B7586C"},
		{"Password", "A4F49C406510BDCAB6824EE7C30FD852"},
	} {
		if got := NTHash(tc.pw); got != tc.want {
			t.Errorf("NTHash(%q) = %s, want %s", tc.pw, got, tc.want)
		}
	}
	// Non-ASCII (incl. a surrogate pair) is checked against Samba itself
	// in TestPassdbNTHashMatchesSamba.
}

func TestNormalizeNTHash(t *testing.T) {
	got, err := normalizeNTHash("8846f7eaee8fb117ad06bdd830b7586c")
	if err != nil || got != "8846F7EAEE8FB117AD06BDD830B7586C" {
		t.Errorf("normalize lower-case = %q, %v", got, err)
	}
	for _, bad := range []string{"", "8846F7EAEE8FB117AD06BDD830B7586", strings.Repeat("G", 32), strings.Repeat("X", 32), "8846F7EAEE8FB117AD06BDD830B7586C:"} {
		if _, err := normalizeNTHash(bad); err == nil {
			t.Errorf("normalizeNTHash(%q) accepted", bad)
		}
	}
}
