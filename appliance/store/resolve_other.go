//go:build !linux

package store

import "errors"

// ResolveSharePath is implemented on Linux only.
func ResolveSharePath(volume, rel string, create bool) (string, error) {
	return "", errors.New("store: resolve share path: only supported on Linux")
}
