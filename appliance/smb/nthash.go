package smb

import (
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf16"

	//lint:ignore SA1019 the NT hash is MD4 by definition; Samba needs it.
	"golang.org/x/crypto/md4"
)

// NTHash returns the NT hash of password (MD4 of its UTF-16LE encoding) as
// 32 upper-case hex digits, the form pdbedit prints and accepts.
func NTHash(password string) string {
	units := utf16.Encode([]rune(password))
	buf := make([]byte, 0, 2*len(units))
	for _, u := range units {
		buf = append(buf, byte(u), byte(u>>8))
	}
	h := md4.New()
	h.Write(buf)
	return strings.ToUpper(hex.EncodeToString(h.Sum(nil)))
}

// normalizeNTHash checks that h is 32 hex digits and returns it upper-case.
func normalizeNTHash(h string) (string, error) {
	if len(h) != 32 {
		return "", fmt.Errorf("NT hash must be 32 hex digits, got %d characters", len(h))
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", fmt.Errorf("NT hash is not hex: %w", err)
	}
	return strings.ToUpper(h), nil
}
