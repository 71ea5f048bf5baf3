package api

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSocketPathShort(t *testing.T) {
	got := socketPath("/var/lib/ftnas", "/nonexistent-run", "/tmp", func(string) bool { t.Fatal("writable consulted for a short path"); return false })
	if got != "/var/lib/ftnas/nasd.sock" {
		t.Errorf("got %q", got)
	}
	if SocketPath("/var/lib/ftnas") != "/var/lib/ftnas/nasd.sock" {
		t.Errorf("SocketPath default = %q", SocketPath("/var/lib/ftnas"))
	}
	// 107 bytes is the longest that fits.
	dir := "/" + strings.Repeat("d", maxSocketPath-len("/"+SocketName)-1)
	if got := socketPath(dir, "/r", "/t", func(string) bool { return true }); got != dir+"/nasd.sock" || len(got) != maxSocketPath {
		t.Errorf("107-byte path = %q (%d)", got, len(got))
	}
}

func TestSocketPathLongFallsBack(t *testing.T) {
	long := "/" + strings.Repeat("x", 120) + "/state"
	run := t.TempDir()
	tmp := t.TempDir()

	got := socketPath(long, run, tmp, func(d string) bool { return d == run })
	if filepath.Dir(got) != filepath.Join(run, "ftnas") || !strings.HasSuffix(got, ".sock") || len(got) > maxSocketPath {
		t.Errorf("writable run dir: got %q", got)
	}
	// Deterministic, and different state dirs get different sockets.
	if again := socketPath(long, run, tmp, func(d string) bool { return d == run }); again != got {
		t.Errorf("not deterministic: %q vs %q", got, again)
	}
	if other := socketPath(long+"2", run, tmp, func(d string) bool { return true }); other == got {
		t.Errorf("two state dirs share socket %q", got)
	}
	// Relative and absolute spellings of one dir agree.
	wd, _ := os.Getwd()
	rel := strings.Repeat("y", 120)
	if a, b := socketPath(rel, run, tmp, func(string) bool { return true }), socketPath(filepath.Join(wd, rel), run, tmp, func(string) bool { return true }); a != b {
		t.Errorf("relative %q vs absolute %q", a, b)
	}

	// /run not writable and no /run/ftnas: the temp dir.
	fb := socketPath(long, run, tmp, func(string) bool { return false })
	if filepath.Dir(fb) != tmp || !strings.HasPrefix(filepath.Base(fb), "ftnas-") || filepath.Base(fb) != "ftnas-"+filepath.Base(got) {
		t.Errorf("unwritable run dir: got %q", fb)
	}
	// /run/ftnas made by nasd: a user who cannot write /run still finds it.
	if err := os.Mkdir(filepath.Join(run, "ftnas"), 0o700); err != nil {
		t.Fatal(err)
	}
	if got2 := socketPath(long, run, tmp, func(string) bool { return false }); got2 != got {
		t.Errorf("existing run/ftnas: got %q, want %q", got2, got)
	}
}
