package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"ftnas/appliance/api"
	"ftnas/appliance/api/apitest"
	"ftnas/appliance/store"
)

// installFake is a Backend that installs: it reads the bundle and
// refuses a disk named "vda" as the one the box runs from.
type installFake struct {
	*apitest.Fake
	got []byte
	req api.InstallRequest
}

func (f *installFake) Install(_ context.Context, r io.Reader, req api.InstallRequest) (api.InstallResult, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return api.InstallResult{}, err
	}
	f.got, f.req = b, req
	for _, d := range req.Disks {
		if d == "vda" {
			return api.InstallResult{}, fmt.Errorf("%w: install: refused: vda: the box runs from it", store.ErrInvalid)
		}
	}
	return api.InstallResult{ID: "3f9a2c1b0d4e5f60", Version: "v2", SignedBy: "0123456789abcdef", Disks: req.Disks,
		Arrays: []api.InstallArray{{Role: "root-a", Name: "ftnas-root-a"}}, Bytes: int64(len(b))}, nil
}

func TestInstallRoute(t *testing.T) {
	f := &installFake{Fake: apitest.NewFake("nas1")}
	c := api.NewClient(apitest.Serve(t, f, nil))
	defer c.Close()
	bundle := bytes.Repeat([]byte("x"), 1<<20)
	res, err := c.Install(t.Context(), bytes.NewReader(bundle), api.InstallRequest{Disks: []string{"vdb", "/dev/vdc"}, DataLevel: "raid1"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.got, bundle) || strings.Join(f.req.Disks, " ") != "vdb /dev/vdc" || f.req.DataLevel != "raid1" || f.req.AllowUnsigned {
		t.Errorf("backend got %d bytes, request %+v", len(f.got), f.req)
	}
	if res.ID != "3f9a2c1b0d4e5f60" || len(res.Arrays) != 1 || res.Arrays[0].Members == nil || res.Bytes != int64(len(bundle)) {
		t.Errorf("result %+v", res)
	}
	_, err = c.Install(t.Context(), strings.NewReader("b"), api.InstallRequest{Disks: []string{"vda", "vdb"}, AllowUnsigned: true})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "vda: the box runs from it") || !f.req.AllowUnsigned {
		t.Errorf("running disk: %v (allow_unsigned sent %v)", err, f.req.AllowUnsigned)
	}

	h := api.NewHandler(f, nil)
	for _, tt := range []struct {
		path, ct string
		code     int
		want     string
	}{
		{"/v1/install?disks=vdb", "application/json", 415, "application/octet-stream"},
		{"/v1/install", "application/octet-stream", 400, "disks"},
		{"/v1/install?disks=,", "application/octet-stream", 400, "disks"},
		{"/v1/install?disks=vdb&data_level=raid0", "application/octet-stream", 400, "data_level"},
		{"/v1/install?disks=vdb&allow_unsigned=maybe", "application/octet-stream", 400, "allow_unsigned"},
		{"/v1/install?disks=vdb,vdc&data_level=RAID10", "application/octet-stream", 200, `"id":"3f9a2c1b0d4e5f60"`},
	} {
		req := httptest.NewRequest("POST", tt.path, strings.NewReader("bundle"))
		req.Header.Set("Content-Type", tt.ct)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.want) {
			t.Errorf("POST %s (%s) = %d %s, want %d with %q", tt.path, tt.ct, w.Code, w.Body, tt.code, tt.want)
		}
	}
	if f.req.DataLevel != "raid10" {
		t.Errorf("data_level=RAID10 reached the backend as %q", f.req.DataLevel)
	}
	w := httptest.NewRecorder()
	api.NewHandler(apitest.NewFake("nas1"), nil).ServeHTTP(w, httptest.NewRequest("POST", "/v1/install?disks=vdb", nil))
	if w.Code != 404 {
		t.Errorf("POST /v1/install without InstallBackend = %d", w.Code)
	}
}
