// Command installer runs inside a qemu guest (direct kernel boot, the
// generic test /init) to finish a firmware installation the host cannot:
// the host has no md. Given the plan in /etc/ftnas/install.json and the
// disks the host partitioned, it creates every md array of the layout
// (metadata 1.2, internal bitmap, --assume-clean: the disks are blank),
// copies the root slot images onto their arrays, reads them back, stops
// the arrays and prints "installer: summary {json}".
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"ftnas/images/disk/internal/installplan"
	"ftnas/images/guest"
	"ftnas/raid"
)

func main() {
	if err := run(); err != nil {
		fmt.Println("installer: FAILED:", err)
		os.Exit(1)
	}
}

func run() error {
	b, err := os.ReadFile(installplan.Path)
	if err != nil {
		return err
	}
	var plan installplan.Plan
	if err := json.Unmarshal(b, &plan); err != nil {
		return fmt.Errorf("parse %s: %w", installplan.Path, err)
	}
	if err := plan.Check(); err != nil {
		return err
	}
	var disks []string
	for _, d := range plan.Layout.Disks {
		disks = append(disks, d.Disk)
	}
	for _, im := range plan.Images {
		disks = append(disks, filepath.Base(im.Device))
	}
	if err := guest.WaitBlockDevices(disks, 10*time.Second); err != nil {
		return err
	}
	ctx := context.Background()
	md := &raid.Mdadm{Path: "/sbin/mdadm", Logger: slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	var sum installplan.Summary
	for _, spec := range plan.Layout.CreateSpecs() {
		spec.AssumeClean = true
		spec.Homehost = plan.Homehost
		if err := waitDevices(spec.Devices, 10*time.Second); err != nil {
			return err
		}
		if err := md.Create(ctx, spec); err != nil {
			return fmt.Errorf("create %s: %w", spec.Name, err)
		}
		sb, err := md.Examine(ctx, spec.Devices[0])
		if err != nil {
			return err
		}
		// The installation id is the homehost (boot.ParamInstall): the
		// boot assembles arrays by it.
		if want := plan.Homehost + ":" + spec.Name; plan.Homehost != "any" && sb.Name != want {
			return fmt.Errorf("create %s: superblock name %q, want %q", spec.Name, sb.Name, want)
		}
		size, err := deviceSize(spec.Device)
		if err != nil {
			return err
		}
		a, _ := plan.Layout.Array(roleOf(plan, spec.Name))
		sum.Arrays = append(sum.Arrays, installplan.Array{
			Role: a.Role, Name: spec.Name, UUID: sb.UUID, Level: string(spec.Level), Members: len(spec.Devices), Size: size,
		})
		fmt.Printf("installer: created %s (%s, %d members, %d MiB) uuid %s\n", spec.Name, spec.Level, len(spec.Devices), size>>20, sb.UUID)
	}
	for _, im := range plan.Images {
		a, _ := plan.Layout.Array(im.Role)
		sum1, err := copyImage(im, a.Device)
		if err != nil {
			return err
		}
		for i := range sum.Arrays {
			if sum.Arrays[i].Role == im.Role {
				sum.Arrays[i].Image = sum1
			}
		}
		fmt.Printf("installer: copied %d bytes onto %s\n", im.Size, a.Device)
	}
	for _, a := range plan.Layout.Arrays {
		if err := md.Stop(ctx, a.Device); err != nil {
			return fmt.Errorf("stop %s: %w", a.Name, err)
		}
	}
	out, err := json.Marshal(sum)
	if err != nil {
		return err
	}
	fmt.Println(installplan.SummaryPrefix + string(out))
	return nil
}

func roleOf(plan installplan.Plan, name string) string {
	for _, a := range plan.Layout.Arrays {
		if a.Name == name {
			return a.Role
		}
	}
	return ""
}

// waitDevices waits for partition device nodes (/dev/vda2).
func waitDevices(devs []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var missing []string
		for _, d := range devs {
			if _, err := os.Stat(d); err != nil {
				missing = append(missing, d)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for partitions: %v missing after %v", missing, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func deviceSize(dev string) (int64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", dev, err)
	}
	return n, nil
}

// copyImage copies im onto the array dev, syncs, reads it back and
// returns the SHA-256 read back, which must be the plan's.
func copyImage(im installplan.Image, dev string) (string, error) {
	size, err := deviceSize(dev)
	if err != nil {
		return "", err
	}
	if im.Size > size {
		return "", fmt.Errorf("image for %s: %d bytes do not fit on %s (%d bytes)", im.Role, im.Size, dev, size)
	}
	src, err := os.Open(im.Device)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return "", err
	}
	// Large buffers: under TCG every system call is dear, and a
	// Debian userland image is a hundred MiB. (The wrapper hides
	// os.File.ReadFrom, which would copy in 32 KiB pieces.)
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(struct{ io.Writer }{dst}, io.LimitReader(src, im.Size), buf); err != nil {
		dst.Close()
		return "", fmt.Errorf("copy %s onto %s: %w", im.Device, dev, err)
	}
	if err := errors.Join(dst.Sync(), dst.Close()); err != nil {
		return "", fmt.Errorf("copy %s onto %s: %w", im.Device, dev, err)
	}
	// Read back from the disks, not the page cache.
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return "", fmt.Errorf("drop caches: %w", err)
	}
	back, err := os.Open(dev)
	if err != nil {
		return "", err
	}
	defer back.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, io.LimitReader(back, im.Size), buf); err != nil {
		return "", fmt.Errorf("read back %s: %w", dev, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != im.SHA256 {
		return "", fmt.Errorf("read back %s: sha256 %s, want %s", dev, got, im.SHA256)
	}
	return got, nil
}
