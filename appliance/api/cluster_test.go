package api_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"ftnas/appliance/api"
	"ftnas/appliance/api/apitest"
)

func TestHandlerCluster(t *testing.T) {
	f := apitest.NewClusterFake("nas1")
	h := api.NewHandler(f, slog.New(slog.DiscardHandler))
	call := func(method, path, body string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	code, body := call("GET", "/v1/cluster", "")
	if code != 200 || !strings.Contains(body, `"protection":"standalone"`) || !strings.Contains(body, `"paths":[]`) || !strings.Contains(body, `"alarms":[]`) {
		t.Fatalf("stand-alone status: %d %s", code, body)
	}
	if code, body := call("POST", "/v1/cluster/promote", ""); code != 400 || !strings.Contains(body, "not in a cluster") {
		t.Fatalf("promote alone: %d %s", code, body)
	}
	if code, body := call("POST", "/v1/cluster/init", `{"vip":"10.0.0.100"}`); code != 400 {
		t.Fatalf("bad init: %d %s", code, body)
	}
	if strings.Contains(body, `"timing"`) {
		t.Fatalf("stand-alone status shows a timing: %s", body)
	}
	code, body = call("POST", "/v1/cluster/init", `{"vip":"10.0.0.100/24","public":"10.0.0.11","peer_public":"10.0.0.12","witness":"10.0.0.254",`+
		`"heartbeat_interval_ms":120,"dead_interval_ms":800,"lease_ms":450}`)
	var out api.ClusterInitResponse
	if code != 201 || json.Unmarshal([]byte(body), &out) != nil || out.Token == "" || out.Status.NodeID != 1 {
		t.Fatalf("init: %d %s", code, body)
	}
	if r := f.InitRequest; r.HeartbeatIntervalMS != 120 || r.DeadIntervalMS != 800 || r.LeaseMS != 450 {
		t.Fatalf("init request timing %+v", r)
	}
	f.Cluster.Timing = api.ClusterTiming{IntervalMS: 120, JitterMS: 40, DeadMS: 800, LeaseMS: 450}
	if _, body := call("GET", "/v1/cluster", ""); !strings.Contains(body, `"timing":{"heartbeat_interval_ms":120,"jitter_ms":40,"dead_interval_ms":800,"lease_ms":450}`) {
		t.Fatalf("status timing: %s", body)
	}
	if code, _ := call("POST", "/v1/cluster/init", `{"vip":"10.0.0.100/24","public":"10.0.0.11","peer_public":"10.0.0.12","witness":"10.0.0.254"}`); code != http.StatusConflict {
		t.Fatalf("second init: %d", code)
	}
	for _, a := range []string{"promote", "demote", "failback", "takeover"} {
		if code, body := call("POST", "/v1/cluster/"+a, ""); code != 204 {
			t.Fatalf("%s: %d %s", a, code, body)
		}
	}
	if code, _ := call("POST", "/v1/cluster/explode", ""); code != 404 {
		t.Fatalf("unknown action: %d", code)
	}
	if code, _ := call("GET", "/v1/cluster/promote", ""); code != 405 {
		t.Fatalf("GET on an action: %d", code)
	}
	if code, _ := call("DELETE", "/v1/cluster", ""); code != 204 {
		t.Fatalf("leave: %d", code)
	}
	if want := []string{"promote", "demote", "failback", "takeover", "leave"}; !slices.Equal(f.Actions, want) {
		t.Fatalf("actions %v, want %v", f.Actions, want)
	}
}

// A Backend without the cluster part has no cluster routes.
func TestHandlerWithoutCluster(t *testing.T) {
	h := api.NewHandler(apitest.NewFake("nas1"), nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/v1/cluster", nil))
	if w.Code != 404 {
		t.Fatalf("GET /v1/cluster on a plain backend: %d", w.Code)
	}
}
