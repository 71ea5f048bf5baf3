//go:build !unix

package api

// dirWritable is false where /run does not exist in the unix sense.
func dirWritable(string) bool { return false }
