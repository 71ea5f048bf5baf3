package labtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Options shape a lab.
type Options struct {
	Nodes   int    // default 2
	Clients int    // default 1
	FS      string // node volumes: "btrfs", "dir", or "" for the script's default
	// Script is scripts/lab; by default $FTNAS_LAB_SCRIPT, else found by
	// walking up from the working directory to the module root.
	Script string
}

// Lab is a lab that is up. Info is as of Up; Status reads it anew.
type Lab struct {
	Info
	t      testing.TB
	script string
}

// RunDir is where scripts/lab records its labs.
const RunDir = "/run/ftnas-lab"

// Up brings a lab up under a unique name and takes it down in t.Cleanup.
// It skips the test when the lab cannot run here (not root, tools
// missing) and fails it when `up` fails.
func Up(t testing.TB, opts Options) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the lab makes network namespaces, veths and loop mounts")
	}
	var missing []string
	for _, tool := range []string{"ip", "nft", "tc", "flock", "setsid"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		t.Skipf("the lab needs %s (scripts/deps installs them)", strings.Join(missing, ", "))
	}
	script, err := findScript(opts.Script)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Nodes == 0 {
		opts.Nodes = 2
	}
	if opts.Clients == 0 {
		opts.Clients = 1
	}
	args := []string{"up", "--nodes", strconv.Itoa(opts.Nodes), "--clients", strconv.Itoa(opts.Clients)}
	if opts.FS != "" {
		args = append(args, "--fs", opts.FS)
	}
	name := newName()
	l := &Lab{t: t, script: script, Info: Info{Name: name}}
	t.Cleanup(func() {
		if t.Failed() {
			l.logNasd()
		}
		if err := l.Down(); err != nil {
			t.Errorf("labtest: %v", err)
		}
	})
	if _, err := l.Run(args...); err != nil {
		t.Fatal(err)
	}
	in, err := l.Status()
	if err != nil {
		t.Fatal(err)
	}
	l.Info = in
	return l
}

// newName is a fresh lab name: "t" and 6 random base-36 characters.
func newName() string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 7)
	rand.Read(b) // never fails (crypto/rand)
	b[0] = 't'
	for i := 1; i < len(b); i++ {
		b[i] = digits[int(b[i])%len(digits)]
	}
	return string(b)
}

func findScript(s string) (string, error) {
	if s == "" {
		s = os.Getenv("FTNAS_LAB_SCRIPT")
	}
	if s != "" {
		if _, err := os.Stat(s); err != nil {
			return "", fmt.Errorf("labtest: lab script: %w", err)
		}
		return s, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("labtest: find scripts/lab: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "scripts", "lab")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("labtest: module root %s has no scripts/lab: %w", dir, err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("labtest: find scripts/lab: no go.mod above the working directory (set Options.Script or FTNAS_LAB_SCRIPT)")
		}
		dir = parent
	}
}

// Run runs `scripts/lab --name NAME ARGS...` and returns its output. The
// error carries the command and its output.
func (l *Lab) Run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.script, append([]string{"--name", l.Name}, args...)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("scripts/lab --name %s %s: %w\n%s", l.Name, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// Must is Run, failing t on error. Lab methods that take t fail the test
// (or subtest) they are given.
func (l *Lab) Must(t testing.TB, args ...string) string {
	t.Helper()
	out, err := l.Run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Status reads the lab's current state (faults, nasd).
func (l *Lab) Status() (Info, error) {
	out, err := l.Run("status", "--json")
	if err != nil {
		return Info{}, err
	}
	return ParseInfo([]byte(out))
}

// Node returns node name (n1, n2, ...). It panics if the lab has no such
// node (a mistake in the test).
func (l *Lab) Node(name string) Node {
	for _, n := range l.Nodes {
		if n.Name == name {
			return n
		}
	}
	panic(fmt.Sprintf("labtest: lab %s has no node %q", l.Name, name))
}

// Client returns client name (c1, c2, ...). It panics if the lab has no
// such client (a mistake in the test).
func (l *Lab) Client(name string) Client {
	for _, c := range l.Clients {
		if c.Name == name {
			return c
		}
	}
	panic(fmt.Sprintf("labtest: lab %s has no client %q", l.Name, name))
}

// Cut cuts member's path: "public", "dedicated" or "witness".
func (l *Lab) Cut(t testing.TB, member, path string) { t.Helper(); l.Must(t, "cut", member, path) }

// Restore restores member's path (all paths when path is "").
func (l *Lab) Restore(t testing.TB, member, path string) {
	t.Helper()
	if path == "" {
		l.Must(t, "restore", member)
		return
	}
	l.Must(t, "restore", member, path)
}

// Partition cuts both of node's paths.
func (l *Lab) Partition(t testing.TB, node string) { t.Helper(); l.Must(t, "partition", node) }

// Heal removes every fault of member, or of every member when member is "".
func (l *Lab) Heal(t testing.TB, member string) {
	t.Helper()
	if member == "" {
		l.Must(t, "heal")
		return
	}
	l.Must(t, "heal", member)
}

// Loss drops percent (0..100, 0.1 resolution) of the packets on member's
// path, each direction independently; 0 removes the loss.
func (l *Lab) Loss(t testing.TB, member, path string, percent float64) {
	t.Helper()
	l.Must(t, "loss", member, path, strconv.FormatFloat(percent, 'f', 1, 64))
}

// Rate limits member's path with tbf in both directions ("10mbit";
// "off" removes the limit).
func (l *Lab) Rate(t testing.TB, member, path, rate string) {
	t.Helper()
	l.Must(t, "rate", member, path, rate)
}

// Nasd runs `scripts/lab nasd ACTION NODE ARGS...`: start (ARGS: --bin
// PATH, then -- and nasd's own flags), stop, kill, freeze, thaw.
func (l *Lab) Nasd(t testing.TB, action, node string, args ...string) {
	t.Helper()
	l.Must(t, append([]string{"nasd", action, node}, args...)...)
}

// Down takes the lab down (also done at cleanup; a second call is
// harmless) and fails naming anything left behind.
func (l *Lab) Down() error {
	if _, err := l.Run("down"); err != nil {
		return err
	}
	if left := l.Leftovers(); len(left) > 0 {
		return fmt.Errorf("lab %s: left behind after down: %s", l.Name, strings.Join(left, "; "))
	}
	return nil
}

// Leftovers lists what of the lab exists: namespaces, host links and
// mounts carrying its prefix or dir, loop devices backed by its files,
// processes started from its dir, its record and its dir.
func (l *Lab) Leftovers() []string {
	prefix := "ftl-" + l.Name + "-"
	dir := l.Dir
	if dir == "" {
		dir = "/var/tmp/ftl-" + l.Name
	}
	var left []string
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix) {
				left = append(left, "namespace "+e.Name())
			}
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for line := range strings.Lines(string(out)) {
			if f := strings.SplitN(line, ": ", 3); len(f) == 3 && strings.HasPrefix(f[1], prefix) {
				left = append(left, "host link "+f[1])
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			f := strings.Fields(line)
			if len(f) > 4 && (strings.HasPrefix(f[4], dir+"/") || strings.Contains(f[4], "/"+prefix)) {
				left = append(left, "mount "+f[4])
			}
		}
	}
	if out, err := exec.Command("losetup", "-l", "-n", "-O", "NAME,BACK-FILE").Output(); err == nil {
		for line := range strings.Lines(string(out)) {
			if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[1], dir+"/") {
				left = append(left, "loop "+f[0]+" ("+f[1]+")")
			}
		}
	}
	left = append(left, procsUnder(dir)...)
	for _, p := range []string{filepath.Join(RunDir, l.Name), dir} {
		if _, err := os.Lstat(p); err == nil {
			left = append(left, "path "+p)
		}
	}
	return left
}

// procsUnder lists processes whose command line names dir/.
func procsUnder(dir string) []string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var left []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(dir+"/")) {
			continue
		}
		left = append(left, fmt.Sprintf("process %s (%s)", e.Name(), strings.ReplaceAll(string(bytes.TrimRight(b, "\x00")), "\x00", " ")))
	}
	return left
}

// logNasd logs the tail of every node's nasd log.
func (l *Lab) logNasd() {
	for _, n := range l.Nodes {
		f, err := os.Open(n.Log)
		if err != nil {
			continue
		}
		var lines []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if len(lines) > 40 {
				lines = lines[1:]
			}
		}
		f.Close()
		l.t.Logf("labtest: %s's nasd log (%s), last lines:\n%s", n.Name, n.Log, strings.Join(lines, "\n"))
	}
}
