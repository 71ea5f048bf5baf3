//go:build !linux

package netns

import "fmt"

// Do runs fn in namespace name. Outside Linux only the caller's own
// namespace ("") exists.
func Do(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	return fmt.Errorf("netns: enter %s: network namespaces need Linux", name)
}
