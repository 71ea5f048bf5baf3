package smb

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNextBackoff(t *testing.T) {
	d := 100 * time.Millisecond
	var got []time.Duration
	for range 7 {
		got = append(got, d)
		d = nextBackoff(d, time.Second)
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("backoff sequence %v, want %v ms", got, want)
		}
	}
}

func TestNewSupervisorDefaults(t *testing.T) {
	s := NewSupervisor(SupervisorConfig{ConfPath: "/x/smb.conf", MinBackoff: time.Minute, MaxBackoff: time.Second})
	if s.cfg.MaxBackoff != time.Minute {
		t.Errorf("MaxBackoff below MinBackoff not raised: %v", s.cfg.MaxBackoff)
	}
	if s.cfg.SmbdPath != "smbd" || s.cfg.StopGrace != DefaultStopGrace || s.cfg.StableAfter != DefaultStableAfter {
		t.Errorf("defaults not applied: %+v", s.cfg)
	}
	if st := s.State(); st.Phase != PhaseStopped || st.PID != 0 {
		t.Errorf("initial state %+v", st)
	}
}

func TestConfValue(t *testing.T) {
	conf := []byte("# c\n[global]\n\tPID Directory = /a/run \n\tlock directory=/a/lock\n[share]\n\tpid directory = /wrong\n")
	if v, ok := confValue(conf, "pid directory"); !ok || v != "/a/run" {
		t.Errorf("pid directory = %q, %v", v, ok)
	}
	if v, ok := confValue(conf, "lockdirectory"); !ok || v != "/a/lock" {
		t.Errorf("lock directory = %q, %v", v, ok)
	}
	if _, ok := confValue(conf, "private dir"); ok {
		t.Error("found a missing key")
	}
	// Our own rendering must round-trip.
	out, err := Render(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := confValue(out, "pid directory"); v != PathsFor("/var/lib/ftnas").Pid {
		t.Errorf("rendered pid directory read back as %q", v)
	}
}

func TestUsesConf(t *testing.T) {
	const conf = "/var/lib/ftnas/smb.conf"
	for _, tc := range []struct {
		args []string
		cwd  string
		want bool
	}{
		{smbdArgs(conf), "", true},
		{[]string{"--configfile=" + conf, "--libexec-rpcds"}, "", true},
		{[]string{"--configfile", conf}, "", true},
		{[]string{"-s" + conf}, "", true},
		{[]string{"-s", "smb.conf"}, "/var/lib/ftnas", true},
		{[]string{"-s", "smb.conf"}, "/elsewhere", false},
		{[]string{"-s", "smb.conf"}, "", false},
		{[]string{"-s", "/var/lib/ftnas/smb.conf.other"}, "", false},
		{[]string{"--foreground", conf}, "", false},
		{[]string{"-s"}, "", false},
		{nil, "", false},
	} {
		if got := usesConf(tc.args, tc.cwd, conf); got != tc.want {
			t.Errorf("usesConf(%q, cwd %q) = %v, want %v", tc.args, tc.cwd, got, tc.want)
		}
	}
}

func TestIsSambaServer(t *testing.T) {
	for _, tc := range []struct {
		argv0 string
		want  bool
	}{
		{"smbd", true}, {"/usr/sbin/smbd", true}, {"/usr/libexec/samba/samba-dcerpcd", true},
		{"/usr/libexec/samba/rpcd_classic", true}, {"/opt/x/mysmbd", true},
		{"/bin/sh", false}, {"smbclient", false}, {"nmbd", false},
	} {
		if got := isSambaServer(tc.argv0, "/opt/x/mysmbd"); got != tc.want {
			t.Errorf("isSambaServer(%q) = %v", tc.argv0, got)
		}
	}
}

func TestSplitCmdline(t *testing.T) {
	got := splitCmdline([]byte("smbd\x00-s\x00/a b\x00"))
	if len(got) != 3 || got[2] != "/a b" {
		t.Errorf("got %q", got)
	}
	if splitCmdline(nil) != nil {
		t.Error("empty cmdline (zombie) should give nil")
	}
}

func TestParseDebugHeader(t *testing.T) {
	lv, src, ok := parseDebugHeader("[2026/11/23 19:07:00.123456,  0] ../../source3/smbd/server.c:1741(main)")
	if !ok || lv != "0" || src != "../../source3/smbd/server.c:1741(main)" {
		t.Errorf("got %q %q %v", lv, src, ok)
	}
	lv, _, ok = parseDebugHeader("[2026/11/23 19:07:00.123456,  3, pid=7368, effective(0, 0), real(0, 0)] ../x.c:1(f)")
	if !ok || lv != "3" {
		t.Errorf("extended header: %q %v", lv, ok)
	}
	for _, l := range []string{"  smbd version 4.17 started.", "[not a header", "[a] b", "[x, y] z"} {
		if _, _, ok := parseDebugHeader(l); ok {
			t.Errorf("%q parsed as a header", l)
		}
	}
}

// recHandler records log records.
type recHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *recHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recHandler) WithGroup(string) slog.Handler      { return h }

func TestPipeLog(t *testing.T) {
	in := "[2026/11/23 19:07:00.123456,  0] ../../source3/smbd/server.c:1741(main)\n" +
		"  smbd version 4.17.12-Debian started.\n" +
		"  Copyright Andrew Tridgell\n" +
		"\n" +
		"[2026/11/23 19:07:01.000000,  1] ../x.c:9(f)\n" +
		"  no trailing newline"
	h := &recHandler{}
	pipeLog(strings.NewReader(in), slog.New(h), 42)
	if len(h.recs) != 3 {
		t.Fatalf("got %d records, want 3", len(h.recs))
	}
	attrs := func(r slog.Record) string {
		var b bytes.Buffer
		r.Attrs(func(a slog.Attr) bool { b.WriteString(a.String() + " "); return true })
		return b.String()
	}
	if h.recs[0].Message != "smbd: smbd version 4.17.12-Debian started." ||
		!strings.Contains(attrs(h.recs[0]), "src=../../source3/smbd/server.c:1741(main)") ||
		!strings.Contains(attrs(h.recs[0]), "pid=42") {
		t.Errorf("record 0: %q %s", h.recs[0].Message, attrs(h.recs[0]))
	}
	if h.recs[2].Message != "smbd: no trailing newline" || !strings.Contains(attrs(h.recs[2]), "smbd_level=1") {
		t.Errorf("record 2: %q %s", h.recs[2].Message, attrs(h.recs[2]))
	}
}
