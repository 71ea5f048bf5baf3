package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/api/apitest"
	"ftnas/appliance/store"
)

type rig struct {
	t    *testing.T
	fake *apitest.Fake
	h    http.Handler
	logs *bytes.Buffer
}

func newRig(t *testing.T) *rig {
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := apitest.NewFake("nas1")
	return &rig{t: t, fake: f, h: api.NewHandler(f, log), logs: logs}
}

// call sends a request and returns status, body and Content-Type.
func (r *rig) call(method, path, body string) (int, string, string) {
	r.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	return w.Code, w.Body.String(), w.Header().Get("Content-Type")
}

func errMsg(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Fatalf("error body %q is not {\"error\":...}: %v", body, err)
	}
	return e.Error
}

func TestHandlerShares(t *testing.T) {
	r := newRig(t)
	code, body, ct := r.call("GET", "/v1/shares", "")
	if code != 200 || strings.TrimSpace(body) != "[]" || ct != "application/json" {
		t.Errorf("empty list = %d %q %q", code, body, ct)
	}
	// Neither protocol given: both.
	code, body, _ = r.call("POST", "/v1/shares", `{"name":"Media","path":"media"}`)
	if code != 201 {
		t.Fatalf("add = %d %s", code, body)
	}
	var sh api.Share
	json.Unmarshal([]byte(body), &sh)
	if !sh.NFS || !sh.SMB || sh.Export != "/Media" || sh.UNC != `\\nas1\Media` || sh.FSID == 0 || sh.Clients == nil {
		t.Errorf("added share = %+v", sh)
	}
	for _, k := range []string{`"read_only":false`, `"fsid":1`, `"clients":[]`, `"unc":"\\\\nas1\\Media"`} {
		if !strings.Contains(body, k) {
			t.Errorf("share JSON %s lacks %s", body, k)
		}
	}
	code, body, _ = r.call("POST", "/v1/shares", `{"name":"docs","path":"d","nfs":true,"read_only":true,"clients":["192.0.2.0/24"]}`)
	if code != 201 || strings.Contains(body, `"smb":true`) || !strings.Contains(body, `"unc":""`) {
		t.Errorf("nfs-only add = %d %s", code, body)
	}
	code, body, _ = r.call("GET", "/v1/shares", "")
	var list []api.Share
	if err := json.Unmarshal([]byte(body), &list); err != nil || code != 200 || len(list) != 2 || list[0].Name != "docs" {
		t.Errorf("list = %d %s", code, body)
	}

	code, body, _ = r.call("POST", "/v1/shares", `{"name":"media","path":"x"}`)
	if code != 409 || !strings.Contains(errMsg(t, body), "already exists") {
		t.Errorf("duplicate = %d %s", code, body)
	}
	code, body, _ = r.call("POST", "/v1/shares", `{"name":"bad name","path":"x"}`)
	if code != 400 || !strings.Contains(errMsg(t, body), `share name "bad name"`) {
		t.Errorf("invalid = %d %s", code, body)
	}
	code, body, _ = r.call("POST", "/v1/shares", `{"nmae":"x"}`)
	if code != 400 || errMsg(t, body) != `decode request: unknown field "nmae"` {
		t.Errorf("unknown field = %d %s", code, body)
	}
	code, body, _ = r.call("DELETE", "/v1/shares/media", "")
	if code != 204 || body != "" {
		t.Errorf("remove = %d %q", code, body)
	}
	code, body, _ = r.call("DELETE", "/v1/shares/media", "")
	if code != 404 || !strings.Contains(errMsg(t, body), "not found") {
		t.Errorf("remove again = %d %s", code, body)
	}
}

func TestHandlerUsers(t *testing.T) {
	r := newRig(t)
	code, body, _ := r.call("POST", "/v1/users", `{"name":"alice","password":"s3cret-pw"}`)
	if code != 201 || !strings.Contains(body, `"uid":10000`) || !strings.Contains(body, `"gid":10000`) || strings.Contains(body, "s3cret") {
		t.Fatalf("add user = %d %s", code, body)
	}
	code, body, _ = r.call("GET", "/v1/users", "")
	if code != 200 || !strings.Contains(body, `[{"name":"alice","uid":10000,"gid":10000}]`) {
		t.Errorf("list users = %d %s", code, body)
	}
	code, body, _ = r.call("PUT", "/v1/users/alice/password", `{"password":"n3w-pw"}`)
	if code != 204 {
		t.Errorf("passwd = %d %s", code, body)
	}
	if pw, _ := r.fake.Password("alice"); pw != "n3w-pw" {
		t.Errorf("backend got password %q", pw)
	}
	code, body, _ = r.call("PUT", "/v1/users/bob/password", `{"password":"x"}`)
	if code != 404 {
		t.Errorf("passwd unknown user = %d %s", code, body)
	}
	code, body, _ = r.call("POST", "/v1/users", `{"name":"root","password":"x"}`)
	if code != 400 || !strings.Contains(errMsg(t, body), "reserved") {
		t.Errorf("reserved user = %d %s", code, body)
	}
	code, body, _ = r.call("POST", "/v1/users", `{"name":"eve","password":""}`)
	if code != 400 || !strings.Contains(errMsg(t, body), "password") {
		t.Errorf("empty password = %d %s", code, body)
	}
	code, _, _ = r.call("DELETE", "/v1/users/alice", "")
	if code != 204 {
		t.Errorf("remove user = %d", code)
	}
	if strings.Contains(r.logs.String(), "s3cret") || strings.Contains(r.logs.String(), "n3w-pw") {
		t.Errorf("a password reached the log:\n%s", r.logs)
	}
	if !strings.Contains(r.logs.String(), `"msg":"api request"`) {
		t.Errorf("no access log:\n%s", r.logs)
	}
}

func TestHandlerStatus(t *testing.T) {
	r := newRig(t)
	started := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	r.fake.SetStatus(api.Status{Version: "v1.2", Hostname: "nas1", StartedAt: started, Volume: "/srv/ftnas",
		VolumeTotalBytes: 1000, VolumeFreeBytes: 400})
	r.call("POST", "/v1/users", `{"name":"alice","password":"pw"}`)
	code, body, _ := r.call("GET", "/v1/status", "")
	if code != 200 {
		t.Fatalf("status = %d %s", code, body)
	}
	for _, k := range []string{`"version":"v1.2"`, `"started_at":"2025-03-04T05:06:07Z"`, `"volume_free_bytes":400`, `"users":1`, `"shares":0`, `"services":[]`} {
		if !strings.Contains(body, k) {
			t.Errorf("status %s lacks %s", body, k)
		}
	}
}

func TestHandlerErrors(t *testing.T) {
	r := newRig(t)
	cases := []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/v1/nope", "", 404, "no such endpoint: GET /v1/nope"},
		{"PATCH", "/v1/shares", "", 405, "use GET, POST"},
		{"GET", "/v1/shares/x", "", 405, "use DELETE"},
		{"POST", "/v1/users/x/password", "", 405, "use PUT"},
	}
	for _, c := range cases {
		code, body, ct := r.call(c.method, c.path, c.body)
		if code != c.code || ct != "application/json" || !strings.Contains(errMsg(t, body), c.want) {
			t.Errorf("%s %s = %d %s", c.method, c.path, code, body)
		}
	}
	// Content-Type is required for bodies.
	req := httptest.NewRequest("POST", "/v1/shares", strings.NewReader(`{"name":"a","path":"a"}`))
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	if w.Code != 415 {
		t.Errorf("no Content-Type = %d %s", w.Code, w.Body)
	}
	// Backend failures are 500 and logged.
	r.fake.FailWith(errors.New("disk on fire"))
	code, body, _ := r.call("GET", "/v1/shares", "")
	if code != 500 || errMsg(t, body) != "disk on fire" || !strings.Contains(r.logs.String(), "disk on fire") {
		t.Errorf("backend failure = %d %s; log %s", code, body, r.logs)
	}
	for err, want := range map[error]int{
		fmt.Errorf("x: %w", store.ErrInvalid):  400,
		fmt.Errorf("x: %w", store.ErrNotFound): 404,
		fmt.Errorf("x: %w", store.ErrExists):   409,
		context.DeadlineExceeded:               503,
		errors.New("other"):                    500,
	} {
		if got := api.StatusFor(err); got != want {
			t.Errorf("StatusFor(%v) = %d, want %d", err, got, want)
		}
	}
}

func TestRequestsRedactPasswords(t *testing.T) {
	r := api.AddUserRequest{Name: "alice", Password: "hunter2"}
	p := api.PasswordRequest{Password: "hunter2"}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("x", "req", r, "p", p)
	s := fmt.Sprintf("%v %+v %#v %s %v %#v", r, r, r, p, p, p) + buf.String()
	if strings.Contains(s, "hunter2") || !strings.Contains(s, "alice") {
		t.Errorf("password shown: %s", s)
	}
}
