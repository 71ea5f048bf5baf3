package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunRejectsBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing OP"},
		{[]string{"frobnicate"}, `unknown op "frobnicate"`},
		{[]string{"write"}, "--server is required"},
		{[]string{"write", "--server", "127.0.0.1", "--depth", "0"}, "--depth 0"},
		{[]string{"read", "--server", "127.0.0.1", "--chunk", "1GiB"}, "--chunk 1073741824"},
		{[]string{"read", "--server", "127.0.0.1", "--chunk", "lots"}, "--chunk: size"},
		{[]string{"probe", "--server", "127.0.0.1", "extra"}, "unexpected arguments"},
	} {
		var out, errOut bytes.Buffer
		err := run(tc.args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want error containing %q", tc.args, err, tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("run(%q) printed a result: %q", tc.args, out.String())
		}
	}
}
