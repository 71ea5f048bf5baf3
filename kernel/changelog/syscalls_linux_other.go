//go:build linux && !amd64

package changelog

// legacyOpens adds the open calls only some architectures have: none known
// here; an open through them is treated as a possible write.
func legacyOpens(*openSyscalls) {}
