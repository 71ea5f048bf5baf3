package api

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeResponse(t *testing.T) {
	var sh Share
	if err := decodeResponse(200, "application/json", []byte(`{"name":"a","fsid":3}`), &sh); err != nil || sh.FSID != 3 {
		t.Errorf("ok answer: %+v %v", sh, err)
	}
	err := decodeResponse(404, "application/json", []byte(`{"error":"share \"a\": not found"}`), nil)
	var ae *Error
	if !errors.As(err, &ae) || ae.StatusCode != 404 || ae.Message != `share "a": not found` {
		t.Errorf("error answer = %#v", err)
	}
	err = decodeResponse(502, "text/html", []byte("<html>"+strings.Repeat("x", 500)), nil)
	if !errors.As(err, &ae) || !strings.HasPrefix(err.Error(), "nasd answered 502: <html>") || len(err.Error()) > 250 {
		t.Errorf("non-JSON error = %v", err)
	}
	if err := decodeResponse(200, "text/plain", []byte("{}"), &sh); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Errorf("non-JSON success = %v", err)
	}
	if err := decodeResponse(204, "", nil, nil); err != nil {
		t.Errorf("204 = %v", err)
	}
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add(200, "application/json", []byte(`[{"name":"a","clients":["x"]}]`))
	f.Add(400, "application/json", []byte(`{"error":"bad"}`))
	f.Add(500, "text/plain", []byte("oops"))
	f.Add(204, "", []byte{})
	f.Add(409, "application/json", []byte(`{"error":""}`))
	f.Fuzz(func(t *testing.T, status int, ct string, body []byte) {
		var out []Share
		err := decodeResponse(status, ct, body, &out)
		var ae *Error
		if status < 200 || status > 299 {
			if !errors.As(err, &ae) || ae.StatusCode != status || ae.Message == "" {
				t.Fatalf("status %d: err %#v", status, err)
			}
		} else if errors.As(err, &ae) {
			t.Fatalf("success status %d gave an api error %v", status, err)
		}
	})
}
