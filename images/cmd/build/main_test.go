package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"ftnas/images/disk"
	"ftnas/images/kernel"
	"ftnas/images/update"
	"ftnas/images/userland"
)

func TestUpdateKeys(t *testing.T) {
	if userland.UpdateKeysDir != update.DefaultKeysDir {
		t.Fatalf("the slot keeps its keys in %s, the updater reads %s", userland.UpdateKeysDir, update.DefaultKeysDir)
	}
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gen := func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	id := func(k ed25519.PrivateKey) string { return update.KeyIDOf(k.Public().(ed25519.PublicKey)).String() }
	old, next := gen(), gen()
	oldPath := write("old.pem", update.MarshalPrivateKey(old))
	nextPub := write("next.pub", update.MarshalPublicKey(next.Public().(ed25519.PublicKey)))

	// No key given: the cache's development key, the same every time.
	t.Setenv("FTNAS_SIGNING_KEY", "")
	cache := t.TempDir()
	keys, trusted, err := updateKeys(nil, nil, cache, log)
	if err != nil || len(keys) != 1 || len(trusted) != 1 || trusted[0].ID != id(keys[0]) {
		t.Fatalf("development key: %d keys, %+v, %v", len(keys), trusted, err)
	}
	again, _, err := updateKeys(nil, nil, cache, log)
	if err != nil || !again[0].Equal(keys[0]) {
		t.Errorf("development key changed: %v", err)
	}

	// A rotation build: signed with the old key, trusting both.
	keys, trusted, err = updateKeys([]string{oldPath}, []string{nextPub}, cache, log)
	if err != nil || len(keys) != 1 || !keys[0].Equal(old) || len(trusted) != 2 || trusted[0].ID != id(old) || trusted[1].ID != id(next) {
		t.Fatalf("rotation: %+v, %v", trusted, err)
	}

	// FTNAS_SIGNING_KEY when no flag names a key.
	t.Setenv("FTNAS_SIGNING_KEY", oldPath)
	if keys, _, err := updateKeys(nil, nil, cache, log); err != nil || len(keys) != 1 || !keys[0].Equal(old) {
		t.Errorf("FTNAS_SIGNING_KEY: %v", err)
	}
	if _, _, err := updateKeys([]string{nextPub}, nil, cache, log); err == nil {
		t.Error("a public key as signing key was taken")
	}
	if _, _, err := updateKeys(nil, []string{oldPath}, cache, log); err == nil {
		t.Error("a private key as trust key was taken")
	}
}

func TestSerialAndRelease(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "42": 42, "9007199254740991": update.MaxSerial} {
		if got, err := parseSerial(in); err != nil || got != want {
			t.Errorf("parseSerial(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "x", "1.5", "9007199254740992"} {
		if _, err := parseSerial(bad); err == nil {
			t.Errorf("parseSerial(%q) passed", bad)
		}
	}
	if n, err := resolveSerial(t.Context(), "7"); err != nil || n != 7 {
		t.Errorf("resolveSerial 7: %d, %v", n, err)
	}
	f, err := releaseFile(update.Release{Version: firstOf("", "2026.12.1", "dev"), Serial: 42})
	if err != nil || f.Path != update.DefaultReleaseFile {
		t.Fatalf("release file %+v, %v", f, err)
	}
	if r, err := update.ParseRelease(f.Data); err != nil || r.Version != "2026.12.1" || r.Serial != 42 {
		t.Errorf("release file reads back %+v, %v", r, err)
	}
	if _, err := releaseFile(update.Release{Version: "bad\nname"}); err == nil {
		t.Error("a release name with a newline passed")
	}
}

func TestKernelChoice(t *testing.T) {
	meta, mods, err := kernelChoice("generic")
	if err != nil || meta != disk.GenericKernel {
		t.Fatalf("generic: %q, %v", meta, err)
	}
	if i, j := slices.Index(mods, "i6300esb"), slices.Index(mods, "softdog"); i < 0 || j < 0 || i > j || !slices.Contains(mods, "ahci") {
		t.Errorf("generic modules %v: want ahci, and i6300esb before softdog", mods)
	}
	meta, mods, err = kernelChoice("cloud")
	if err != nil || meta != kernel.MetaPackage || slices.Contains(mods, "ahci") {
		t.Errorf("cloud: %q %v, %v", meta, mods, err)
	}
	if _, _, err := kernelChoice("rt"); err == nil {
		t.Error("an unknown flavour was accepted")
	}
}
