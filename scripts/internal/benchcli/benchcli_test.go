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
