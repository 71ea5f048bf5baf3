//go:build !linux

package main

import "io/fs"

// statKey: no content-hash cache outside Linux.
func statKey(fs.FileInfo) (fileKey, bool) { return fileKey{}, false }
