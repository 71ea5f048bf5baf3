//go:build linux

package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"ftnas/images/userland"
)

// testInstall is the install test hook (userland.ParamTestInstall):
// install from the bundle device when it is there, then power off the
// clean way (the SIGTERM path: nasd stopped, stores unmounted).
func testInstall(r *reaper, v string) {
	ti, err := userland.ParseTestInstall(v)
	if err != nil {
		fmt.Printf("%sFAILED: %v\n", userland.InstallLinePrefix, err)
		return
	}
	if _, err := os.Stat(ti.Bundle); err != nil {
		return
	}
	out, err := r.outputWithin(userland.NasctlInstallArgs(ti), 15*time.Minute)
	line := strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", " | ")), " ")
	if err != nil {
		fmt.Printf("%sFAILED: %v: %s\n", userland.InstallLinePrefix, err, line)
		return
	}
	fmt.Println(userland.InstallLinePrefix + line)
	if err := unix.Kill(os.Getpid(), unix.SIGTERM); err != nil {
		fmt.Println("ftnas: init:", err)
	}
}
