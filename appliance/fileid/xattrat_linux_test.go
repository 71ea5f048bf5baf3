package fileid

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// readStamp (getxattrat) reads what the /proc path reads, a symlink's own
// Stamp included, and writeStamp (setxattrat) writes what it would.
func TestStampXattrAt(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	for _, n := range []string{"stamped", "bare", "damaged", "new"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("stamped", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	want := Stamp{ID: 4242, Gen: 7}
	if err := unix.Lsetxattr(filepath.Join(dir, "stamped"), XattrName, want.MarshalBinary(), 0); err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			t.Skipf("no trusted xattrs on %s: %v", dir, err)
		}
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(dir, "damaged"), XattrName, []byte("not a stamp"), 0); err != nil {
		t.Fatal(err)
	}
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	var buf [64]byte
	if _, there, _ := getxattrAt(dfd, "stamped", XattrName, buf[:]); !there {
		t.Log("no getxattrat on this kernel: only the /proc path is tested")
	}
	reads := map[string]func(string) (Stamp, error){
		"at":   func(n string) (Stamp, error) { return readStamp(dfd, n) },
		"proc": func(n string) (Stamp, error) { return lreadStamp(procPath(dfd, n)) },
	}
	for how, read := range reads {
		if st, err := read("stamped"); err != nil || st != want {
			t.Errorf("%s: stamped: %v, %v; want %v", how, st, err, want)
		}
		for _, n := range []string{"bare", "damaged", "link"} { // a symlink's own, not its target's
			if st, err := read(n); !errors.Is(err, ErrNoStamp) {
				t.Errorf("%s: %s: %v, %v; want ErrNoStamp", how, n, st, err)
			}
		}
		if _, err := read("missing"); !errors.Is(err, unix.ENOENT) {
			t.Errorf("%s: missing: %v; want ENOENT", how, err)
		}
	}

	// writeStamp: XATTR_CREATE refuses a stamped file, sets a bare one,
	// and sets a symlink's own xattr, not its target's.
	nst := Stamp{ID: 9, Gen: 1}
	if err := writeStamp(dfd, "stamped", nst.MarshalBinary(), unix.XATTR_CREATE); !errors.Is(err, unix.EEXIST) {
		t.Errorf("create over a Stamp: %v; want EEXIST", err)
	}
	if err := writeStamp(dfd, "new", nst.MarshalBinary(), unix.XATTR_CREATE); err != nil {
		t.Fatal(err)
	}
	if st, err := lreadStamp(filepath.Join(dir, "new")); err != nil || st != nst {
		t.Errorf("new: %v, %v; want %v", st, err, nst)
	}
	if err := writeStamp(dfd, "link", nst.MarshalBinary(), unix.XATTR_CREATE); err != nil {
		t.Fatal(err)
	}
	if st, err := lreadStamp(filepath.Join(dir, "link")); err != nil || st != nst {
		t.Errorf("link: %v, %v; want %v", st, err, nst)
	}
	if st, err := readStamp(dfd, "stamped"); err != nil || st != want {
		t.Errorf("link's target changed: %v, %v; want %v", st, err, want)
	}
	if err := writeStamp(dfd, "missing", nst.MarshalBinary(), 0); !errors.Is(err, unix.ENOENT) {
		t.Errorf("missing: %v; want ENOENT", err)
	}
}

// StampNew stamps a bare file, and gives a stamped one what StampAt gives:
// its Stamp, or a new one for a copy of another file's.
func TestStampNew(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(e.vol, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := e.tree.Root()
	fd := e.tree.RootFD()
	sa, err := e.tree.StampNew(fd, root, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readStamp(fd, "a"); err != nil || got != sa {
		t.Fatalf("a carries %v, %v; StampNew said %v", got, err, sa)
	}
	if again, err := e.tree.StampNew(fd, root, "a"); err != nil || again != sa {
		t.Errorf("StampNew of a stamped file: %v, %v; want %v", again, err, sa)
	}
	if loc, ok, err := e.idx.Get(sa.ID); err != nil || !ok || loc != (Loc{Parent: root.ID, Name: "a"}) {
		t.Errorf("index of a: %v %v %v", loc, ok, err)
	}
	// b becomes a copy of a that kept the xattr: re-issued.
	if err := unix.Lsetxattr(filepath.Join(e.vol, "b"), XattrName, sa.MarshalBinary(), 0); err != nil {
		t.Fatal(err)
	}
	sb, err := e.tree.StampNew(fd, root, "b")
	if err != nil {
		t.Fatal(err)
	}
	if sb == sa || sb.IsZero() {
		t.Errorf("copy b kept %v (a has %v); want a new Stamp", sb, sa)
	}
	// The ID StampNew drew for a (refused: a had one) went back: IDs
	// stay dense.
	if sb.ID != sa.ID+1 {
		t.Errorf("b's new Stamp %v is not the next after a's %v", sb, sa)
	}
	if _, err := e.tree.StampNew(fd, root, "missing"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("missing: %v; want ENOENT", err)
	}
}
