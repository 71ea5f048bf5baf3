package update

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRelease(t *testing.T) {
	b, err := MarshalRelease(Release{Version: "2026.12.1", Serial: 42})
	if err != nil || string(b) != `{"version":"2026.12.1","serial":42}`+"\n" {
		t.Fatalf("marshal: %q, %v", b, err)
	}
	if r, err := ParseRelease(b); err != nil || r != (Release{"2026.12.1", 42}) {
		t.Fatalf("parse: %+v, %v", r, err)
	}
	for _, bad := range []string{
		``, `{}`, `{"version":""}`, `{"version":"v","serial":-1}`, `{"version":"v","serial":1.5}`,
		`{"version":"v","serial":9007199254740992}`, `{"version":"v","extra":1}`, `{"version":"v"} {}`, `{"version":"a\u0001b"}`,
	} {
		if _, err := ParseRelease([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if _, err := MarshalRelease(Release{Version: "", Serial: 1}); err == nil {
		t.Error("an empty version marshalled")
	}
	dir := t.TempDir()
	if r, found, err := ReadRelease(filepath.Join(dir, "none")); err != nil || found || r.Serial != 0 {
		t.Errorf("missing file: %+v %v %v", r, found, err)
	}
	p := filepath.Join(dir, "release")
	if err := os.WriteFile(p, []byte(`{"version":"x","serial":"7"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadRelease(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("bad file: %v", err)
	}
}

func TestCheckDowngrade(t *testing.T) {
	running := Release{Version: "2026.12.1", Serial: 42}
	for _, tt := range []struct {
		serial       uint64
		allow        bool
		older, fails bool
	}{
		{43, false, false, false},
		{42, false, false, false},
		{41, false, true, true},
		{41, true, true, false},
		{0, false, true, true},
		{0, true, true, false},
	} {
		d, err := CheckDowngrade(running, Manifest{Version: "x", Serial: tt.serial}, tt.allow)
		if d.Older != tt.older || (err != nil) != tt.fails || (err != nil && !errors.Is(err, ErrDowngrade)) {
			t.Errorf("serial %d allow %v: %+v, %v", tt.serial, tt.allow, d, err)
		}
		if d.Running != running || d.Bundle.Serial != tt.serial {
			t.Errorf("serial %d: %+v", tt.serial, d)
		}
	}
	// A box that runs serial 0 (no release file) takes everything.
	if _, err := CheckDowngrade(Release{Version: "unknown"}, Manifest{Version: "x"}, false); err != nil {
		t.Error(err)
	}
}

func TestManifestSerial(t *testing.T) {
	m := Manifest{Version: "v", Serial: 7, Parts: []Part{{Name: PartRootfs, Size: 1, SHA256: strings.Repeat("a", 64)}}}
	h, err := Header(m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(h), `"serial":7`) {
		t.Errorf("header %q has no serial", h)
	}
	got, _, err := ReadHeader(strings.NewReader(string(h)))
	if err != nil || got.Serial != 7 {
		t.Errorf("read back: %+v, %v", got, err)
	}
	m.Serial = MaxSerial + 1
	if _, err := Header(m); err == nil {
		t.Error("a serial above MaxSerial was encoded")
	}
}
