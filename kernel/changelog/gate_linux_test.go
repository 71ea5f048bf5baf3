package changelog

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openGate opens a gate for the test, reporting held opens on the returned
// channel, and closes it in Cleanup.
func openGate(t *testing.T, o GateOptions) (*Gate, chan Held) {
	t.Helper()
	held := make(chan Held, 16)
	o.OnHold = func(h Held) { held <- h }
	g, err := OpenGate(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return g, held
}

// startSh starts a shell command and returns a channel closed with its exit.
func startSh(t *testing.T, dir, script string) (*exec.Cmd, chan error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})
	return cmd, done
}

// waitDone waits for a process to exit successfully.
func waitDone(t *testing.T, what string, done chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still running", what)
	}
}

// waitHeld waits until the gate reports holding path.
func waitHeld(t *testing.T, held chan Held, path string) Held {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case h := <-held:
			if h.Path == path {
				return h
			}
		case <-timeout:
			t.Fatalf("open of %s was not held", path)
		}
	}
}

func fileContent(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestGateHoldsWritersUntilRelease(t *testing.T) {
	vol := newVolume(t, "ext4")
	g, held := openGate(t, GateOptions{Volume: vol})

	// Open gate: writers pass.
	_, done := startSh(t, vol, "echo a > a")
	waitDone(t, "writer with the gate open", done)

	g.Hold()
	file := filepath.Join(vol, "file")
	cmd, writer := startSh(t, vol, "echo x > file")
	h := waitHeld(t, held, file)
	if h.Pid != cmd.Process.Pid {
		t.Errorf("held pid %d, want the writer's %d", h.Pid, cmd.Process.Pid)
	}
	// The writer is blocked in open (answered by no one yet): it cannot
	// have written or exited.
	select {
	case err := <-writer:
		t.Fatalf("writer finished while held: %v", err)
	default:
	}
	if got := fileContent(t, file); got != "" {
		t.Fatalf("file written while held: %q", got)
	}
	if n := g.Held(); n != 1 {
		t.Errorf("Held() = %d, want 1", n)
	}

	// Readers are not held, nor is this process.
	_, reader := startSh(t, vol, "cat a > /dev/null")
	waitDone(t, "reader while held", reader)
	if err := os.WriteFile(filepath.Join(vol, "own"), []byte("o"), 0o644); err != nil {
		t.Fatal(err)
	}

	g.Release()
	waitDone(t, "held writer after Release", writer)
	if got := fileContent(t, file); got != "x\n" {
		t.Errorf("file = %q after release, want %q", got, "x\n")
	}
	if g.Holding() || g.Held() != 0 {
		t.Errorf("after Release: holding %v, held %d", g.Holding(), g.Held())
	}
}

func TestGateLetsGoAtMaxHold(t *testing.T) {
	vol := newVolume(t, "ext4")
	g, held := openGate(t, GateOptions{Volume: vol, MaxHold: 50 * time.Millisecond})
	g.Hold()
	_, writer := startSh(t, vol, "echo x > f")
	waitHeld(t, held, filepath.Join(vol, "f"))
	waitDone(t, "writer held past MaxHold", writer) // no Release
	if !g.Holding() {
		t.Error("the gate stopped holding")
	}
	if n := g.Held(); n != 0 {
		t.Errorf("Held() = %d after MaxHold", n)
	}
}

func TestGateCloseLetsGo(t *testing.T) {
	vol := newVolume(t, "ext4")
	held := make(chan Held, 1)
	g, err := OpenGate(GateOptions{Volume: vol, OnHold: func(h Held) { held <- h }})
	if err != nil {
		t.Fatal(err)
	}
	g.Hold()
	_, writer := startSh(t, vol, "echo x > f")
	waitHeld(t, held, filepath.Join(vol, "f"))
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, "held writer after Close", writer)
	if err := g.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestGateIgnore(t *testing.T) {
	vol := newVolume(t, "ext4")
	g, _ := openGate(t, GateOptions{Volume: vol, Ignore: func(int) bool { return true }})
	g.Hold()
	_, writer := startSh(t, vol, "echo x > f; : >> f; truncate -s 0 f")
	waitDone(t, "ignored writer while held", writer)
	if n := g.Held(); n != 0 {
		t.Errorf("Held() = %d", n)
	}
}

// openat2 is how Samba opens files; its flags are read from the opener's
// memory.
func TestGateOpenat2(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("needs python3 to call openat2")
	}
	vol := newVolume(t, "ext4")
	if err := os.WriteFile(filepath.Join(vol, "r"), []byte("r"), 0o644); err != nil {
		t.Fatal(err)
	}
	g, held := openGate(t, GateOptions{Volume: vol})
	g.Hold()
	const prog = `
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
flags, mode = {"r": (os.O_RDONLY, 0), "w": (os.O_WRONLY | os.O_CREAT, 0o644)}[sys.argv[2]]
how = ctypes.create_string_buffer(struct.pack("QQQ", flags, mode, 0), 24)
fd = libc.syscall(437, -100, sys.argv[1].encode(), how, ctypes.c_size_t(24))
if fd < 0:
    sys.exit("openat2: errno %d" % ctypes.get_errno())
if sys.argv[2] == "w":
    os.write(fd, b"w")
`
	_, reader := startSh(t, vol, py+" -c '"+prog+"' r r 2>&1")
	waitDone(t, "openat2 reader while held", reader)
	_, writer := startSh(t, vol, py+" -c '"+prog+"' w w")
	waitHeld(t, held, filepath.Join(vol, "w"))
	select {
	case err := <-writer:
		t.Fatalf("openat2 writer finished while held: %v", err)
	default:
	}
	g.Release()
	waitDone(t, "openat2 writer after Release", writer)
	if got := fileContent(t, filepath.Join(vol, "w")); got != "w" {
		t.Errorf("w = %q", got)
	}
}

// Running a program from the volume opens it for reading: not held.
func TestGateExecNotHeld(t *testing.T) {
	vol := newVolume(t, "ext4")
	sh(t, vol, "cp /bin/true ./true")
	g, _ := openGate(t, GateOptions{Volume: vol})
	g.Hold()
	_, done := startSh(t, vol, "./true")
	waitDone(t, "program on the volume while held", done)
}

// gateMarks counts the marks of the gate's fanotify group (the "fanotify"
// lines of its /proc fdinfo but the group's own "fanotify flags:").
func gateMarks(t *testing.T, g *Gate) int {
	t.Helper()
	rc, err := g.file.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd uintptr
	rc.Control(func(f uintptr) { fd = f })
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "fanotify ") && !strings.HasPrefix(l, "fanotify flags:") {
			n++
		}
	}
	return n
}

// An open gate has no mark: opens are not asked about (no permission
// event, no round trip); Hold puts the mark on, Release takes it off.
func TestGateMarksOnlyWhileHeld(t *testing.T) {
	vol := newVolume(t, "ext4")
	g, held := openGate(t, GateOptions{Volume: vol})
	if n := gateMarks(t, g); n != 0 {
		t.Fatalf("open gate has %d marks, want 0", n)
	}
	g.Hold()
	if n := gateMarks(t, g); n != 1 {
		t.Fatalf("held gate has %d marks, want 1", n)
	}
	_, writer := startSh(t, vol, "echo x > f")
	waitHeld(t, held, filepath.Join(vol, "f"))
	g.Release()
	waitDone(t, "held writer after Release", writer)
	if n := gateMarks(t, g); n != 0 {
		t.Fatalf("released gate has %d marks, want 0", n)
	}
	g.Hold()
	_, writer = startSh(t, vol, "echo y > g")
	waitHeld(t, held, filepath.Join(vol, "g"))
	g.Release()
	waitDone(t, "writer held again after Release", writer)
}
