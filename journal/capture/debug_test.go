package capture

import (
	"log/slog"
	"os"
	"strconv"
	"testing"
)

// TestTranslateSeed reruns one seed of TestTranslateRandom with a trace of
// every operation, change batch and record: CAPTURE_SEED=27 go test -run
// TestTranslateSeed -v ./journal/capture/ (with CAPTURE_CONCURRENT=1, one
// of TestTranslateRandomConcurrent; with CAPTURE_PREFETCH=1 too, one of
// TestTranslateRandomPrefetch).
func TestTranslateSeed(t *testing.T) {
	s := os.Getenv("CAPTURE_SEED")
	if s == "" {
		t.Skip("set CAPTURE_SEED to trace one seed of TestTranslateRandom")
	}
	seed, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	debugTrace = t
	debugLog = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	defer func() { debugTrace, debugLog = nil, nil }()
	randomRunPrefetch(t, seed, 120, os.Getenv("CAPTURE_CONCURRENT") != "", os.Getenv("CAPTURE_PREFETCH") != "")
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}
