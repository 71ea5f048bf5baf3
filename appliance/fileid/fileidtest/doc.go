// Package fileidtest opens fileid trees for tests: a volume's Tree with
// its index in a bbolt file of the test's own, outside the volume, and
// Stamps allocated from a counter in memory.
package fileidtest
