package netns

import (
	"strings"
	"testing"
)

func TestPath(t *testing.T) {
	for _, tc := range []struct {
		name, want, err string
	}{
		{name: "ftl-a-n1", want: "/run/netns/ftl-a-n1"},
		{name: "/proc/1/ns/net", want: "/proc/1/ns/net"},
		{name: "", err: "empty"},
		{name: "..", err: "bad namespace name"},
		{name: ".", err: "bad namespace name"},
		{name: "a/b", err: "bad namespace name"},
		{name: "a\x00b", err: "bad namespace name"},
		{name: strings.Repeat("x", 256), err: "bad namespace name"},
		{name: "/run/netns/../etc", err: "not clean"},
	} {
		got, err := Path(tc.name)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Path(%q) = %q, %v; want error containing %q", tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Path(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestDoBadNameDoesNotRunFn(t *testing.T) {
	ran := false
	err := Do("a/b", func() error { ran = true; return nil })
	if err == nil || ran {
		t.Fatalf("Do(bad name): err %v, ran %v; want an error and fn not run", err, ran)
	}
}

func TestExecNoCommand(t *testing.T) {
	if _, err := Exec(t.Context(), ""); err == nil || !strings.Contains(err.Error(), "no command") {
		t.Fatalf("Exec with no argv: %v; want 'no command'", err)
	}
}
