package changelog

import "golang.org/x/sys/unix"

// legacyOpens adds the open calls only some architectures have.
func legacyOpens(o *openSyscalls) {
	o.flagsArg[unix.SYS_OPEN] = 1
	o.creat = unix.SYS_CREAT
}
