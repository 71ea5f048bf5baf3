// Command smoke runs inside a qemu guest for images/qemu's test: it checks
// the virtio disks the host attached, writes a marker to the second one,
// and prints what the host asserts.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"ftnas/images/guest"
)

func main() {
	if err := run(); err != nil {
		fmt.Println("smoke:", err)
		os.Exit(1)
	}
}

func run() error {
	if err := guest.WaitBlockDevices([]string{"vda", "vdb"}, 10*time.Second); err != nil {
		return err
	}
	for _, d := range []string{"vda", "vdb"} {
		size, err := os.ReadFile("/sys/block/" + d + "/size")
		if err != nil {
			return err
		}
		serial, err := os.ReadFile("/sys/block/" + d + "/serial")
		if err != nil {
			return err
		}
		fmt.Printf("smoke: disk %s serial=%s sectors=%s\n", d, strings.TrimSpace(string(serial)), strings.TrimSpace(string(size)))
	}
	mods, err := os.ReadFile("/proc/modules")
	if err != nil {
		return err
	}
	fmt.Printf("smoke: %d modules loaded\n", strings.Count(string(mods), "\n"))
	f, err := os.OpenFile("/dev/vdb", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte("written-by-guest\n"), 4096); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
