//go:build !linux

package main

import "errors"

func run() error { return errors.New("bondtest: runs in a Linux qemu guest only") }
