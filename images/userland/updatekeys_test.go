package userland

import (
	"strings"
	"testing"
)

func TestUpdateKeyFiles(t *testing.T) {
	pem := []byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n")
	fs, err := UpdateKeyFiles([]UpdateKey{{ID: "0123456789abcdef", PEM: pem}, {ID: "fedcba9876543210", PEM: pem}, {ID: "0123456789abcdef", PEM: pem}})
	if err != nil || len(fs) != 2 || fs[0].Path != "/etc/ftnas/update-keys/0123456789abcdef.pub" || string(fs[1].Data) != string(pem) || fs[1].Mode != 0 {
		t.Fatalf("files %+v, %v", fs, err)
	}
	for _, tt := range []struct {
		k    UpdateKey
		want string
	}{
		{UpdateKey{ID: "../../etc/passwd", PEM: pem}, "16 lower-case hex"},
		{UpdateKey{ID: "0123456789ABCDEF", PEM: pem}, "16 lower-case hex"},
		{UpdateKey{ID: "0123456789abcdef", PEM: []byte("-----BEGIN PRIVATE KEY-----\n")}, "not a PEM public key"},
	} {
		if _, err := UpdateKeyFiles([]UpdateKey{tt.k}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.k, err, tt.want)
		}
	}
}
