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

// updateFake is a Backend that takes updates: it reads the bundle and
// refuses one that says "bad".
type updateFake struct {
	*apitest.Fake
	got   []byte
	tries int
	allow bool
}

func (f *updateFake) Update(_ context.Context, r io.Reader, req api.UpdateRequest) (api.UpdateResult, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return api.UpdateResult{}, err
	}
	f.got, f.tries, f.allow = b, req.Tries, req.AllowUnsigned
	if bytes.Equal(b, []byte("bad")) {
		return api.UpdateResult{}, fmt.Errorf("%w: update: bundle: no magic", store.ErrInvalid)
	}
	if bytes.Equal(b, []byte("unsigned")) {
		if !req.AllowUnsigned {
			return api.UpdateResult{}, fmt.Errorf("%w: update: bundle: unsigned bundle (format 2)", store.ErrInvalid)
		}
		return api.UpdateResult{Version: "dev", Unverified: true, Slot: "b"}, nil
	}
	return api.UpdateResult{Version: "v2", Downgrade: req.AllowDowngrade, SignedBy: "0123456789abcdef", RunningSlot: "a", Slot: "b", Bytes: int64(len(b)), Entry: "ftnas-1-b+3.conf", Tries: 3}, nil
}

func (f *updateFake) Firmware(context.Context) (api.FirmwareStatus, error) {
	return api.FirmwareStatus{FromSlot: true, Running: "a", Next: "b", State: "update-pending",
		Slots: []api.FirmwareSlot{{Slot: "a", Running: true}, {Slot: "b", Next: true, Trial: true, TriesLeft: 3}}}, nil
}

func TestFirmwareRoute(t *testing.T) {
	f := &updateFake{Fake: apitest.NewFake("nas1")}
	c := api.NewClient(apitest.Serve(t, f, nil))
	defer c.Close()
	st, err := c.Firmware(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !st.FromSlot || st.State != "update-pending" || len(st.Slots) != 2 || st.Slots[1].TriesLeft != 3 || !st.Slots[1].Next {
		t.Errorf("firmware status %+v", st)
	}
}

func TestUpdateRoute(t *testing.T) {
	f := &updateFake{Fake: apitest.NewFake("nas1")}
	c := api.NewClient(apitest.Serve(t, f, nil))
	defer c.Close()
	bundle := bytes.Repeat([]byte("x"), 3<<20)
	res, err := c.Update(t.Context(), bytes.NewReader(bundle), api.UpdateRequest{Tries: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.got, bundle) || f.tries != 2 {
		t.Errorf("backend got %d bytes, tries %d", len(f.got), f.tries)
	}
	if res.Slot != "b" || res.Bytes != int64(len(bundle)) || !res.RebootNeeded || res.ESPs == nil || res.SignedBy != "0123456789abcdef" || res.Unverified || f.allow {
		t.Errorf("result %+v, allow_unsigned sent %v", res, f.allow)
	}
	// allow_unsigned reaches the backend; without it the backend's
	// refusal is a 400.
	_, err = c.Update(t.Context(), strings.NewReader("unsigned"), api.UpdateRequest{Tries: 2})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "unsigned bundle") {
		t.Errorf("unsigned bundle: %v", err)
	}
	res, err = c.Update(t.Context(), strings.NewReader("unsigned"), api.UpdateRequest{Tries: 2, AllowUnsigned: true})
	if err != nil || !res.Unverified || !f.allow || f.tries != 2 {
		t.Errorf("unsigned bundle allowed: %+v, %v; backend got allow %v tries %d", res, err, f.allow, f.tries)
	}
	_, err = c.Update(t.Context(), strings.NewReader("bad"), api.UpdateRequest{})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "no magic") {
		t.Errorf("bad bundle: %v", err)
	}
	if f.tries != 0 {
		t.Errorf("default tries sent as %d", f.tries)
	}

	h := api.NewHandler(f, nil)
	for _, tt := range []struct {
		path, ct string
		code     int
		want     string
	}{
		{"/v1/update", "application/json", 415, "application/octet-stream"},
		{"/v1/update?tries=0", "application/octet-stream", 400, "tries"},
		{"/v1/update?tries=x", "application/octet-stream", 400, "tries"},
		{"/v1/update?allow_unsigned=maybe", "application/octet-stream", 400, "allow_unsigned"},
		{"/v1/update?allow_unsigned=1", "application/octet-stream", 200, `"version":"v2"`},
		{"/v1/update?allow_downgrade=perhaps", "application/octet-stream", 400, "allow_downgrade"},
		{"/v1/update?allow_downgrade=1", "application/octet-stream", 200, `"downgrade":true`},
	} {
		req := httptest.NewRequest("POST", tt.path, strings.NewReader("bundle"))
		req.Header.Set("Content-Type", tt.ct)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.want) {
			t.Errorf("POST %s (%s) = %d %s, want %d with %q", tt.path, tt.ct, w.Code, w.Body, tt.code, tt.want)
		}
	}
	// A backend without updates has no route.
	w := httptest.NewRecorder()
	api.NewHandler(apitest.NewFake("nas1"), nil).ServeHTTP(w, httptest.NewRequest("POST", "/v1/update", nil))
	if w.Code != 404 {
		t.Errorf("POST /v1/update without UpdateBackend = %d", w.Code)
	}
}
