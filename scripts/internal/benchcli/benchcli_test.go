package benchcli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
)

func TestParseRefusesLeftovers(t *testing.T) {
	fs := flag.NewFlagSet("x op", flag.ContinueOnError)
	n := fs.Int("n", 0, "")
	if err := Parse(fs, []string{"-n", "3"}); err != nil || *n != 3 {
		t.Fatalf("Parse = %v, n %d", err, *n)
	}
	fs = flag.NewFlagSet("x op", flag.ContinueOnError)
	fs.Int("n", 0, "")
	if err := Parse(fs, []string{"-n", "3", "extra"}); err == nil || !strings.Contains(err.Error(), `x op: unexpected arguments ["extra"]`) {
		t.Errorf("Parse with a leftover = %v", err)
	}
}

func TestWriteJSONAndExitCode(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, map[string]int{"a": 1}); err != nil || b.String() != "{\"a\":1}\n" {
		t.Errorf("WriteJSON = %q, %v", b.String(), err)
	}
	if err := WriteJSON(&b, func() {}); err == nil || !strings.Contains(err.Error(), "encode result") {
		t.Errorf("WriteJSON of a func = %v", err)
	}
	var e bytes.Buffer
	if c := ExitCode("tool", nil, &e); c != 0 || e.Len() != 0 {
		t.Errorf("nil: %d %q", c, e.String())
	}
	if c := ExitCode("tool", fmt.Errorf("op: %w", flag.ErrHelp), &e); c != 0 || e.Len() != 0 {
		t.Errorf("help: %d %q", c, e.String())
	}
	if c := ExitCode("tool", errors.New("boom"), &e); c != 1 || e.String() != "tool: boom\n" {
		t.Errorf("error: %d %q", c, e.String())
	}
}

func TestOp(t *testing.T) {
	var e bytes.Buffer
	if _, _, _, err := Op("tool", nil, "USAGE\n", &e); err == nil || err.Error() != "missing OP" || e.String() != "USAGE\n" {
		t.Errorf("no args: %v, %q", err, e.String())
	}
	e.Reset()
	if _, _, _, err := Op("tool", []string{"-h"}, "USAGE\n", &e); !errors.Is(err, flag.ErrHelp) || e.String() != "USAGE\n" {
		t.Errorf("-h: %v, %q", err, e.String())
	}
	op, fs, rest, err := Op("tool", []string{"run", "-n", "1"}, "USAGE\n", &e)
	if err != nil || op != "run" || fs.Name() != "tool run" || len(rest) != 2 {
		t.Errorf("run: %q %v %q %v", op, fs, rest, err)
	}
}
