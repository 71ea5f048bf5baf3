package smb

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Clock is the time source for back-off and for deciding that smbd has
// been up long enough to reset the back-off. Tests pass a fake.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Defaults for SupervisorConfig's zero values.
const (
	DefaultMinBackoff  = 200 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
	DefaultStableAfter = 30 * time.Second
	DefaultStopGrace   = 5 * time.Second
	DefaultReadyPoll   = 5 * time.Second
)

// SupervisorConfig configures a Supervisor.
type SupervisorConfig struct {
	ConfPath   string       // absolute path of the rendered smb.conf
	Log        *slog.Logger // nil = discard
	Clock      Clock        // nil = real time
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// StableAfter is how long smbd must have been up for its next exit to
	// restart with MinBackoff again (0 = DefaultStableAfter).
	StableAfter time.Duration
	// StopGrace is how long smbd gets after SIGTERM before SIGKILL (0 =
	// DefaultStopGrace). It is real time: it waits on a real process.
	StopGrace time.Duration
	SmbdPath  string // default "smbd"
	// Ready, when set, says whether smbd can start now. Before each start
	// Run waits until it holds, asking again at every Kick and every
	// ReadyPoll (0 = DefaultReadyPoll); the wait counts as no restart
	// and does not grow the back-off. nasd holds smbd back with it while
	// the address smbd must bind (a cluster's virtual IP) is absent: an
	// smbd told to bind only that address finds no interface, panics and
	// dumps core, again and again on a standby.
	Ready     func() bool
	ReadyPoll time.Duration
	// SmbcontrolPath is used by Reload (default "smbcontrol").
	SmbcontrolPath string
}

// Phase is what the supervisor is doing.
type Phase string

// Phases reported by State.
const (
	PhaseStopped  Phase = "stopped"  // Run not active
	PhaseStarting Phase = "starting" // spawning smbd
	PhaseRunning  Phase = "running"  // smbd process alive
	PhaseBackoff  Phase = "backoff"  // smbd exited; waiting to restart
	PhaseWaiting  Phase = "waiting"  // Ready says smbd cannot start yet
)

// State is a snapshot for status reporting.
type State struct {
	Phase     Phase
	PID       int       // smbd's pid while running, else 0
	Restarts  int       // restarts since Run began
	Since     time.Time // when Phase was entered (Clock time)
	LastError string    // last start failure or abnormal exit, "" if none
}

// Supervisor runs and restarts smbd. Create it with NewSupervisor.
type Supervisor struct {
	cfg SupervisorConfig

	kick chan struct{} // Kick: cut the back-off wait short

	mu    sync.Mutex
	state State
	run   runState // platform part, guarded by mu
}

// NewSupervisor returns a Supervisor with defaults filled in.
func NewSupervisor(cfg SupervisorConfig) *Supervisor {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	if cfg.StableAfter <= 0 {
		cfg.StableAfter = DefaultStableAfter
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	if cfg.ReadyPoll <= 0 {
		cfg.ReadyPoll = DefaultReadyPoll
	}
	if cfg.SmbdPath == "" {
		cfg.SmbdPath = "smbd"
	}
	if cfg.SmbcontrolPath == "" {
		cfg.SmbcontrolPath = "smbcontrol"
	}
	s := &Supervisor{cfg: cfg, kick: make(chan struct{}, 1)}
	s.state = State{Phase: PhaseStopped, Since: cfg.Clock.Now()}
	return s
}

// State returns a snapshot of the supervisor's state.
func (s *Supervisor) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Kick ends a back-off wait now, so smbd starts at once, and makes a wait
// for Ready ask Ready again; for example when the listen address (a VIP)
// has just come up. It does nothing to a running smbd.
func (s *Supervisor) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// waitReady returns once cfg.Ready holds (true) or ctx ends (false). It
// asks Ready again at every Kick and every ReadyPoll.
func (s *Supervisor) waitReady(ctx context.Context) bool {
	if s.cfg.Ready == nil || s.cfg.Ready() {
		return true
	}
	s.setPhase(PhaseWaiting, 0)
	s.cfg.Log.Info("smb: smbd waits until it can start (its listen address is not up)")
	for {
		select {
		case <-ctx.Done():
			return false
		case <-s.cfg.Clock.After(s.cfg.ReadyPoll):
		case <-s.kick:
		}
		if s.cfg.Ready() {
			s.cfg.Log.Info("smb: smbd can start")
			return true
		}
	}
}

// setPhase records a phase change; pid is kept only while running.
func (s *Supervisor) setPhase(p Phase, pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.Phase = p
	s.state.PID = pid
	s.state.Since = s.cfg.Clock.Now()
}

func (s *Supervisor) setError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.LastError = err.Error()
}

// nextBackoff doubles cur, capped at max.
func nextBackoff(cur, max time.Duration) time.Duration {
	if cur >= max/2 {
		return max
	}
	return cur * 2
}

// smbdArgs is smbd's command line after argv[0].
func smbdArgs(confPath string) []string {
	return []string{"--foreground", "--no-process-group", "--debug-stdout", "-s", confPath}
}

// confValue returns the value of key in the [global] section of an
// smb.conf (keys compare like Samba's: case and spaces ignored), and
// whether it was found.
func confValue(data []byte, key string) (string, bool) {
	norm := func(k string) string {
		return strings.ToLower(strings.NewReplacer(" ", "", "\t", "", "_", "").Replace(k))
	}
	want := norm(key)
	section := "global"
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			section = strings.ToLower(strings.Trim(line, "[] \t"))
			continue
		}
		if section != "global" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok && norm(k) == want {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// isSambaServer reports whether argv[0] names smbd (or the binary the
// supervisor runs) or one of the helpers smbd spawns for a config.
func isSambaServer(argv0, smbdPath string) bool {
	b := filepath.Base(argv0)
	switch {
	case b == "smbd", b == filepath.Base(smbdPath), b == "samba-dcerpcd", b == "samba-bgqd":
		return true
	case strings.HasPrefix(b, "rpcd_"):
		return true
	}
	return false
}

// usesConf reports whether a Samba command line (argv after argv[0])
// selects confPath with -s/--configfile. Relative paths are resolved
// against cwd (the process's working directory).
func usesConf(args []string, cwd, confPath string) bool {
	same := func(p string) bool {
		if p == "" {
			return false
		}
		if !filepath.IsAbs(p) {
			if cwd == "" {
				return false
			}
			p = filepath.Join(cwd, p)
		}
		return filepath.Clean(p) == filepath.Clean(confPath)
	}
	for i, a := range args {
		var v string
		switch {
		case a == "-s" || a == "--configfile":
			if i+1 < len(args) {
				v = args[i+1]
			}
		case strings.HasPrefix(a, "--configfile="):
			v = strings.TrimPrefix(a, "--configfile=")
		case strings.HasPrefix(a, "-s") && !strings.HasPrefix(a, "--"):
			v = strings.TrimPrefix(a, "-s")
		default:
			continue
		}
		if same(v) {
			return true
		}
	}
	return false
}

// splitCmdline splits /proc/PID/cmdline (NUL-separated) into argv.
func splitCmdline(b []byte) []string {
	s := strings.TrimRight(string(b), "\x00")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

// pipeLog logs smbd's debug output. Samba writes a header line
// "[2024/01/02 03:04:05.678901,  1] file.c:12(func)" followed by indented
// message lines; each message line is logged with its header's level and
// source location.
func pipeLog(r io.Reader, log *slog.Logger, pid int) {
	br := bufio.NewReaderSize(r, 64*1024)
	var level, src string
	for {
		line, err := br.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line != "" {
			if l, s, ok := parseDebugHeader(line); ok {
				level, src = l, s
			} else if msg := strings.TrimSpace(line); msg != "" {
				attrs := []any{"pid", pid}
				if level != "" {
					attrs = append(attrs, "smbd_level", level)
				}
				if src != "" {
					attrs = append(attrs, "src", src)
				}
				log.Info("smbd: "+msg, attrs...)
			}
		}
		if err != nil {
			return
		}
	}
}

// parseDebugHeader parses a Samba debug header line; level is the debug
// level and src the code location after the bracket.
func parseDebugHeader(line string) (level, src string, ok bool) {
	if !strings.HasPrefix(line, "[") {
		return "", "", false
	}
	inner, rest, found := strings.Cut(line[1:], "]")
	if !found {
		return "", "", false
	}
	fields := strings.Split(inner, ",")
	if len(fields) < 2 {
		return "", "", false
	}
	lv := strings.TrimSpace(fields[1])
	if _, err := strconv.Atoi(lv); err != nil {
		return "", "", false
	}
	return lv, strings.TrimSpace(rest), true
}
