package store

import (
	"strings"
	"testing"
)

func TestNTHash(t *testing.T) {
	cases := map[string]string{
		"password": "8846f7eaee8fb117ad06bdd830b7586c",
		"":         "31d6cfe0d16ae931b73c59d7e0c089c0",
	}
	for pw, want := range cases {
		if got := NTHash(pw); got != want {
			t.Errorf("NTHash(%q) = %s, want %s", pw, got, want)
		}
	}
	// Non-ASCII goes through UTF-16LE, not UTF-8: the hashes must differ
	// from the hash of the UTF-8 bytes read as Latin-1 code units.
	if NTHash("pässword") == NTHash("p\u00c3\u00a4ssword") {
		t.Error("NTHash does not encode UTF-16LE")
	}
	if err := ValidateNTHash(NTHash("x")); err != nil {
		t.Errorf("ValidateNTHash(NTHash) = %v", err)
	}
	for _, bad := range []string{"", "8846F7EAEE8FB117AD06BDD830B7586C", "8846f7eaee8fb117ad06bdd830b7586", "zz46f7eaee8fb117ad06bdd830b7586c"} {
		if ValidateNTHash(bad) == nil {
			t.Errorf("ValidateNTHash(%q) = nil", bad)
		}
	}
}

func TestHashPassword(t *testing.T) {
	h1, err := HashPassword("s3cret pässword")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q is not PHC argon2id", h1)
	}
	if strings.Contains(h1, "s3cret") {
		t.Error("hash contains the password")
	}
	if !CheckPassword(h1, "s3cret pässword") {
		t.Error("CheckPassword(right password) = false")
	}
	if CheckPassword(h1, "s3cret passwort") || CheckPassword(h1, "") {
		t.Error("CheckPassword(wrong password) = true")
	}
	h2, err := HashPassword("s3cret pässword")
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	if _, err := HashPassword(""); err == nil {
		t.Error("HashPassword(\"\") = nil error")
	}
	if err := ValidatePasswordHash(h1); err != nil {
		t.Errorf("ValidatePasswordHash(good) = %v", err)
	}
}

func TestCheckPasswordRejectsMalformedHashes(t *testing.T) {
	good, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	mk := func(i int, v string) string {
		p := append([]string{}, parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	bad := []string{
		"",
		"pw",
		"$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		mk(2, "v=16"),
		mk(3, "m=19456,t=2"),
		mk(3, "m=19456,t=2,p=1,p=1"),
		mk(3, "m=4294967295,t=2,p=1"), // would allocate 4 TiB
		mk(3, "m=19456,t=1000,p=1"),
		mk(3, "m=19456,t=0,p=1"),
		mk(3, "m=19456,t=2,p=x"),
		mk(4, "!!"),
		mk(4, "c2FsdA"), // 4-byte salt
		mk(5, "a2V5"),   // 3-byte key
		good + "$extra",
	}
	for _, h := range bad {
		if CheckPassword(h, "pw") {
			t.Errorf("CheckPassword(%q) = true", h)
		}
		if ValidatePasswordHash(h) == nil {
			t.Errorf("ValidatePasswordHash(%q) = nil", h)
		}
	}
}
