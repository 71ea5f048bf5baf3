package netns

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// needRoot skips unless the test can make namespaces with ip(8).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) from iproute2 to create namespaces")
	}
}

// newNS makes a fresh namespace (loopback up) and deletes it at cleanup.
func newNS(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "ftnt-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up in %s: %v: %s", name, err, out)
	}
	return name
}

// threadNS is the network namespace inode of the calling thread.
func threadNS(t *testing.T) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestDoEntersAndRestores(t *testing.T) {
	needRoot(t)
	ns := newNS(t)
	want := nsInode(t, filepath.Join(RunDir, ns))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	home := threadNS(t)
	if home == want {
		t.Fatal("the test already runs in the new namespace")
	}
	var inside uint64
	var ifaces []net.Interface
	err := Do(ns, func() (err error) {
		inside = threadNS(t)
		ifaces, err = net.Interfaces()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside != want {
		t.Errorf("fn ran in namespace inode %d; want %d (%s)", inside, want, ns)
	}
	if len(ifaces) != 1 || ifaces[0].Name != "lo" {
		t.Errorf("interfaces inside %s: %v; want only lo", ns, ifaces)
	}
	if got := threadNS(t); got != home {
		t.Errorf("caller's thread moved to namespace %d; want %d", got, home)
	}
}

func TestDoReturnsFnError(t *testing.T) {
	needRoot(t)
	ns := newNS(t)
	boom := errors.New("boom")
	if err := Do(ns, func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Do returned %v; want fn's error", err)
	}
}

func TestDoMissingOrBogusNamespace(t *testing.T) {
	needRoot(t)
	ran := false
	fn := func() error { ran = true; return nil }
	err := Do("ftnt-does-not-exist", fn)
	if err == nil || !strings.Contains(err.Error(), "ftnt-does-not-exist") {
		t.Errorf("Do on a missing namespace: %v; want an error naming it", err)
	}
	f := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err = Do(f, fn)
	if err == nil || !strings.Contains(err.Error(), "not a namespace file") {
		t.Errorf("Do on a plain file: %v; want 'not a namespace file'", err)
	}
	if ran {
		t.Error("fn ran although the namespace could not be entered")
	}
}

// No thread may be left in a lab namespace: after many concurrent Do calls,
// every thread a locked goroutine lands on is in the test's namespace.
func TestDoLeavesNoThreadBehind(t *testing.T) {
	needRoot(t)
	ns := newNS(t)
	runtime.LockOSThread()
	home := threadNS(t)
	runtime.UnlockOSThread()
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if err := Do(ns, func() error { return nil }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	bad := make(chan uint64, 256)
	for range 256 {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if got := threadNS(t); got != home {
				bad <- got
			}
		})
	}
	wg.Wait()
	close(bad)
	for got := range bad {
		t.Errorf("a thread is in namespace %d after Do; want %d", got, home)
	}
}

// Sockets made by Listen and Dial live in their namespace: a listener on
// 127.0.0.1 in one namespace is reachable from that namespace only, and
// the sockets work from any goroutine.
func TestListenDialStayInNamespace(t *testing.T) {
	needRoot(t)
	a, b := newNS(t), newNS(t)
	ln, err := Listen(a, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Write([]byte("echo " + line))
			}()
		}
	}()

	c, err := Dial(a, "tcp", addr)
	if err != nil {
		t.Fatalf("dial inside %s: %v", a, err)
	}
	defer c.Close()
	done := make(chan string, 1)
	go func() { // another goroutine, any thread
		c.Write([]byte("hi\n"))
		line, _ := bufio.NewReader(c).ReadString('\n')
		done <- line
	}()
	if got := <-done; got != "echo hi\n" {
		t.Errorf("reply %q; want %q", got, "echo hi\n")
	}

	_, err = Dial(b, "tcp", addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial %s from %s: %v; want connection refused (another namespace's loopback)", addr, b, err)
	}
	if !strings.Contains(err.Error(), b) {
		t.Errorf("dial error %q does not name the namespace %s", err, b)
	}
}

func TestListenPacketInNamespace(t *testing.T) {
	needRoot(t)
	a := newNS(t)
	pc, err := ListenPacket(a, "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := Dial(a, "udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("read %q, %v; want ping", buf[:n], err)
	}
}

func TestDialContextHonoursContext(t *testing.T) {
	needRoot(t)
	a := newNS(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := DialContext(ctx, a, "tcp", "127.0.0.1:9"); !errors.Is(err, context.Canceled) {
		t.Fatalf("DialContext with a cancelled context: %v; want context.Canceled", err)
	}
}

func TestExecAndStart(t *testing.T) {
	needRoot(t)
	a := newNS(t)
	out, err := Exec(t.Context(), a, "ip", "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], ": lo:") {
		t.Errorf("links inside %s: %q; want only lo", a, out)
	}
	// The child's namespace is the target's, not the caller's.
	cmd := exec.Command("readlink", "/proc/self/ns/net")
	var buf strings.Builder
	cmd.Stdout = &buf
	if err := Start(a, cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	want := nsInode(t, filepath.Join(RunDir, a))
	if got := strings.TrimSpace(buf.String()); !strings.Contains(got, "["+strconv.FormatUint(want, 10)+"]") {
		t.Errorf("child's namespace %q; want inode %d", got, want)
	}

	_, err = Exec(t.Context(), a, "ip", "link", "show", "dev", "nosuchdev")
	if err == nil || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), "nosuchdev") {
		t.Errorf("failing command: %v; want an error naming the namespace and the command", err)
	}
}
