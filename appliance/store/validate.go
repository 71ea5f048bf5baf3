package store

import (
	"fmt"
	"net/netip"
	"path"
	"strings"
	"unicode/utf8"
)

// Limits on names and values kept in the store.
const (
	MaxShareNameLen = 64
	MaxUserNameLen  = 32
	MaxPasswordLen  = 256
	MaxSharePathLen = 1024
	MaxClients      = 256
)

// reservedShareNames are section names Samba gives a meaning of its own.
func isReservedShareName(lower string) bool {
	switch lower {
	case "global", "homes", "printers", "print$", "ipc$":
		return true
	}
	return false
}

// ValidateShareName checks a share name: 1–64 characters from
// [A-Za-z0-9._-], not starting with '.' or '-', and not a section name
// Samba reserves (global, homes, printers, print$, ipc$; any case). The
// error names the rule that was broken.
func ValidateShareName(name string) error {
	if name == "" {
		return fmt.Errorf("%w share name: it is empty", ErrInvalid)
	}
	if isReservedShareName(strings.ToLower(name)) {
		return fmt.Errorf("%w share name %q: reserved by Samba", ErrInvalid, name)
	}
	if len(name) > MaxShareNameLen {
		return fmt.Errorf("%w share name %q: %d characters, at most %d allowed", ErrInvalid, name, len(name), MaxShareNameLen)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return fmt.Errorf("%w share name %q: character %q at position %d is not allowed (use letters, digits, '.', '_' and '-')", ErrInvalid, name, r, i+1)
		}
	}
	if name[0] == '.' || name[0] == '-' {
		return fmt.Errorf("%w share name %q: must not start with %q", ErrInvalid, name, name[0])
	}
	return nil
}

// CleanSharePath checks a share's folder, given relative to the volume, and
// returns it cleaned ("a//b/" -> "a/b"). It must be relative, name a folder
// below the volume root (not the root itself), have no ".." component, and
// hold no control characters (NUL, newline, ...), no invalid UTF-8, and no
// leading or trailing white space (smb.conf would strip it).
func CleanSharePath(rel string) (string, error) {
	if rel == "" {
		return "", fmt.Errorf("%w share path: it is empty; name a folder inside the volume", ErrInvalid)
	}
	if len(rel) > MaxSharePathLen {
		return "", fmt.Errorf("%w share path: %d bytes, at most %d allowed", ErrInvalid, len(rel), MaxSharePathLen)
	}
	if !utf8.ValidString(rel) {
		return "", fmt.Errorf("%w share path %q: not valid UTF-8", ErrInvalid, rel)
	}
	for _, r := range rel {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%w share path %q: control character %q is not allowed", ErrInvalid, rel, r)
		}
	}
	if strings.TrimSpace(rel) != rel {
		return "", fmt.Errorf("%w share path %q: leading or trailing white space is not allowed", ErrInvalid, rel)
	}
	if strings.HasPrefix(rel, "/") {
		return "", fmt.Errorf("%w share path %q: must be relative to the volume, not absolute", ErrInvalid, rel)
	}
	for _, c := range strings.Split(rel, "/") {
		if c == ".." {
			return "", fmt.Errorf("%w share path %q: \"..\" is not allowed", ErrInvalid, rel)
		}
	}
	clean := path.Clean(rel)
	if clean == "." {
		return "", fmt.Errorf("%w share path %q: names the volume root; name a folder inside the volume", ErrInvalid, rel)
	}
	return clean, nil
}

// ValidateClients checks an NFS client allow-list: each entry is an IP
// address ("192.0.2.7", "2001:db8::1") or a CIDR prefix ("192.0.2.0/24").
// An empty list means every client.
func ValidateClients(clients []string) error {
	if len(clients) > MaxClients {
		return fmt.Errorf("%w client list: %d entries, at most %d allowed", ErrInvalid, len(clients), MaxClients)
	}
	for _, c := range clients {
		if _, err := ParseClient(c); err != nil {
			return err
		}
	}
	return nil
}

// ParseClient parses one allow-list entry; a bare address becomes a
// single-address prefix (/32 or /128).
func ParseClient(c string) (netip.Prefix, error) {
	if c == "" {
		return netip.Prefix{}, fmt.Errorf("%w client: empty entry; use an IP address or CIDR such as 192.0.2.0/24", ErrInvalid)
	}
	if strings.Contains(c, "/") {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%w client %q: not a CIDR prefix such as 192.0.2.0/24", ErrInvalid, c)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(c)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w client %q: not an IP address or CIDR prefix such as 192.0.2.0/24", ErrInvalid, c)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%w client %q: zoned addresses are not allowed", ErrInvalid, c)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// isReservedUserName reports names of system accounts and of ftnas's own
// internal accounts (anything starting with "ftnas").
func isReservedUserName(name string) bool {
	switch name {
	case "root", "nobody", "nogroup", "daemon", "bin", "sys", "adm", "sync",
		"games", "man", "lp", "mail", "news", "uucp", "proxy", "www-data",
		"backup", "list", "irc", "gnats", "operator", "halt", "shutdown",
		"sshd", "messagebus", "_apt", "ftp", "guest", "admin", "administrator",
		"users", "staff", "wheel", "sudo", "tty", "disk", "kmem", "shadow",
		"utmp", "video", "audio", "dialout", "plugdev", "netdev", "input":
		return true
	}
	return strings.HasPrefix(name, "ftnas") || strings.HasPrefix(name, "systemd-")
}

// ValidateUserName checks a user name: ^[a-z_][a-z0-9_-]{0,31}$ and not a
// system or ftnas-internal account name (root, nobody, daemon, ...,
// ftnas*, systemd-*).
func ValidateUserName(name string) error {
	if name == "" {
		return fmt.Errorf("%w user name: it is empty", ErrInvalid)
	}
	if len(name) > MaxUserNameLen {
		return fmt.Errorf("%w user name %q: %d characters, at most %d allowed", ErrInvalid, name, len(name), MaxUserNameLen)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r == '_' || i > 0 && (r >= '0' && r <= '9' || r == '-')
		if !ok {
			if i == 0 {
				return fmt.Errorf("%w user name %q: must start with a lower-case letter or '_', not %q", ErrInvalid, name, r)
			}
			return fmt.Errorf("%w user name %q: character %q at position %d is not allowed (use a-z, 0-9, '_' and '-')", ErrInvalid, name, r, i+1)
		}
	}
	if isReservedUserName(name) {
		return fmt.Errorf("%w user name %q: reserved for a system or internal account", ErrInvalid, name)
	}
	return nil
}

// ValidatePassword checks a password: non-empty, at most 256 bytes, valid
// UTF-8, no NUL. The error never contains the password.
func ValidatePassword(pw string) error {
	switch {
	case pw == "":
		return fmt.Errorf("%w password: it is empty", ErrInvalid)
	case len(pw) > MaxPasswordLen:
		return fmt.Errorf("%w password: %d bytes, at most %d allowed", ErrInvalid, len(pw), MaxPasswordLen)
	case !utf8.ValidString(pw):
		return fmt.Errorf("%w password: not valid UTF-8", ErrInvalid)
	case strings.IndexByte(pw, 0) >= 0:
		return fmt.Errorf("%w password: contains a NUL byte", ErrInvalid)
	}
	return nil
}

// ValidateSettingKey checks a settings key: 1–256 bytes.
func ValidateSettingKey(key string) error {
	if key == "" || len(key) > 256 {
		return fmt.Errorf("%w setting key %q: must be 1 to 256 bytes", ErrInvalid, key)
	}
	return nil
}
