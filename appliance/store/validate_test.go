package store

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateShareName(t *testing.T) {
	good := []string{"a", "Media", "backup_2024", "x.y-z", "A0", strings.Repeat("n", 64)}
	for _, n := range good {
		if err := ValidateShareName(n); err != nil {
			t.Errorf("ValidateShareName(%q) = %v, want nil", n, err)
		}
	}
	bad := []struct{ name, want string }{
		{"", "empty"},
		{strings.Repeat("n", 65), "at most 64"},
		{"a b", `' ' at position 2`},
		{"a/b", `'/'`},
		{"ä", `'ä'`},
		{".hidden", `start with '.'`},
		{"-opt", `start with '-'`},
		{"global", "reserved by Samba"},
		{"GLOBAL", "reserved by Samba"},
		{"Homes", "reserved by Samba"},
		{"printers", "reserved by Samba"},
		{"print$", "reserved by Samba"},
		{"IPC$", "reserved by Samba"},
		{"x$", `'$'`},
	}
	for _, c := range bad {
		err := ValidateShareName(c.name)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidateShareName(%q) = %v, want ErrInvalid mentioning %q", c.name, err, c.want)
		}
	}
}

func TestCleanSharePath(t *testing.T) {
	good := map[string]string{
		"media":        "media",
		"a/b/c":        "a/b/c",
		"a//b/":        "a/b",
		"./a/./b":      "a/b",
		"with space/x": "with space/x",
		"unicode/ürün": "unicode/ürün",
		"a..b/..c":     "a..b/..c",
		"dir/.hidden":  "dir/.hidden",
	}
	for in, want := range good {
		got, err := CleanSharePath(in)
		if err != nil || got != want {
			t.Errorf("CleanSharePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []struct{ in, want string }{
		{"", "empty"},
		{"/abs", "not absolute"},
		{"..", `".."`},
		{"a/../b", `".."`},
		{"a/..", `".."`},
		{".", "volume root"},
		{"./", "volume root"},
		{"a\x00b", "control character"},
		{"a\nb", "control character"},
		{"a\rb", "control character"},
		{" lead", "white space"},
		{"trail ", "white space"},
		{"bad\xffutf8", "UTF-8"},
		{strings.Repeat("a", MaxSharePathLen+1), "at most"},
	}
	for _, c := range bad {
		got, err := CleanSharePath(c.in)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CleanSharePath(%q) = %q, %v; want ErrInvalid mentioning %q", c.in, got, err, c.want)
		}
	}
}

func TestValidateClients(t *testing.T) {
	if err := ValidateClients(nil); err != nil {
		t.Errorf("nil list: %v", err)
	}
	if err := ValidateClients([]string{"192.0.2.7", "192.0.2.0/24", "2001:db8::1", "2001:db8::/32", "10.1.2.3/8"}); err != nil {
		t.Errorf("good list: %v", err)
	}
	bad := []struct{ in, want string }{
		{"", "empty entry"},
		{"host.example", `"host.example": not an IP`},
		{"192.0.2.0/33", "not a CIDR"},
		{"192.0.2.300", "not an IP"},
		{"fe80::1%eth0", "zoned"},
		{"192.0.2.0/24 ", "not a CIDR"},
	}
	for _, c := range bad {
		err := ValidateClients([]string{"192.0.2.1", c.in})
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidateClients(%q) = %v, want ErrInvalid mentioning %q", c.in, err, c.want)
		}
	}
	many := make([]string, MaxClients+1)
	for i := range many {
		many[i] = "192.0.2.1"
	}
	if err := ValidateClients(many); !errors.Is(err, ErrInvalid) {
		t.Errorf("too many clients: %v", err)
	}
	p, err := ParseClient("192.0.2.7")
	if err != nil || p.String() != "192.0.2.7/32" {
		t.Errorf("ParseClient bare address = %v, %v", p, err)
	}
}

func TestValidateUserName(t *testing.T) {
	for _, n := range []string{"alice", "_svc", "bob-2", "a", "x_" + strings.Repeat("y", 30)} {
		if err := ValidateUserName(n); err != nil {
			t.Errorf("ValidateUserName(%q) = %v", n, err)
		}
	}
	bad := []struct{ in, want string }{
		{"", "empty"},
		{"Alice", "must start with"},
		{"1abc", "must start with"},
		{"-abc", "must start with"},
		{"al.ice", `'.' at position 3`},
		{"alIce", `'I' at position 3`},
		{strings.Repeat("a", 33), "at most 32"},
		{"root", "reserved"},
		{"nobody", "reserved"},
		{"daemon", "reserved"},
		{"bin", "reserved"},
		{"sys", "reserved"},
		{"adm", "reserved"},
		{"ftnas-probe", "reserved"},
		{"systemd-network", "reserved"},
	}
	for _, c := range bad {
		err := ValidateUserName(c.in)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidateUserName(%q) = %v; want ErrInvalid mentioning %q", c.in, err, c.want)
		}
	}
}

func TestValidatePassword(t *testing.T) {
	for _, pw := range []string{"x", "correct horse battery staple", "pässwörd", strings.Repeat("p", 256)} {
		if err := ValidatePassword(pw); err != nil {
			t.Errorf("ValidatePassword(len %d) = %v", len(pw), err)
		}
	}
	bad := []struct{ in, want string }{
		{"", "empty"},
		{strings.Repeat("p", 257), "at most 256"},
		{"a\x00b", "NUL"},
		{"secret\xff", "UTF-8"},
	}
	for _, c := range bad {
		err := ValidatePassword(c.in)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidatePassword(%q) = %v; want ErrInvalid mentioning %q", c.in, err, c.want)
		}
		if err != nil && c.in != "" && strings.Contains(err.Error(), c.in) {
			t.Errorf("error %q leaks the password", err)
		}
	}
}
