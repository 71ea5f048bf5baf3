package changelog

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCaptureSeeds records raw event buffers from the running kernel into
// testdata/, the seeds of FuzzParse and the inputs of TestParseCaptured.
// Run it by hand when the kernel's output changes:
//
//	FTNAS_CAPTURE_SEEDS=1 go test -run TestCaptureSeeds ./kernel/changelog
func TestCaptureSeeds(t *testing.T) {
	if os.Getenv("FTNAS_CAPTURE_SEEDS") == "" {
		t.Skip("set FTNAS_CAPTURE_SEEDS=1 to record testdata/*.bin from this kernel")
	}
	script := `mkdir -p s/d; echo x > s/d/f; chmod 600 s/d/f; setfattr -n user.a -v 1 s/d/f
ln s/d/f s/d/g; mv s/d/g s/h; chmod 700 s/d; truncate -s 0 s/h; ln -s f s/d/s; rm s/h
mv s/d s/e; rm -r s/e`
	for _, fs := range []string{"ext4", "btrfs"} {
		mnt := newVolume(t, fs)
		f, err := openGroup(notifyInitFlags, unix.O_RDONLY, mnt, notifyMask)
		if err != nil {
			t.Fatal(err)
		}
		sh(t, mnt, script)
		writeCapture(t, f, "notify-"+fs+".bin")

		// Overflow: a queue of more events than the limit, read at once.
		for i := range 17000 {
			if err := os.Rename(filepath.Join(mnt, fmt.Sprint("n", i)), filepath.Join(mnt, fmt.Sprint("n", i+1))); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if i == 0 {
				os.WriteFile(filepath.Join(mnt, "n1"), nil, 0o644)
			}
		}
		var last []byte
		buf := make([]byte, readBufSize)
		for {
			n, err := unix.Read(int(f.Fd()), buf)
			if err != nil {
				break
			}
			last = append(last[:0], buf[:n]...)
		}
		if err := os.WriteFile(filepath.Join("testdata", "overflow-"+fs+".bin"), last, 0o644); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}

	mnt := newVolume(t, "ext4")
	f, err := openGroup(gateInitFlags&^unix.FAN_NONBLOCK, gateEventFlags, mnt, unix.FAN_OPEN_PERM)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, done := startSh(t, mnt, "echo x > f")
	buf := make([]byte, 4096)
	n, err := unix.Read(int(f.Fd()), buf)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := Parse(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		respond(f, ev.FD, true)
		unix.Close(int(ev.FD))
	}
	waitDone(t, "writer", done)
	if err := os.WriteFile(filepath.Join("testdata", "perm-ext4.bin"), buf[:n], 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeCapture(t *testing.T, f *os.File, name string) {
	t.Helper()
	buf := make([]byte, readBufSize)
	n, err := unix.Read(int(f.Fd()), buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", name), buf[:n], 0o644); err != nil {
		t.Fatal(err)
	}
}
