package guest

import (
	"fmt"
	"regexp"
	"strings"
)

// ResultMarker starts the line a guest prints last, so the host can tell a
// test that passed from one that failed or a guest that died.
const ResultMarker = "FTNAS-RESULT:"

// ResultPattern matches a result line; group 1 is PASS or FAIL, group 2 the
// failure message.
var ResultPattern = regexp.MustCompile(`(?m)^` + ResultMarker + ` (PASS|FAIL)(?: (.*?))?\r?$`)

// ResultLine formats the result line for err (nil: PASS). Newlines in the
// message are flattened so the line stays one line.
func ResultLine(err error) string {
	if err == nil {
		return ResultMarker + " PASS"
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	return fmt.Sprintf("%s FAIL %s", ResultMarker, msg)
}

// Command-line parameters /init understands.
const (
	// ParamRun is the command /init runs (split on whitespace); it
	// overrides the initramfs's /etc/ftnas/run.
	ParamRun = "ftnas.run"
)

// Paths inside the initramfs that /init reads.
const (
	ModulesList = "/etc/ftnas/modules" // module files to load, one a line, in order
	RunFile     = "/etc/ftnas/run"     // default command line
)
