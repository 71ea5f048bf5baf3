package api

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeRequest(t *testing.T) {
	const ct = "application/json"
	var ok AddShareRequest
	if err := decodeRequest("application/json; charset=utf-8", strings.NewReader(`{"name":"media","path":"m","nfs":true,"clients":["192.0.2.0/24"]}`+"\n"), &ok); err != nil {
		t.Fatalf("good request: %v", err)
	}
	if ok.Name != "media" || ok.Path != "m" || !ok.NFS || ok.SMB || len(ok.Clients) != 1 {
		t.Errorf("decoded %+v", ok)
	}
	cases := []struct {
		ct, body string
		status   int
		want     string
	}{
		{"", `{}`, 415, "Content-Type must be application/json"},
		{"text/plain", `{}`, 415, `not "text/plain"`},
		{"application/jsonx", `{}`, 415, "Content-Type"},
		{ct, ``, 400, "body is empty"},
		{ct, `   `, 400, "body is empty"},
		{ct, `null`, 400, "must be a JSON object"},
		{ct, `[1]`, 400, "must be a JSON object"},
		{ct, `{"nmae":"x"}`, 400, `decode request: unknown field "nmae"`},
		{ct, `{"name":1}`, 400, `field "name" must be a string, not number`},
		{ct, `{"nfs":"yes"}`, 400, `field "nfs" must be true or false, not string`},
		{ct, `{"clients":"x"}`, 400, `field "clients" must be an array`},
		{ct, `{"name":"a"} {"name":"b"}`, 400, "unexpected data after the JSON object"},
		{ct, `{"name":"a"}}`, 400, "unexpected data after the JSON object"},
		{ct, `{"name":"a"`, 400, "truncated JSON"},
		{ct, `{"name":'a'}`, 400, "invalid JSON at byte"},
		{ct, `{"name":"` + strings.Repeat("a", MaxRequestBytes) + `"}`, 413, "larger than 65536 bytes"},
	}
	for _, c := range cases {
		var v AddShareRequest
		err := decodeRequest(c.ct, strings.NewReader(c.body), &v)
		var re *requestError
		if !errors.As(err, &re) || re.status != c.status || !strings.Contains(err.Error(), c.want) {
			body := c.body
			if len(body) > 40 {
				body = body[:40] + "..."
			}
			t.Errorf("decode(%q, %q) = %v, want %d mentioning %q", c.ct, body, err, c.status, c.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "decode request: ") {
			t.Errorf("error %q does not name the operation", err)
		}
	}
	// Exactly at the limit is fine.
	pad := MaxRequestBytes - len(`{"name":""}`)
	var v AddShareRequest
	if err := decodeRequest(ct, strings.NewReader(`{"name":"`+strings.Repeat("a", pad)+`"}`), &v); err != nil {
		t.Errorf("body of exactly %d bytes: %v", MaxRequestBytes, err)
	}
}

func TestDecodeErrorDoesNotEchoPassword(t *testing.T) {
	var v PasswordRequest
	err := decodeRequest("application/json", strings.NewReader(`{"password":"hunter2","extra":1}`), &v)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v", err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	seeds := []string{
		`{"name":"media","path":"m","nfs":true,"smb":false,"read_only":true,"clients":["192.0.2.0/24"]}`,
		`{"name":"alice","password":"pw"}`,
		`{"password":"pw"}`,
		`{}`, ``, `null`, `{"nmae":1}`, `{"name":"a"}{}`, `{"name":"\u00e4\ud800"}`,
		`{"clients":[1,2,{}]}`, `{"name":` + strings.Repeat("[", 1000),
	}
	for _, s := range seeds {
		f.Add("application/json", []byte(s))
	}
	f.Add("application/json; charset=utf-8", []byte(`{"name":"x"}`))
	f.Add("text/plain", []byte(`{}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		targets := []any{&AddShareRequest{}, &AddUserRequest{}, &PasswordRequest{}}
		for _, v := range targets {
			err := decodeRequest(ct, strings.NewReader(string(body)), v)
			if err == nil {
				continue
			}
			var re *requestError
			if !errors.As(err, &re) {
				t.Fatalf("error is not a requestError: %T %v", err, err)
			}
			switch re.status {
			case http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusRequestEntityTooLarge:
			default:
				t.Fatalf("status %d for %v", re.status, err)
			}
			if !strings.HasPrefix(err.Error(), "decode request: ") || !utf8.ValidString(err.Error()) {
				t.Fatalf("bad message %q", err)
			}
		}
	})
}
