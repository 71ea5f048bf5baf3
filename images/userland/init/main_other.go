//go:build !linux

// Command init is /sbin/init of the root slot userland; it runs on Linux
// only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "init: needs Linux")
	os.Exit(1)
}
