// Command init is the /init of ftnas's test and lab initramfs images.
//
// It mounts /proc, /sys, /dev, /run and /tmp, loads the modules listed in
// /etc/ftnas/modules in order, runs the command given by ftnas.run= on the
// kernel command line (or in /etc/ftnas/run), prints
// "FTNAS-RESULT: PASS" or "FTNAS-RESULT: FAIL <why>" on the console and
// powers the machine off. It is built static (CGO_ENABLED=0).
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"ftnas/images/guest"
)

func main() {
	err := run()
	fmt.Println(guest.ResultLine(err))
	if err := guest.PowerOff(); err != nil {
		fmt.Fprintln(os.Stderr, "init:", err)
	}
	// Returning from PID 1 panics the kernel; qemu's -no-reboot with
	// panic=-1 then ends the VM too.
}

func run() error {
	start := time.Now()
	if err := guest.MountBasics(); err != nil {
		return err
	}
	mods, err := guest.ReadList(guest.ModulesList)
	if err != nil {
		return err
	}
	if err := guest.LoadModules(mods); err != nil {
		return err
	}
	fmt.Printf("init: %d modules loaded in %v\n", len(mods), time.Since(start).Round(time.Millisecond))
	params, err := guest.Cmdline()
	if err != nil {
		return err
	}
	cmdline, ok := guest.Lookup(params, guest.ParamRun)
	if !ok {
		b, err := os.ReadFile(guest.RunFile)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("init: read %s: %w", guest.RunFile, err)
		}
		cmdline = string(b)
	}
	argv := strings.Fields(cmdline)
	if len(argv) == 0 {
		return fmt.Errorf("init: nothing to run: no %s= on the kernel command line and no %s", guest.ParamRun, guest.RunFile)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("init: %s: %w", strings.Join(argv, " "), err)
	}
	return nil
}
