package smb

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"
)

// smbpasswdLine is one entry in smbpasswd format, which `pdbedit -i
// smbpasswd:FILE` imports (adding or updating the user). The LM hash is
// disabled (all X). The last-change time must not be zero, or Samba
// treats the password as expired ("must change at next logon").
func smbpasswdLine(name string, uid int, ntHash string, changed time.Time) string {
	lct := changed.Unix()
	if lct <= 0 {
		lct = 1
	}
	return fmt.Sprintf("%s:%d:%s:%s:[U          ]:LCT-%08X:\n", name, uid, strings.Repeat("X", 32), ntHash, lct)
}

// parseSmbpasswdList parses `pdbedit -L -w` output into user -> NT hash
// (upper-case; "" when the account has no usable NT hash).
func parseSmbpasswdList(out []byte) (map[string]string, error) {
	users := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 6 || !strings.HasPrefix(f[4], "[") {
			return nil, fmt.Errorf("unexpected pdbedit -L -w line %q", redactHashes(line))
		}
		h, err := normalizeNTHash(f[3])
		if err != nil {
			h = "" // "XXXX…" or "NO PASSWORD…": no NT hash set
		}
		users[f[0]] = h
	}
	return users, sc.Err()
}

// parseUserList parses `pdbedit -L` output ("name:uid:full name" lines)
// into sorted user names.
func parseUserList(out []byte) ([]string, error) {
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		name, _, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("unexpected pdbedit -L line %q", line)
		}
		names = append(names, name)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// redactHashes hides the hash fields of an smbpasswd-style line so that
// error messages never carry password equivalents.
func redactHashes(line string) string {
	f := strings.Split(line, ":")
	for i := 2; i < len(f) && i < 4; i++ {
		f[i] = "<redacted>"
	}
	return strings.Join(f, ":")
}

// planSync compares the passdb (have: user -> hash) with want and returns
// the users to set (missing or with another hash) and to delete, sorted.
// Hashes in want must be normalized.
func planSync(have, want map[string]string) (set, del []string) {
	for name, h := range want {
		if cur, ok := have[name]; !ok || cur != h {
			set = append(set, name)
		}
	}
	for name := range have {
		if _, ok := want[name]; !ok {
			del = append(del, name)
		}
	}
	slices.Sort(set)
	slices.Sort(del)
	return set, del
}

// normalizeWant validates every entry of want and returns a copy with
// upper-case hashes. It fails before anything is changed.
func normalizeWant(want map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(want))
	for name, h := range want {
		if err := CheckUserName(name); err != nil {
			return nil, err
		}
		nh, err := normalizeNTHash(h)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", name, err)
		}
		out[name] = nh
	}
	return out, nil
}
