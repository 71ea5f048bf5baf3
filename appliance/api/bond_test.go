package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/api/apitest"
	"ftnas/appliance/store"
)

func newBondRig(t *testing.T) (*rig, *apitest.BondFake) {
	f := apitest.NewBondFake("nas1", time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC), "192.0.2.7/24")
	r := newRig(t)
	r.h = api.NewHandler(f, nil)
	return r, f
}

func TestHandlerBond(t *testing.T) {
	r, f := newBondRig(t)
	f.SetNIC("eth0", true)
	f.SetNIC("eth1", true)
	f.SetNIC("eth2", false)

	code, body, ct := r.call("GET", "/v1/bond", "")
	if code != 200 || ct != "application/json" {
		t.Fatalf("status = %d %s", code, body)
	}
	// Fixed shapes: lists are [] when empty, every key is there.
	wantKeys := []string{"bonded", "interface", "datapath", "mode", "probe_target", "interval_ms", "up_delay_ms",
		"mac", "mtu", "addresses", "active", "members", "failovers"}
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range wantKeys {
		if _, ok := raw[k]; !ok {
			t.Errorf("bond status JSON lacks %q: %s", k, body)
		}
	}
	if len(raw) != len(wantKeys) {
		t.Errorf("bond status JSON has extra keys: %s", body)
	}
	for _, k := range []string{`"members":[]`, `"active":[]`, `"addresses":[]`, `"bonded":false`} {
		if !strings.Contains(body, k) {
			t.Errorf("empty bond JSON %s lacks %s", body, k)
		}
	}

	code, body, _ = r.call("POST", "/v1/bond/members", `{"nic":"eth0","probe_target":"192.0.2.1"}`)
	if code != 201 {
		t.Fatalf("add = %d %s", code, body)
	}
	var st api.BondStatus
	json.Unmarshal([]byte(body), &st)
	if !st.Bonded || len(st.Members) != 1 || !st.Members[0].Primary || st.ProbeTarget != "192.0.2.1" {
		t.Errorf("after add = %+v", st)
	}
	for _, k := range []string{`"name":"eth0"`, `"state":"up"`, `"primary":true`, `"active":true`, `"carrier":true`, `"failures":0`, `"since":`, `"reason":"added"`} {
		if !strings.Contains(body, k) {
			t.Errorf("member JSON %s lacks %s", body, k)
		}
	}
	if code, body, _ = r.call("POST", "/v1/bond/members", `{"nic":"eth1"}`); code != 201 {
		t.Fatalf("add eth1 = %d %s", code, body)
	}

	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/v1/bond/members", `{"nic":"eth9"}`, 404, "no such interface"},
		{"POST", "/v1/bond/members", `{"nic":"eth2"}`, 400, "no carrier"},
		{"POST", "/v1/bond/members", `{"nic":"eth0"}`, 409, "already a member"},
		{"POST", "/v1/bond/members", `{"nic":"bad/name"}`, 400, "is not allowed"},
		{"POST", "/v1/bond/members", `{"nic":"eth2","probe_target":"192.0.2.9"}`, 400, "remove every member to change the probe target"},
		{"POST", "/v1/bond/members", `{"nic":"eth2","probe_target":"gateway"}`, 400, "not an IP address"},
		{"POST", "/v1/bond/members", `{"nic":"eth2","bogus":1}`, 400, `unknown field "bogus"`},
		{"POST", "/v1/bond/members", `{"nic":7}`, 400, `field "nic" must be a string`},
		{"PUT", "/v1/bond/mode", `{"mode":"round-robin"}`, 400, `bond mode "round-robin"`},
		{"PUT", "/v1/bond/mode", `{}`, 400, `bond mode ""`},
		{"DELETE", "/v1/bond/members/eth7", "", 404, "not a member"},
		{"POST", "/v1/bond", "", 405, "use GET"},
		{"GET", "/v1/bond/members", "", 405, "use POST"},
		{"GET", "/v1/bond/mode", "", 405, "use PUT"},
	} {
		code, body, _ := r.call(c.method, c.path, c.body)
		if code != c.code || !strings.Contains(errMsg(t, body), c.want) {
			t.Errorf("%s %s %s = %d %s; want %d mentioning %q", c.method, c.path, c.body, code, body, c.code, c.want)
		}
	}

	code, body, _ = r.call("PUT", "/v1/bond/mode", `{"mode":"failover"}`)
	if code != 200 || !strings.Contains(body, `"mode":"failover"`) || !strings.Contains(body, `"active":["eth0"]`) {
		t.Errorf("mode = %d %s", code, body)
	}
	if code, body, _ = r.call("DELETE", "/v1/bond/members/eth1", ""); code != 204 || body != "" {
		t.Errorf("remove = %d %q", code, body)
	}
	// A request with no JSON body type is refused before the backend.
	req := httptest.NewRequest("PUT", "/v1/bond/mode", strings.NewReader(`{"mode":"failover"}`))
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	if w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("no Content-Type = %d", w.Code)
	}
}

func TestHandlerWithoutBondBackend(t *testing.T) {
	r := newRig(t) // a plain Backend: no bond routes
	code, body, _ := r.call("GET", "/v1/bond", "")
	if code != 404 || !strings.Contains(errMsg(t, body), "no such endpoint: GET /v1/bond") {
		t.Errorf("GET /v1/bond on a plain backend = %d %s", code, body)
	}
}

func TestClientBond(t *testing.T) {
	f := apitest.NewBondFake("nas1", time.Now(), "192.0.2.7/24")
	f.SetNIC("eth0", true)
	f.SetNIC("eth1", false)
	c := api.NewClient(apitest.Serve(t, f, nil))
	defer c.Close()
	ctx := context.Background()
	st, err := c.AddBondMember(ctx, api.BondAddRequest{NIC: "eth0"})
	if err != nil || !st.Bonded || st.Members[0].Name != "eth0" || st.Addresses[0] != "192.0.2.7/24" {
		t.Fatalf("AddBondMember = %+v, %v", st, err)
	}
	if _, err := c.AddBondMember(ctx, api.BondAddRequest{NIC: "eth1"}); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "no carrier") {
		t.Errorf("no carrier = %v", err)
	}
	if _, err := c.AddBondMember(ctx, api.BondAddRequest{NIC: "nope0"}); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "no such interface") {
		t.Errorf("missing NIC = %v", err)
	}
	if _, err := c.AddBondMember(ctx, api.BondAddRequest{NIC: "eth0"}); !errors.Is(err, store.ErrExists) {
		t.Errorf("twice = %v", err)
	}
	f.Fail("eth0", "carrier lost")
	st, err = c.BondStatus(ctx)
	if err != nil || st.Members[0].State != "down" || st.Members[0].Failures != 1 || st.Failovers != 1 || len(st.Active) != 0 {
		t.Errorf("after failure = %+v, %v", st, err)
	}
	if st, err = c.SetBondMode(ctx, "failover"); err != nil || st.Mode != "failover" {
		t.Errorf("SetBondMode = %+v, %v", st, err)
	}
	// Names travel escaped in the path.
	if err := c.RemoveBondMember(ctx, "a b"); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "bond rm a b") {
		t.Errorf("remove odd name = %v", err)
	}
	if err := c.RemoveBondMember(ctx, "eth0"); err != nil {
		t.Fatal(err)
	}
	if st, _ = c.BondStatus(ctx); st.Bonded || len(st.Members) != 0 {
		t.Errorf("after remove = %+v", st)
	}
}

// FuzzBondRequests throws arbitrary bodies at the bond routes: the answer
// is a 2xx, 3xx or 4xx status, with a JSON body when there is one, never
// a 500.
func FuzzBondRequests(f *testing.F) {
	f.Add("POST", "/v1/bond/members", `{"nic":"eth0","probe_target":"192.0.2.1"}`)
	f.Add("PUT", "/v1/bond/mode", `{"mode":"failover"}`)
	f.Add("DELETE", "/v1/bond/members/eth0", ``)
	f.Add("POST", "/v1/bond/members", `{"nic":"\u0000"}`)
	f.Add("PUT", "/v1/bond/mode", `[]`)
	f.Fuzz(func(t *testing.T, method, path, body string) {
		switch method {
		case "GET", "POST", "PUT", "DELETE":
		default:
			return
		}
		if !strings.HasPrefix(path, "/v1/bond") || strings.ContainsAny(path, "#?%") {
			return
		}
		req, err := http.NewRequest(method, "http://nasd"+path, strings.NewReader(body))
		if err != nil {
			return // not a URL an HTTP server would pass on
		}
		fk := apitest.NewBondFake("nas1", time.Time{}, "192.0.2.7/24")
		fk.SetNIC("eth0", true)
		h := api.NewHandler(fk, nil)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q = %d %s", method, path, body, w.Code, w.Body)
		}
		redirect := w.Code >= 300 && w.Code < 400 // the mux cleans paths such as /v1/bond/.
		if w.Code != http.StatusNoContent && !redirect && w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%s %s = %d with Content-Type %q", method, path, w.Code, w.Header().Get("Content-Type"))
		}
	})
}
