package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/api/apitest"
	"ftnas/appliance/store"
)

type updateFake struct {
	*apitest.Fake
	got   string
	tries int
	allow bool
	down  bool
}

func (f *updateFake) Update(_ context.Context, r io.Reader, req api.UpdateRequest) (api.UpdateResult, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return api.UpdateResult{}, err
	}
	f.got, f.tries, f.allow, f.down = string(b), req.Tries, req.AllowUnsigned, req.AllowDowngrade
	if f.got == "old" && !req.AllowDowngrade {
		return api.UpdateResult{}, fmt.Errorf("%w: update: bundle 2026.11.3 (serial 41) is older than the running release 2026.12.1 (serial 42): refusing a downgrade (allow it with nasctl update --allow-downgrade)", store.ErrInvalid)
	}
	if f.got == "old" {
		return api.UpdateResult{Version: "2026.11.3", Serial: 41, RunningVersion: "2026.12.1", RunningSerial: 42, Downgrade: true, SignedBy: "0123456789abcdef",
			RunningSlot: "a", Slot: "b", Entry: "ftnas-1-b+3.conf", Tries: 3}, nil
	}
	if f.got == "garbage" {
		return api.UpdateResult{}, fmt.Errorf("%w: update: bundle: not a valid update bundle: no \"FTNASUPD\" magic", store.ErrInvalid)
	}
	if f.got == "unsigned" && !req.AllowUnsigned {
		return api.UpdateResult{}, fmt.Errorf("%w: update: bundle: not a valid update bundle: not signed by a trusted key: this box trusts no update key", store.ErrInvalid)
	}
	signedBy := "0123456789abcdef"
	if f.got == "unsigned" {
		signedBy = ""
	}
	tries := req.Tries
	if tries == 0 {
		tries = 3
	}
	return api.UpdateResult{Version: "2026.12.1", SignedBy: signedBy, Unverified: signedBy == "", RunningSlot: "a", Slot: "b", Array: "/dev/md126", Bytes: int64(len(b)),
		SHA256: "ab12", Entry: fmt.Sprintf("ftnas-1-b+%d.conf", tries), Tries: tries, ESPFrom: "vda",
		ESPs: []api.RaidESPDisk{{Disk: "vda"}, {Disk: "vdb", Copied: true}}}, nil
}

func (f *updateFake) Firmware(context.Context) (api.FirmwareStatus, error) {
	return api.FirmwareStatus{FromSlot: true, Running: "a", Next: "b", State: "update-pending", ESP: "vda", Booted: "ftnas-1-a.conf",
		Version: "2026.12.1", Serial: 42, Install: "box1",
		Slots: []api.FirmwareSlot{
			{Slot: "a", Entry: "ftnas-0-a.conf", Running: true},
			{Slot: "b", Entry: "ftnas-1-b+3.conf", Preferred: true, Next: true, Trial: true, TriesLeft: 3},
		}}, nil
}

func TestFirmwareCommand(t *testing.T) {
	f := &updateFake{Fake: apitest.NewFake("nas1")}
	c := &cli{t: t, fake: f.Fake, sock: apitest.Serve(t, f, nil), now: time.Now()}
	out := c.ok("", "firmware")
	for _, want := range []string{"running slot A; an update in slot B boots next on trial: reboot to run it", "B     ftnas-1-b+3.conf       boots next, preferred, on trial: 3 tries left, 0 made", "ESP of vda", "release: 2026.12.1, serial 42", "installation: box1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	var st api.FirmwareStatus
	if err := json.Unmarshal([]byte(c.ok("", "firmware", "--json")), &st); err != nil || st.State != "update-pending" || len(st.Slots) != 2 {
		t.Errorf("--json: %+v, %v", st, err)
	}
	if got := firmwareText(api.FirmwareStatus{Why: "not booted from a root slot"}); !strings.Contains(got, "not running from a root slot") {
		t.Errorf("off a slot: %q", got)
	}
	if got := firmwareText(api.FirmwareStatus{FromSlot: true, Running: "a", State: "good", ReleaseError: "bad release line"}); !strings.Contains(got, "release: unreadable (bad release line)") {
		t.Errorf("unreadable release: %q", got)
	}
}

func TestUpdateCommand(t *testing.T) {
	f := &updateFake{Fake: apitest.NewFake("nas1")}
	c := &cli{t: t, fake: f.Fake, sock: apitest.Serve(t, f, nil), now: time.Now()}
	dir := t.TempDir()
	bundle := filepath.Join(dir, "fw.bundle")
	if err := os.WriteFile(bundle, []byte("the bundle"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := c.ok("", "update", bundle)
	if f.got != "the bundle" || f.tries != 0 || f.allow {
		t.Errorf("nasd got %q, tries %d, allow unsigned %v", f.got, f.tries, f.allow)
	}
	for _, want := range []string{"update 2026.12.1 (signed by key 0123456789abcdef) written to slot B", "/dev/md126", "10 bytes", "sha256 ab12 verified", "entry ftnas-1-b+3.conf boots next with 3 tries", "then slot A again", "ESPs identical on vda, vdb", "reboot to run it"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	out = c.ok("", "update", "--tries", "1", "--json", bundle)
	var res api.UpdateResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Tries != 1 || !res.RebootNeeded || f.tries != 1 {
		t.Errorf("--json: %s (%v), tries sent %d", out, err, f.tries)
	}
	c.fails("missing FILE", "", "update")
	c.fails("no such file", "", "update", filepath.Join(dir, "nothing"))
	c.fails("--tries 12", "", "update", "--tries", "12", bundle)
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("garbage"), 0o644)
	c.fails("magic", "", "update", garbage)

	unsigned := filepath.Join(dir, "unsigned")
	os.WriteFile(unsigned, []byte("unsigned"), 0o644)
	c.fails("trusts no update key", "", "update", unsigned)
	out = c.ok("", "update", "--allow-unsigned", unsigned)
	if !f.allow || !strings.Contains(out, "update 2026.12.1 (UNVERIFIED: no signature checked, this box trusts no update key) written to slot B") {
		t.Errorf("--allow-unsigned: allow sent %v, output %q", f.allow, out)
	}

	old := filepath.Join(dir, "old")
	os.WriteFile(old, []byte("old"), 0o644)
	c.fails("2026.11.3 (serial 41) is older than the running release 2026.12.1 (serial 42)", "", "update", old)
	out = c.ok("", "update", "--allow-downgrade", old)
	if !f.down || !strings.Contains(out, "DOWNGRADE from 2026.12.1 (serial 42) to serial 41") {
		t.Errorf("--allow-downgrade: sent %v, output %q", f.down, out)
	}
}
