package smb

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Counters are smbd's profile counters (smbd profiling level = count), as
// `smbstatus -P` prints them: since smbd started, so they reset when it
// restarts.
type Counters map[string]uint64

// ParseProfile parses `smbstatus -P` output: lines "name:   value" under
// "****" section headers.
func ParseProfile(out []byte) (Counters, error) {
	c := Counters{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "*") {
			continue
		}
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("smb: parse profile line %d %q: no colon", n, line)
		}
		v, err := strconv.ParseUint(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("smb: parse profile line %d %q: %w", n, line, err)
		}
		c[strings.TrimSpace(name)] = v
	}
	return c, sc.Err()
}

// SMB2 returns the SMB2 request counts by operation ("read", "write",
// "create", ...) and the bytes read and written for clients.
func (c Counters) SMB2() (ops map[string]uint64, readBytes, writeBytes uint64) {
	ops = map[string]uint64{}
	for k, v := range c {
		if op, ok := strings.CutPrefix(k, "smb2_"); ok {
			if op, ok = strings.CutSuffix(op, "_count"); ok {
				ops[op] = v
			}
		}
	}
	return ops, c["smb2_read_outbytes"], c["smb2_write_inbytes"]
}

// Profile runs `smbstatus -P` for the smbd using confPath.
func Profile(ctx context.Context, confPath string) (Counters, error) {
	out, err := exec.CommandContext(ctx, "smbstatus", "-s", confPath, "-P").Output()
	if err != nil {
		return nil, fmt.Errorf("smb: smbstatus -P: %w", err)
	}
	return ParseProfile(out)
}
