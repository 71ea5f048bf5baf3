//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"ftnas/images/boot"
	"ftnas/images/userland"
	"ftnas/raid"
)

// storeWait bounds the wait for a first member of a store's array. The
// disks are already there (the root array was assembled from them), so
// a partition named for the array is either there or absent.
const storeWait = 10 * time.Second

// mountStores makes every store (userland.Stores: state, then data)
// available at its mount point: the array assembled (degraded when
// members are missing, as the root), a filesystem made on it when it is
// blank (first boot), mounted. A store with no partition named for its
// array on any disk gets a tmpfs, with a loud warning. It returns the
// mount points mounted, in order, and runs before nasd starts (children
// are waited for by os/exec: the reaper does not run yet).
func mountStores(bo boot.Options) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	md := &raid.Mdadm{Path: "/sbin/mdadm"}
	logf := func(f string, a ...any) { fmt.Printf("ftnas: "+f+"\n", a...) }
	_, err := os.Stat(userland.MkfsBtrfsPath)
	haveBtrfs := err == nil
	var mounted []string
	for _, s := range userland.Stores() {
		if err := os.MkdirAll(s.Mount, 0o755); err != nil {
			return mounted, fmt.Errorf("init: storage %s: %w", s.Role, err)
		}
		parts, err := boot.ScanPartitions("/sys/class/block", s.Array)
		if err != nil {
			return mounted, err
		}
		if len(parts) == 0 {
			fmt.Println(userland.FallbackLine(s))
			if err := unix.Mount("tmpfs", s.Mount, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=25%"); err != nil {
				return mounted, fmt.Errorf("init: mount tmpfs on %s: %w", s.Mount, err)
			}
			mounted = append(mounted, s.Mount)
			continue
		}
		rep, err := mountStore(ctx, md, s, bo, haveBtrfs, logf)
		if err != nil {
			return mounted, err
		}
		mounted = append(mounted, s.Mount)
		fmt.Println(rep.Line())
	}
	return mounted, nil
}

// mountStore assembles s's array, formats it when Decide says so and
// mounts it.
func mountStore(ctx context.Context, md *raid.Mdadm, s userland.Store, bo boot.Options, haveBtrfs bool, logf func(string, ...any)) (userland.StorageReport, error) {
	rep := userland.StorageReport{Store: s}
	st, dev, err := boot.AssembleArray(ctx, md, s.Array, boot.Options{RootWait: storeWait, DegradedAfter: bo.DegradedAfter, Install: bo.Install}, logf)
	if err != nil {
		return rep, fmt.Errorf("init: storage %s: %w", s.Role, err)
	}
	rep.Array, rep.Device = st, dev
	p, size, err := probe(dev)
	if err != nil {
		return rep, fmt.Errorf("init: storage %s: %w", s.Role, err)
	}
	d := userland.Decide(s, p, size, haveBtrfs)
	switch d.Action {
	case userland.Refuse:
		return rep, fmt.Errorf("init: storage %s: %s (%s) %s", s.Role, s.Array, dev, d.Reason)
	case userland.Format:
		argv, err := userland.MkfsCommand(d.FSType, s.Label, dev, size)
		if err != nil {
			return rep, err
		}
		fmt.Printf("%s%s: %s (%s, %d MiB) is blank: first boot, making %s: %s\n", userland.StoragePrefix, s.Role, s.Array, dev, size>>20, d.FSType, strings.Join(argv, " "))
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
		if out, err := cmd.CombinedOutput(); err != nil {
			return rep, fmt.Errorf("init: storage %s: %s: %w: %s", s.Role, strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
		}
		again, _, err := probe(dev)
		if err != nil {
			return rep, fmt.Errorf("init: storage %s: %w", s.Role, err)
		}
		if again.Type != d.FSType {
			return rep, fmt.Errorf("init: storage %s: made %s on %s, but it probes as %q", s.Role, d.FSType, dev, again.Type)
		}
		rep.Formatted = true
	}
	rep.FSType = d.FSType
	m := s.MountSpec(dev, d.FSType)
	if err := mount(m); err != nil {
		return rep, fmt.Errorf("init: storage %s: %w", s.Role, err)
	}
	return rep, nil
}

// probe reads the start of dev and its size.
func probe(dev string) (userland.Probe, int64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return userland.Probe{}, 0, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return userland.Probe{}, 0, fmt.Errorf("size of %s: %w", dev, err)
	}
	p, err := userland.ProbeFS(f, size)
	if err != nil {
		return p, size, fmt.Errorf("%s: %w", dev, err)
	}
	return p, size, nil
}

func mount(m userland.MountSpec) error {
	var flags uintptr
	for _, f := range []struct {
		on   bool
		flag uintptr
	}{{m.NoAtime, unix.MS_NOATIME}, {m.NoDev, unix.MS_NODEV}, {m.NoSuid, unix.MS_NOSUID}} {
		if f.on {
			flags |= f.flag
		}
	}
	if err := unix.Mount(m.Source, m.Target, m.FSType, flags, m.Data); err != nil {
		return fmt.Errorf("mount %s (%s, %q) on %s: %w", m.Source, m.FSType, m.Data, m.Target, err)
	}
	return nil
}

// unmountStores unmounts the stores, last first, at power-off; one that
// is busy is remounted read-only, so its filesystem is clean either way.
func unmountStores(points []string) {
	for _, p := range slices.Backward(points) {
		err := unix.Unmount(p, 0)
		if err == nil {
			continue
		}
		if rerr := unix.Mount("", p, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); rerr != nil {
			fmt.Printf("ftnas: init: unmount %s: %v; remount read-only: %v\n", p, err, rerr)
			continue
		}
		fmt.Printf("ftnas: init: unmount %s: %v; remounted read-only\n", p, err)
	}
}

// syncFile writes data to path and makes it durable: the file, then its
// directory.
func syncFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
