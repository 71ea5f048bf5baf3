package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/api/apitest"
	"ftnas/appliance/store"
)

type installFake struct {
	*apitest.Fake
	got   string
	req   api.InstallRequest
	calls int
}

func (f *installFake) Install(_ context.Context, r io.Reader, req api.InstallRequest) (api.InstallResult, error) {
	f.calls++
	b, err := io.ReadAll(r)
	if err != nil {
		return api.InstallResult{}, err
	}
	f.got, f.req = string(b), req
	if slices.Contains(req.Disks, "/dev/vda") {
		return api.InstallResult{}, fmt.Errorf("%w: install: refused: vda: the box runs from it (vda2 is a member of the running array md127)", store.ErrInvalid)
	}
	return api.InstallResult{ID: "3f9a2c1b0d4e5f60", Version: "2026.12.1", SignedBy: "0123456789abcdef", Disks: []string{"vdb", "vdc"},
		Arrays: []api.InstallArray{
			{Role: "root-a", Name: "ftnas-root-a", Level: "raid1", Members: []string{"/dev/vdb2", "/dev/vdc2"}},
			{Role: "data", Name: "ftnas-data", Level: "raid1", Members: []string{"/dev/vdb5", "/dev/vdc5"}},
		},
		Bytes: int64(len(b)), SHA256: "ab12", BootFiles: "running ESP", ESPHash: "cd34"}, nil
}

func TestInstallCommand(t *testing.T) {
	f := &installFake{Fake: apitest.NewFake("nas1")}
	c := &cli{t: t, fake: f.Fake, sock: apitest.Serve(t, f, nil), now: time.Now()}
	dir := t.TempDir()
	bundle := filepath.Join(dir, "fw.bundle")
	if err := os.WriteFile(bundle, []byte("the bundle"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := c.ok("", "install", "--disks", "/dev/vdb,/dev/vdc", "--bundle", bundle, "--yes")
	if f.got != "the bundle" || strings.Join(f.req.Disks, " ") != "/dev/vdb /dev/vdc" || f.req.DataLevel != "" || f.req.AllowUnsigned {
		t.Errorf("nasd got %q, %+v", f.got, f.req)
	}
	for _, want := range []string{"install 2026.12.1 (signed by key 0123456789abcdef) onto vdb, vdc", "installation 3f9a2c1b0d4e5f60",
		"ftnas-root-a raid1 x2", "10 bytes, sha256 ab12 verified in slots A and B", "from the running ESP", "boot from the new disks"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	out = c.ok("", "install", "--json", "--disks", "vdb", "--disks", "vdc", "--data-level", "RAID1", "--allow-unsigned", "--bundle", bundle, "--yes")
	var res api.InstallResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.ID != "3f9a2c1b0d4e5f60" || len(res.Arrays) != 2 {
		t.Errorf("--json: %s (%v)", out, err)
	}
	if strings.Join(f.req.Disks, " ") != "vdb vdc" || f.req.DataLevel != "raid1" || !f.req.AllowUnsigned {
		t.Errorf("nasd got %+v", f.req)
	}
	calls := f.calls
	c.fails("run again with --yes", "", "install", "--disks", "vdb,vdc", "--bundle", bundle)
	c.fails("--disks", "", "install", "--bundle", bundle, "--yes")
	c.fails("--bundle", "", "install", "--disks", "vdb", "--yes")
	c.fails("--data-level \"raid0\"", "", "install", "--disks", "vdb", "--bundle", bundle, "--data-level", "raid0", "--yes")
	c.fails("no such file", "", "install", "--disks", "vdb", "--bundle", filepath.Join(dir, "none"), "--yes")
	if f.calls != calls {
		t.Errorf("nasd was asked to install %d times by commands that should have failed first", f.calls-calls)
	}
	c.fails("vda: the box runs from it", "", "install", "--disks", "/dev/vda,/dev/vdb", "--bundle", bundle, "--yes")
}
