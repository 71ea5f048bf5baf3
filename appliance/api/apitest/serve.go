package apitest

import (
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"

	"ftnas/appliance/api"
)

// Serve serves api.NewHandler(b) on a unix socket in a fresh temporary
// directory until the test ends, and returns the socket path.
func Serve(t testing.TB, b api.Backend, log *slog.Logger) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), api.SocketName)
	ln, err := api.Listen(sock)
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	srv := &http.Server{Handler: api.NewHandler(b, log)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("apitest: serve: %v", err)
		}
	})
	return sock
}
