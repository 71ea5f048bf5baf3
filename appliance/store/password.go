package store

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"

	"golang.org/x/crypto/argon2"
	//lint:ignore SA1019 Samba's NT hash is MD4; compatibility, not security, is the goal.
	"golang.org/x/crypto/md4"
)

// argon2id parameters for new hashes (OWASP's 19 MiB, t=2, p=1). The
// parameters are kept in each hash, so changing them here does not break
// stored hashes.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

// Bounds on the parameters CheckPassword accepts from a stored hash, so a
// damaged or hostile store cannot make a login allocate gigabytes.
const (
	maxArgonMemoryKiB = 1024 * 1024
	maxArgonTime      = 16
	maxArgonThreads   = 16
)

// HashPassword returns a salted argon2id hash of pw in PHC string format:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(pw string) (string, error) {
	if err := ValidatePassword(pw); err != nil {
		return "", err
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("store: hash password: read random salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemoryKiB, argonTime, argonThreads, base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

type argonHash struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// parseArgonHash parses a PHC argon2id string made by HashPassword (or
// another implementation using the same format).
func parseArgonHash(h string) (argonHash, error) {
	var a argonHash
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return a, fmt.Errorf("%w password hash: not a PHC argon2id string", ErrInvalid)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return a, fmt.Errorf("%w password hash: unsupported argon2 version %q", ErrInvalid, parts[2])
	}
	seen := map[string]bool{}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			return a, fmt.Errorf("%w password hash: bad parameter %q", ErrInvalid, kv)
		}
		seen[k] = true
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return a, fmt.Errorf("%w password hash: bad parameter %q", ErrInvalid, kv)
		}
		switch {
		case k == "m" && n <= maxArgonMemoryKiB:
			a.memory = uint32(n)
		case k == "t" && n <= maxArgonTime:
			a.time = uint32(n)
		case k == "p" && n <= maxArgonThreads:
			a.threads = uint8(n)
		default:
			return a, fmt.Errorf("%w password hash: bad or out-of-range parameter %q", ErrInvalid, kv)
		}
	}
	if a.memory == 0 || a.time == 0 || a.threads == 0 {
		return a, fmt.Errorf("%w password hash: missing m, t or p parameter", ErrInvalid)
	}
	if a.memory < 8*uint32(a.threads) {
		return a, fmt.Errorf("%w password hash: memory below 8*p KiB", ErrInvalid)
	}
	var err error
	if a.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(a.salt) < 8 || len(a.salt) > 64 {
		return a, fmt.Errorf("%w password hash: bad salt", ErrInvalid)
	}
	if a.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(a.key) < 16 || len(a.key) > 64 {
		return a, fmt.Errorf("%w password hash: bad key", ErrInvalid)
	}
	return a, nil
}

// ValidatePasswordHash checks that h is a well-formed argon2id PHC string.
func ValidatePasswordHash(h string) error {
	_, err := parseArgonHash(h)
	return err
}

// CheckPassword reports whether pw matches hash (a HashPassword result).
// A malformed hash never matches.
func CheckPassword(hash, pw string) bool {
	a, err := parseArgonHash(hash)
	if err != nil {
		return false
	}
	key := argon2.IDKey([]byte(pw), a.salt, a.time, a.memory, a.threads, uint32(len(a.key)))
	return subtle.ConstantTimeCompare(key, a.key) == 1
}

// NTHash returns Samba's NT hash of pw: hex(MD4(UTF-16LE(pw))), lower case.
func NTHash(pw string) string {
	u := utf16.Encode([]rune(pw))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i] = byte(c)
		b[2*i+1] = byte(c >> 8)
	}
	h := md4.New()
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// ValidateNTHash checks that h is 32 lower-case hex digits.
func ValidateNTHash(h string) error {
	if len(h) != 32 {
		return fmt.Errorf("%w NT hash: %d characters, want 32 hex digits", ErrInvalid, len(h))
	}
	for _, r := range h {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return fmt.Errorf("%w NT hash: %q is not a lower-case hex digit", ErrInvalid, r)
		}
	}
	return nil
}
