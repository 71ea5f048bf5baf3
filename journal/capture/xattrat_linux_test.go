package capture

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// stampReader reads what fileid.ReadStamp reads, with getxattrat and in
// its fallback.
func TestStampReader(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: trusted.* xattrs")
	}
	dir := t.TempDir()
	for _, n := range []string{"stamped", "bare", "damaged"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("stamped", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	want := fileid.Stamp{ID: 4242, Gen: 7}
	set := func(name string, v []byte) {
		t.Helper()
		if err := unix.Lsetxattr(filepath.Join(dir, name), fileid.XattrName, v, 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) {
				t.Skipf("no trusted xattrs on %s: %v", dir, err)
			}
			t.Fatal(err)
		}
	}
	set("stamped", want.MarshalBinary())
	set("damaged", []byte("not a stamp"))
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	for _, fallback := range []bool{false, true} {
		var r stampReader
		r.fallback.Store(fallback)
		if st, err := r.read(dfd, "stamped"); err != nil || st != want {
			t.Errorf("fallback %v: stamped: %v, %v; want %v", fallback, st, err, want)
		}
		for _, n := range []string{"bare", "damaged", "link"} { // a symlink's own, not its target's
			if st, err := r.read(dfd, n); !errors.Is(err, fileid.ErrNoStamp) {
				t.Errorf("fallback %v: %s: %v, %v; want ErrNoStamp", fallback, n, st, err)
			}
		}
		if _, err := r.read(dfd, "missing"); !gone(err) {
			t.Errorf("fallback %v: missing: %v; want a gone error", fallback, err)
		}
		if r.fallback.Load() != fallback {
			t.Errorf("fallback %v: switched to %v on a kernel that has getxattrat", fallback, r.fallback.Load())
		}
	}
}
